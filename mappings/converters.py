"""Named, pure value converters used by the mapping files.

Each converter turns a CRM value into its Books form (``to_books``) and back (``to_crm``).
A value that cannot be converted raises :class:`ConversionError` carrying a code, a message
naming the value, and a hint saying what to do; the mapper turns it into a failure row for
that record only. Converters never see secrets and never do I/O.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

#: Money above this is treated as a data-entry error rather than a real price.
MAX_MONEY = Decimal("1000000000000")  # 10^12
CENTS = Decimal("0.01")

EMAIL_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
PHONE_RE = re.compile(r"^\+?[0-9()./\- ]{3,30}(?:\s*(?:x|ext\.?|extension)\s*[0-9]{1,6})?$", re.I)
URL_RE = re.compile(r"^(?:https?://)?[^\s/$.?#][^\s]*\.[^\s]{2,}$", re.I)
TRUE_WORDS = {"true", "yes", "y", "1", "on", "active"}
FALSE_WORDS = {"false", "no", "n", "0", "off", "inactive"}


class ConversionError(ValueError):
    """A value that cannot be converted; the record fails with this code, message and hint."""

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint

    def __reduce__(self):
        # Exception pickles its args only, which are not this constructor's arguments.
        return (type(self), (self.code, self.message, self.hint))



@dataclass(frozen=True)
class Ctx:
    """What a converter may know about the field it converts (from the mapping file)."""

    name: str = ""  # the field as the operator knows it (e.g. "Account_Name → contact_name")
    max_length: int | None = None
    allow_negative: bool = False
    value_map: Mapping[str, str] = field(default_factory=dict)


def is_blank(value: Any) -> bool:
    """True for None, NaN, pandas NA and empty / whitespace-only strings."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return not value.strip()
    return str(value) in ("<NA>", "NaT")


# ------------------------------------------------------------------------------ text family
def text(value: Any, ctx: Ctx) -> str | None:
    """Trimmed text (NFC); rejects control characters and values over ``max_length``.

    Emoji and right-to-left scripts are ordinary text and pass unchanged.
    """
    if is_blank(value):
        return None
    if isinstance(value, dict | list | tuple | set | bool):
        # A misconfigured field (a lookup, multi-select or checkbox mapped as text) would
        # otherwise reach the other side as Python's repr: "{'name': 'Box'}".
        raise ConversionError(
            "INVALID_TYPE", f"{ctx.name} is a {type(value).__name__}, not text: "
            f"{str(value)[:60]}", "map a text field here, or pick the converter that fits "
            "the field's type (lookup_name, picklist, boolean)")
    out = unicodedata.normalize("NFC", str(value).strip())
    bad = [c for c in out if unicodedata.category(c) == "Cc" and c not in "\n\t\r"]
    if bad:
        raise ConversionError("INVALID_VALUE", f"{ctx.name} contains control characters "
                              f"({', '.join(repr(c) for c in bad[:3])})",
                              "remove the invisible characters from the source record")
    if ctx.max_length and len(out) > ctx.max_length:
        raise ConversionError(
            "TOO_LONG", f"{ctx.name} is {len(out)} characters, longer than the "
            f"{ctx.max_length} allowed: {out[:40]}…",
            f"shorten it to {ctx.max_length} characters in the source record")
    return out


def email(value: Any, ctx: Ctx) -> str | None:
    """A syntactically valid email address (trimmed); anything else is a clear failure."""
    out = text(value, ctx)
    if out is None:
        return None
    if len(out) > 254 or not EMAIL_RE.match(_ascii_domain(out)) or ".." in out:
        raise ConversionError("INVALID_EMAIL", f"{ctx.name} {out!r} is not a valid email address",
                              "correct the email address in the source record")
    return out


def _ascii_domain(address: str) -> str:
    """The address with an internationalised domain in its ASCII (punycode) form."""
    local, _, domain = address.rpartition("@")
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address


def phone(value: Any, ctx: Ctx) -> str | None:
    """A phone number: digits with + ( ) - . / spaces and an optional extension."""
    out = text(value, ctx)
    if out is None:
        return None
    if not PHONE_RE.match(out) or sum(c.isdigit() for c in out) < 3:
        raise ConversionError("INVALID_PHONE", f"{ctx.name} {out!r} is not a phone number",
                              "keep only digits, spaces, + ( ) - and an extension")
    return out


def url(value: Any, ctx: Ctx) -> str | None:
    """A web address, with or without scheme (kept as entered so it does not ping-pong)."""
    out = text(value, ctx)
    if out is None:
        return None
    if not URL_RE.match(out):
        raise ConversionError("INVALID_URL", f"{ctx.name} {out!r} is not a web address",
                              "enter an address like https://www.example.com")
    return out


# ---------------------------------------------------------------------------- numbers, bools
def decimal(value: Any, ctx: Ctx) -> Decimal | None:
    """Money as Decimal with 2 places; rejects more decimals, negatives (unless allowed),
    NaN/infinity and absurd amounts. Floats go through ``str`` so 0.1 stays 0.1."""
    if is_blank(value):
        return None
    if isinstance(value, bool):
        raise ConversionError("INVALID_AMOUNT", f"{ctx.name} {value!r} is not an amount")
    try:
        amount = Decimal(str(value).strip().replace(",", "")) if not isinstance(
            value, Decimal) else value
    except InvalidOperation:
        raise ConversionError("INVALID_AMOUNT", f"{ctx.name} {value!r} is not an amount",
                              "enter a number like 1234.50") from None
    if not amount.is_finite():
        raise ConversionError("INVALID_AMOUNT", f"{ctx.name} {value!r} is not a finite amount")
    if amount != amount.quantize(CENTS, rounding="ROUND_DOWN"):
        raise ConversionError("TOO_MANY_DECIMALS",
                              f"{ctx.name} {value} has more than 2 decimal places",
                              "round the amount to cents in the source record")
    if amount < 0 and not ctx.allow_negative:
        raise ConversionError("NEGATIVE_AMOUNT", f"{ctx.name} {value} is negative",
                              "enter a positive amount")
    if abs(amount) >= MAX_MONEY:
        raise ConversionError("ABSURD_AMOUNT", f"{ctx.name} {value} is implausibly large",
                              "check the amount in the source record")
    return amount.quantize(CENTS)


def boolean(value: Any, ctx: Ctx) -> bool | None:
    """True/False from booleans, 0/1 and words like yes/no/true/false."""
    if is_blank(value):
        return None
    if isinstance(value, bool):
        return value
    word = str(value).strip().casefold()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConversionError("INVALID_VALUE", f"{ctx.name} {value!r} is not yes/no")


# ---------------------------------------------------------------------- picklists, lookups
def picklist_to_books(value: Any, ctx: Ctx) -> str | None:
    """Map a CRM picklist value through the mapping's value map; unmapped values fail."""
    if is_blank(value):
        return None
    key = str(value).strip()
    if key not in ctx.value_map:
        known = ", ".join(ctx.value_map) or "none"
        raise ConversionError("UNMAPPED_VALUE",
                              f"{ctx.name} value {key!r} has no Books value (mapped: {known})",
                              f"add {key!r} to the value map in the mapping file, "
                              "or change the value in CRM")
    return ctx.value_map[key]


def picklist_to_crm(value: Any, ctx: Ctx) -> str | None:
    """The reverse of :func:`picklist_to_books` (first CRM value mapped to this Books value)."""
    if is_blank(value):
        return None
    reverse: dict[str, str] = {}
    for crm_value, books_value in ctx.value_map.items():
        reverse.setdefault(books_value, crm_value)
    key = str(value).strip()
    if key not in reverse:
        raise ConversionError("UNMAPPED_VALUE",
                              f"{ctx.name} Books value {key!r} has no CRM value",
                              f"add a CRM value mapped to {key!r} in the mapping file")
    return reverse[key]


def lookup_name(value: Any, ctx: Ctx) -> str | None:
    """The name of a CRM lookup/owner object ({id, name} → name)."""
    if isinstance(value, dict):
        name = value.get("name")
        if is_blank(name):
            raise ConversionError(
                "MISSING_LOOKUP", f"{ctx.name} points to a record that no longer exists "
                f"(id {value.get('id')})", "reassign it in CRM (e.g. the owner was deleted)")
        return text(name, ctx)
    return None if is_blank(value) else text(value, ctx)


def active_to_books(value: Any, ctx: Ctx) -> str | None:
    """CRM checkbox (e.g. Product_Active) → Books status active/inactive."""
    flag = boolean(value, ctx)
    return None if flag is None else ("active" if flag else "inactive")


def active_to_crm(value: Any, ctx: Ctx) -> bool | None:
    """Books status active/inactive → CRM checkbox."""
    return boolean(value, ctx)


def full_name(value: Any, ctx: Ctx) -> str | None:
    """Join name parts (First_Name, Last_Name) into one display name "First Last"."""
    parts = value if isinstance(value, (list, tuple)) else [value]
    words = [text(p, Ctx(name=ctx.name)) for p in parts]
    joined = " ".join(w for w in words if w)
    return text(joined, ctx)


# -------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Converter:
    """A named converter: one function per direction (None = that direction is not possible)."""

    name: str
    to_books: Callable[[Any, Ctx], Any] | None
    to_crm: Callable[[Any, Ctx], Any] | None
    multi: bool = False  # takes a list of CRM fields (to_books only)
    needs_value_map: bool = False
    crm_types: frozenset[str] = frozenset()  # CRM data_types it accepts (empty = any)


_TEXTY = frozenset({"text", "textarea", "picklist", "email", "phone", "website", "autonumber",
                    "string"})
CONVERTERS: dict[str, Converter] = {c.name: c for c in (
    Converter("text", text, text, crm_types=_TEXTY),
    Converter("email", email, email, crm_types=frozenset({"email", "text"})),
    Converter("phone", phone, phone, crm_types=frozenset({"phone", "text"})),
    Converter("url", url, url, crm_types=frozenset({"website", "text"})),
    Converter("decimal", decimal, decimal,
              crm_types=frozenset({"currency", "double", "decimal", "integer", "bigint"})),
    Converter("boolean", boolean, boolean, crm_types=frozenset({"boolean"})),
    Converter("picklist", picklist_to_books, picklist_to_crm, needs_value_map=True,
              crm_types=frozenset({"picklist", "text"})),
    Converter("lookup_name", lookup_name, None,
              crm_types=frozenset({"lookup", "ownerlookup", "userlookup"})),
    Converter("active_status", active_to_books, active_to_crm, crm_types=frozenset({"boolean"})),
    Converter("full_name", full_name, None, multi=True, crm_types=frozenset({"text"})),
)}


def get_converter(name: str) -> Converter:
    """The converter called ``name``; KeyError naming the known ones otherwise."""
    try:
        return CONVERTERS[name]
    except KeyError:
        raise KeyError(f"unknown converter {name!r}; known: {', '.join(sorted(CONVERTERS))}") \
            from None
