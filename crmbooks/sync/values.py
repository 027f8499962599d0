"""Field values: canonical form for comparison, and Books path reading/writing.

Books paths (as written in the mapping files):
  ``contact_name``                 a top-level field
  ``billing_address.city``         a field of a nested object
  ``custom_fields.cf_crm_id``      a custom field (``custom_fields[]`` by api_name)
  ``contact_persons.primary.email``  a field of the primary contact person
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from crmbooks.store.jsonsafe import json_safe
from mappings.converters import is_blank

PRIMARY = "contact_persons.primary."
CUSTOM = "custom_fields."


def canon(value: Any) -> Any:
    """JSON-safe value with blanks as None: what links store and comparisons use."""
    if not isinstance(value, (dict, list, tuple)) and is_blank(value):
        return None
    return json_safe(value)


def _as_decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def same(a: Any, b: Any) -> bool:
    """True if two field values are the same once canonical.

    Numbers compare by value when either side is a number (Books returns ``10.5`` for a
    rate stored as ``"10.50"``); two strings compare exactly ("007" is not "7").
    """
    ca, cb = canon(a), canon(b)
    if ca == cb:
        return True
    numeric = (int, float, Decimal)
    if (isinstance(a, numeric) or isinstance(b, numeric)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        da, db = _as_decimal(ca), _as_decimal(cb)
        return da is not None and db is not None and da == db
    if isinstance(ca, (dict, list)) or isinstance(cb, (dict, list)):
        return json.dumps(ca, sort_keys=True) == json.dumps(cb, sort_keys=True)
    return False


def primary_person(record: dict) -> dict:
    """The primary contact person of a Books contact (or the first one), or {}."""
    persons = record.get("contact_persons") or []
    if not isinstance(persons, list):
        return {}
    for person in persons:
        if isinstance(person, dict) and person.get("is_primary_contact"):
            return person
    return persons[0] if persons and isinstance(persons[0], dict) else {}


def get_path(record: dict, path: str) -> Any:
    """Read a Books path from a Books record (None when absent)."""
    if path.startswith(CUSTOM):
        name = path[len(CUSTOM):]
        for cf in record.get("custom_fields") or []:
            if isinstance(cf, dict) and cf.get("api_name") == name:
                return cf.get("value")
        return (record.get("custom_field_hash") or {}).get(name)
    if path.startswith(PRIMARY):
        field = path[len(PRIMARY):]
        person = primary_person(record)
        # List summaries carry the primary person's fields at the top level.
        return person.get(field) if person else record.get(field)
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def set_path(payload: dict, path: str, value: Any) -> dict:
    """Return a copy of ``payload`` with the Books path set to ``value`` (nested as Books wants)."""
    out = dict(payload)
    if path.startswith(CUSTOM):
        name = path[len(CUSTOM):]
        fields = [cf for cf in out.get("custom_fields", []) if cf.get("api_name") != name]
        out["custom_fields"] = [*fields, {"api_name": name, "value": value}]
    elif path.startswith(PRIMARY):
        persons = list(out.get("contact_persons") or [])
        primary = dict(persons[0]) if persons and persons[0].get("is_primary_contact") else {
            "is_primary_contact": True}
        primary[path[len(PRIMARY):]] = value
        out["contact_persons"] = [primary, *persons[1:]] if persons and persons[0].get(
            "is_primary_contact") else [primary, *persons]
    else:
        head, _, rest = path.partition(".")
        if rest:
            out[head] = set_path(dict(out.get(head) or {}), rest, value)
        else:
            out[head] = value
    return out


def build_payload(values: dict[str, Any], base: dict | None = None) -> dict:
    """Nest flat ``{books path: value}`` into a Books request body (starting from ``base``)."""
    out = dict(base or {})
    for path, value in values.items():
        out = set_path(out, path, value)
    return out
