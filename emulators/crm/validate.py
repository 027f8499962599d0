"""Write-body validation for the CRM emulator: per-record checks that produce Zoho's per-item
error objects (INVALID_DATA, MANDATORY_NOT_FOUND), driven only by the field metadata."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from emulators.crm.fields import TEXT_TYPES, Field

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^[0-9+\-().\s/x]*$")
# Zoho datetimes carry an offset with a colon; we accept 'Z' too.
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")
MAX_DIGITS = 16


class ItemError(Exception):
    """A per-record error; rendered as one element of the write response's `data` array."""

    def __init__(self, code: str, message: str, details: dict):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __reduce__(self):
        # Exception pickles its args only, which are not this constructor's arguments.
        return (type(self), (self.code, self.message, self.details))

    def body(self) -> dict:
        """The Zoho error object for this item."""
        return {"code": self.code, "details": self.details, "message": self.message,
                "status": "error"}


def invalid(f_name: str, path: str, **extra) -> ItemError:
    """INVALID_DATA for one field, with `api_name`/`json_path` and optional extra details."""
    return ItemError("INVALID_DATA", "invalid data",
                     {**extra, "api_name": f_name, "json_path": path})


def mandatory_missing(f_name: str, path: str) -> ItemError:
    """MANDATORY_NOT_FOUND for one field."""
    return ItemError("MANDATORY_NOT_FOUND", "required field not found",
                     {"api_name": f_name, "json_path": path})


def _text(f: Field, value, path: str):
    if isinstance(value, bool | dict | list):
        raise invalid(f.api_name, path, expected_data_type=f.data_type)
    if isinstance(value, int | float):
        # Zoho appears to coerce JSON numbers into single-line text (unverified); so do we.
        value = str(value)
    if f.length and len(value) > f.length:
        raise invalid(f.api_name, path, maximum_length=f.length)
    if f.data_type == "email" and value and not EMAIL_RE.match(value):
        raise invalid(f.api_name, path)
    if f.data_type == "phone" and value and not PHONE_RE.match(value):
        raise invalid(f.api_name, path)
    return value


def _number(f: Field, value, path: str):
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise invalid(f.api_name, path, expected_data_type=_num_type(f))
    try:
        dec = Decimal(str(value))
    except InvalidOperation:
        raise invalid(f.api_name, path, expected_data_type=_num_type(f)) from None
    if not dec.is_finite():
        raise invalid(f.api_name, path, expected_data_type=_num_type(f))
    if f.data_type == "integer":
        if dec != dec.to_integral_value():
            raise invalid(f.api_name, path, expected_data_type="integer")
        if abs(dec) >= 10 ** (f.length or 9):
            raise invalid(f.api_name, path, maximum_length=f.length or 9)
        return int(dec)
    places = f.decimal_place if f.decimal_place is not None else 2
    if dec.adjusted() >= MAX_DIGITS:  # more than 16 digits before the decimal point
        raise invalid(f.api_name, path, maximum_length=MAX_DIGITS)
    # Zoho rounds extra decimals to the field's precision rather than rejecting them.
    return float(dec.quantize(Decimal(1).scaleb(-places)))


def _num_type(f: Field) -> str:
    return "integer" if f.data_type == "integer" else "double"


def _picklist(f: Field, value, path: str):
    if not isinstance(value, str):
        raise invalid(f.api_name, path, expected_data_type="picklist")
    if value == "-None-":
        return None
    if value not in (f.picklist or []):
        raise invalid(f.api_name, path, supported_values=[v for v in f.picklist if v != "-None-"])
    return value


def _date(f: Field, value, path: str):
    if not isinstance(value, str):
        raise invalid(f.api_name, path, expected_data_type="date")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise invalid(f.api_name, path, expected_data_type="date") from None
    if len(value) != 10:
        raise invalid(f.api_name, path, expected_data_type="date")
    return value


def _datetime(f: Field, value, path: str):
    if not isinstance(value, str) or not DATETIME_RE.match(value):
        raise invalid(f.api_name, path, expected_data_type="datetime")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f.api_name, path, expected_data_type="datetime") from None
    return parsed


def _ref_id(f: Field, value, path: str) -> str:
    """Lookups are written as {"id": "…"}; a bare id string or number is accepted too."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).isdigit():
        raise invalid(f.api_name, path, expected_data_type=f.data_type)
    return str(value)


def check_scalar(f: Field, value, path: str):
    """Validate and normalise one non-subform value (None clears the field).

    Lookup / owner ids are only checked for shape here; existence is checked by the caller,
    which owns the record stores.
    """
    if value is None:
        return None
    if f.data_type in TEXT_TYPES:
        return _text(f, value, path)
    if f.data_type in ("integer", "currency", "double"):
        return _number(f, value, path)
    if f.data_type == "boolean":
        if not isinstance(value, bool):
            raise invalid(f.api_name, path, expected_data_type="boolean")
        return value
    if f.data_type == "picklist":
        return _picklist(f, value, path)
    if f.data_type == "date":
        return _date(f, value, path)
    if f.data_type == "datetime":
        return _datetime(f, value, path)
    if f.data_type in ("lookup", "ownerlookup"):
        return _ref_id(f, value, path)
    raise invalid(f.api_name, path)
