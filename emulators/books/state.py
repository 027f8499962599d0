"""State of the Books emulator: organizations, their records, and the rules writes obey.

One `Org` per organization id holds every resource's records in insertion-ordered dicts (id ->
the record as the API returns it in detail), plus the indexes the uniqueness rules need.
Validation raises `books_error` with Books' envelope; the codes and their sources are listed
below (most codes other than 1002 and 1000 are third-party observations).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from emulators.books.resources import (
    ADDRESS_FIELDS,
    PERSON_KEYS,
    Resource,
)
from emulators.common.envelopes import ApiError, books_error

# Books error codes used here, and what each rests on:
#   2    "Invalid value passed for <field>"      Zoho's Deluge docs (filter_by), integrators' code
#   15   over-long string                         our choice, no source
#   1001 "... already exists" (items, unique cf)  our choice, no source
#   1002 "<Resource> does not exist."             Zoho's Books errors page
#   1038 "JSON is not well formed"                Zoho Inventory integrators (same platform)
#   3062 duplicate contact display name           integrators' tests
#   6041 organization not available to the user   Zoho's Deluge docs, integrators' stubs
#   4    mandatory field missing                  our choice, no source
INVALID, TOO_LONG, EXISTS, NOT_FOUND, NOT_WELL_FORMED, DUP_CONTACT, BAD_ORG, MISSING = (
    2, 15, 1001, 1002, 1038, 3062, 6041, 4)

MONEY = Decimal("0.01")

FIRST_ID = 460000000010000  # Books ids are 15-digit numbers; here they only increase


def invalid(name: str) -> ApiError:
    """400 {"code":2,"message":"Invalid value passed for <name>"}."""
    return books_error(INVALID, f"Invalid value passed for {name}")


def not_found(label: str) -> ApiError:
    """404 {"code":1002,"message":"<Label> does not exist."}, as Zoho's errors page shows."""
    return books_error(NOT_FOUND, f"{label} does not exist.", status=404)


def fmt_time(moment: datetime) -> str:
    """Books timestamp: 2013-11-18T02:02:51+0000 (Books writes no colon in the offset)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S%z")


def parse_time(raw: str, name: str = "last_modified_time") -> datetime:
    """Parse a Books timestamp; a '+' that arrived as a space (unencoded query) is restored."""
    text = raw.strip().replace(" ", "+")
    for pattern in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"):
        try:
            moment = datetime.strptime(text, pattern)
        except ValueError:
            continue
        if moment.tzinfo is None:
            from datetime import UTC

            moment = moment.replace(tzinfo=UTC)
        return moment
    raise invalid(name)


def parse_date(raw: Any, name: str) -> str:
    """A yyyy-mm-dd date, Books' date format; anything else is an invalid value."""
    if not isinstance(raw, str):
        raise invalid(name)
    try:
        return date.fromisoformat(raw.strip()).isoformat()
    except ValueError:
        raise invalid(name) from None


def money(value: Decimal) -> Decimal:
    """Round an amount to two decimals, half up.

    Books rounds amounts to the currency's decimal places / the org's price precision (2 by
    default) instead of rejecting extra digits (observed behaviour, not documented).
    """
    return value.quantize(MONEY, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------------------------
# Typed field readers
# --------------------------------------------------------------------------------------------


def get_str(data: dict, key: str, max_len: int = 500, required: bool = False) -> str | None:
    """A string field: wrong type -> code 2, too long -> code 15, missing+required -> code 4."""
    if key not in data or data[key] is None:
        if required:
            raise books_error(MISSING, f"Please enter {key}.")
        return None
    value = data[key]
    if not isinstance(value, str):  # numbers, lists, objects, booleans: a type error
        raise invalid(key)
    if len(value) > max_len:
        raise books_error(TOO_LONG, f"Please ensure that the {key} has less than "
                          f"{max_len} characters.")
    if required and not value.strip():
        raise books_error(MISSING, f"Please enter {key}.")
    return value


def get_decimal(data: dict, key: str, required: bool = False) -> Decimal | None:
    """A number field: JSON number or numeric string, no booleans, finite."""
    if key not in data or data[key] in (None, ""):
        if required:
            raise books_error(MISSING, f"Please enter {key}.")
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str | float):
        raise invalid(key)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise invalid(key) from None
    if not number.is_finite() or abs(number) >= Decimal("1e15"):
        raise invalid(key)
    return number


def get_int(data: dict, key: str) -> int | None:
    """An integer field (e.g. payment_terms)."""
    number = get_decimal(data, key)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise invalid(key)
    return int(number)


def get_bool(data: dict, key: str) -> bool | None:
    """A boolean field; "true"/"false" strings are accepted as Zoho's form clients send them."""
    if key not in data or data[key] is None:
        return None
    value = data[key]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid(key)


def get_enum(data: dict, key: str, allowed: tuple[str, ...]) -> str | None:
    """A string restricted to documented values."""
    value = get_str(data, key, 100)
    if value is not None and value not in allowed:
        raise invalid(key)
    return value


def get_id(data: dict, key: str) -> str | None:
    """A numeric id (Books ids are numeric strings); ints are accepted too."""
    raw = data.get(key)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return str(raw)
    value = get_str(data, key, 40)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise invalid(key)
    return value


def get_address(data: dict, key: str) -> dict | None:
    """billing_address / shipping_address: an object of documented string fields."""
    if key not in data or data[key] is None:
        return None
    raw = data[key]
    if not isinstance(raw, dict) or set(raw) - set(ADDRESS_FIELDS) - {"address_id"}:
        raise invalid(key)
    limits = {"address": 500, "street2": 255}
    return {f: get_str(raw, f, limits.get(f, 100)) or "" for f in ADDRESS_FIELDS}


# --------------------------------------------------------------------------------------------
# Organization state
# --------------------------------------------------------------------------------------------


class Ledger:
    """Which documents count towards which customer: customer id -> {(plural, id)}."""

    def __init__(self):
        self.docs: dict[str, set[tuple[str, str]]] = {}
        self.owner: dict[tuple[str, str], str] = {}

    def place(self, resource: Resource, record: dict, deleted: bool = False) -> set[str]:
        """File (or drop) a document under its customer; the customers whose figures may
        have changed (its old and its new customer)."""
        key = (resource.plural, record[resource.id_field])
        old = self.owner.pop(key, None)
        if old is not None:
            self.docs.get(old, set()).discard(key)
        new = None if deleted else record.get("customer_id") or None
        if new is not None:
            self.owner[key] = new
            self.docs.setdefault(new, set()).add(key)
        return {c for c in (old, new) if c}



class Org:
    """One Books organization: settings, custom fields, currencies and records."""

    def __init__(self, org_id: str, info: dict):
        self.id = org_id
        self.info = info
        self.currencies: dict[str, dict] = {}  # currency_id -> currency
        self.custom_fields: dict[str, list[dict]] = {}  # resource key -> definitions
        self.records: dict[str, dict[str, dict]] = {}  # plural -> id -> record
        self.numbers: dict[str, int] = {}  # plural -> last auto number
        self.person_owner: dict[str, str] = {}  # contact_person_id -> contact_id
        # (contact_type | "item" | transaction plural, display name or number) -> id
        self.names: dict[tuple[str, str], str] = {}
        self.skus: dict[str, str] = {}
        self.unique: dict[tuple[str, str, str], str] = {}  # (plural, api_name, value) -> id
        self.refs: dict[str, int] = {}  # contact/item id -> transactions referring to it
        # The invoices, credit notes and payments each customer's receivables come from.
        self.ledger = Ledger()
        # Sorted lists are reused until the next write (list pages are the hot path).
        self.version = 0
        self.sort_cache: dict[tuple[str, str, str], tuple[int, list[dict]]] = {}
        self.summary_cache: dict[tuple[str, str], dict] = {}
        self.summary_version = 0

    @property
    def base_currency(self) -> dict:
        """The organization's base currency."""
        return next(c for c in self.currencies.values() if c["is_base_currency"])

    def currency_by_code(self, code: str) -> dict | None:
        """The org currency with this ISO code, if the org has one."""
        return next((c for c in self.currencies.values() if c["currency_code"] == code), None)

    def table(self, resource: Resource) -> dict[str, dict]:
        """The id -> record dict of a resource."""
        return self.records.setdefault(resource.plural, {})

    def get(self, resource: Resource, record_id: str) -> dict:
        """A record by id, or the 404 Books answers."""
        record = self.table(resource).get(record_id)
        if record is None:
            raise not_found(resource.label)
        return record

    def next_number(self, resource: Resource) -> str:
        """EST-00001, INV-00001 …: the next unused auto number of a resource."""
        while True:
            self.numbers[resource.plural] = self.numbers.get(resource.plural, 0) + 1
            number = f"{resource.number_prefix}{self.numbers[resource.plural]:05d}"
            if (resource.plural, number) not in self.names:
                return number

    def claim_number(self, resource: Resource, record: dict, number: str) -> None:
        """Give a transaction its number; numbers are unique per resource (code 1001)."""
        record_id = record[resource.id_field]
        owner = self.names.get((resource.plural, number))
        if owner is not None and owner != record_id:
            raise books_error(EXISTS, f"{resource.label} number {number} already exists.")
        old = (resource.plural, record.get(resource.number_field, ""))
        if self.names.get(old) == record_id:
            del self.names[old]
        self.names[(resource.plural, number)] = record_id
        record[resource.number_field] = number

    def ref(self, record_id: str, delta: int) -> None:
        """Count transactions referring to a contact or item (blocks their deletion)."""
        self.refs[record_id] = self.refs.get(record_id, 0) + delta


# --------------------------------------------------------------------------------------------
# Custom fields
# --------------------------------------------------------------------------------------------


def apply_custom_fields(org: Org, resource: Resource, record: dict, data: dict,
                        record_id: str) -> None:
    """Merge `custom_fields` [{api_name|index|label|customfield_id, value}] into a record.

    Values of unique custom fields must not repeat within the resource (code 1001).
    """
    raw = data.get("custom_fields")
    if raw is None:
        return
    if not isinstance(raw, list):
        raise invalid("custom_fields")
    definitions = org.custom_fields.get(resource.key, [])
    values = {cf["api_name"]: cf["value"] for cf in record.get("custom_fields", [])}
    for entry in raw:
        if not isinstance(entry, dict) or set(entry) - {"api_name", "index", "label",
                                                        "customfield_id", "value"}:
            raise invalid("custom_fields")
        definition = _find_definition(definitions, entry)
        value = get_str(entry, "value", 255)
        values[definition["api_name"]] = value or ""
    for definition in definitions:
        if not definition["is_unique"]:
            continue
        name, value = definition["api_name"], values.get(definition["api_name"], "")
        owner = org.unique.get((resource.plural, name, value))
        if value and owner not in (None, record_id):
            raise books_error(EXISTS, f'The value "{value}" already exists for the custom '
                              f'field "{definition["label"]}". Please enter a unique value.')
    set_custom_fields(org, resource, record, values, record_id)


def _find_definition(definitions: list[dict], entry: dict) -> dict:
    for key in ("api_name", "customfield_id", "index", "label"):
        if key in entry:
            wanted = str(entry[key])
            for definition in definitions:
                if str(definition[key]) == wanted:
                    return definition
            raise invalid("custom_fields")
    raise invalid("custom_fields")


def set_custom_fields(org: Org, resource: Resource, record: dict, values: dict[str, str],
                      record_id: str) -> None:
    """Write custom-field values in Books' response shape and keep the unique index current."""
    out, hash_ = [], {}
    for definition in org.custom_fields.get(resource.key, []):
        name = definition["api_name"]
        old = next((c["value"] for c in record.get("custom_fields", [])
                    if c["api_name"] == name), "")
        value = values.get(name, "")
        if definition["is_unique"]:
            if old and org.unique.get((resource.plural, name, old)) == record_id:
                del org.unique[(resource.plural, name, old)]
            if value:
                org.unique[(resource.plural, name, value)] = record_id
        if value == "":
            continue
        out.append({"customfield_id": definition["customfield_id"],
                    "index": definition["index"], "label": definition["label"],
                    "api_name": name, "data_type": definition["data_type"],
                    "value": value})
        hash_[name] = value
        hash_[name + "_unformatted"] = value
    record["custom_fields"] = out
    record["custom_field_hash"] = hash_


def drop_unique(org: Org, resource: Resource, record: dict) -> None:
    """Forget a deleted record's unique custom-field values."""
    for cf in record.get("custom_fields", []):
        org.unique.pop((resource.plural, cf["api_name"], cf["value"]), None)


# --------------------------------------------------------------------------------------------
# Contact persons
# --------------------------------------------------------------------------------------------


def build_person(data: dict, person_id: str, existing: dict | None = None) -> dict:
    """A contact person from a request object (an entry of a contact's contact_persons)."""
    person = dict(existing) if existing else {"contact_person_id": person_id}
    limits = {"email": 100, "phone": 50, "mobile": 50, "salutation": 25}
    for key in PERSON_KEYS:
        value = get_str(data, key, limits.get(key, 100))
        if value is not None:
            person[key] = value
        else:
            person.setdefault(key, "")
    if person["email"] and "@" not in person["email"]:
        raise invalid("email")
    person["communication_preference"] = _preference(
        data, person.get("communication_preference"))
    primary = get_bool(data, "is_primary_contact")
    if primary is not None:
        person["is_primary_contact"] = primary
    person.setdefault("is_primary_contact", False)
    enable = get_bool(data, "enable_portal")
    person["enable_portal"] = bool(enable) if enable is not None else person.get(
        "enable_portal", False)
    return person


def _preference(data: dict, old: dict | None) -> dict:
    """communication_preference: {is_sms_enabled, is_whatsapp_enabled}, the object Zoho's
    OpenAPI file documents."""
    result = dict(old or {"is_sms_enabled": False, "is_whatsapp_enabled": False})
    raw = data.get("communication_preference")
    if raw is None:
        return result
    if not isinstance(raw, dict) or set(raw) - set(result):
        raise invalid("communication_preference")
    for key in result:
        value = get_bool(raw, key)
        if value is not None:
            result[key] = value
    return result


def refresh_primary(contact: dict) -> None:
    """Exactly one primary person (the first when none is flagged); copy it to the summary."""
    persons = contact["contact_persons"]
    primaries = [p for p in persons if p["is_primary_contact"]]
    for person in persons:
        person["is_primary_contact"] = False
    if persons:
        chosen = primaries[-1] if primaries else persons[0]
        chosen["is_primary_contact"] = True
        persons.sort(key=lambda p: not p["is_primary_contact"])
    primary = persons[0] if persons else {}
    contact["primary_contact_id"] = primary.get("contact_person_id", "")
    for key in ("first_name", "last_name", "email", "phone", "mobile"):
        contact[key] = primary.get(key, "")


# --------------------------------------------------------------------------------------------
# Line items and totals
# --------------------------------------------------------------------------------------------


def build_line_items(org: Org, items: dict[str, dict], raw: Any, old: list[dict],
                     new_id) -> list[dict]:
    """Validate line_items and compute item totals with Decimal (rate x quantity, rounded)."""
    if not isinstance(raw, list) or not raw:
        raise invalid("line_items")
    by_id = {li["line_item_id"]: li for li in old}
    out = []
    for order, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict):
            raise invalid("line_items")
        out.append(_line_item(items, entry, by_id, order, new_id))
    return out


def _line_item(items: dict[str, dict], entry: dict, by_id: dict, order: int, new_id) -> dict:
    line_id = get_id(entry, "line_item_id")
    if line_id is not None and line_id not in by_id:
        raise invalid("line_item_id")
    old = by_id.get(line_id, {})  # an edited line keeps what the body does not change
    item_id = get_id(entry, "item_id") or old.get("item_id") or None
    item = None
    if item_id is not None:
        item = items.get(item_id)
        if item is None:
            raise invalid("item_id")
    name = get_str(entry, "name", 100) or old.get("name") or (item["name"] if item else None)
    if not name:
        raise books_error(MISSING, "Please enter the item name or choose an item.")
    rate = _pick(get_decimal(entry, "rate"), old.get("rate"),
                 Decimal(str(item["rate"])) if item else Decimal(0))
    quantity = _pick(get_decimal(entry, "quantity"), old.get("quantity"), Decimal(1))
    if quantity < 0:
        raise invalid("quantity")
    discount = entry["discount"] if "discount" in entry else old.get("discount", Decimal(0))
    gross = rate * quantity
    line_discount = discount_amount(discount, gross, "discount")
    default_text = item or old
    return {
        "line_item_id": line_id or new_id(), "item_id": item_id or "", "name": name,
        "description": get_str(entry, "description", 2000)
        or (default_text.get("description", "") if default_text else ""),
        "item_order": order, "rate": money(rate), "quantity": quantity,
        "unit": get_str(entry, "unit", 100) or (default_text.get("unit", "")
                                                  if default_text else ""),
        "discount": discount_value(discount, "discount"),
        "discount_amount": money(line_discount),
        "tax_id": get_str(entry, "tax_id", 40) or old.get("tax_id", ""),
        "item_total": money(gross - line_discount),
    }


def discount_value(raw: Any, name: str) -> Any:
    """A discount as Books shows it: "10%" for a percentage, a number for a flat amount."""
    if isinstance(raw, str) and raw.strip().endswith("%"):
        return raw.strip()
    amount = get_decimal({name: raw}, name)
    return money(amount) if amount is not None else Decimal("0.00")


def discount_amount(raw: Any, base: Decimal, name: str) -> Decimal:
    """What a discount takes off `base`.

    Zoho's OpenAPI files (`discount` of estimates, invoices, sales orders): "either a
    percentage or a flat amount. For percentage discounts, the value should include the %
    symbol (e.g., 10%)".
    """
    if raw is None or raw == "":
        return Decimal(0)
    if isinstance(raw, str) and raw.strip().endswith("%"):
        try:
            percent = Decimal(raw.strip()[:-1])
        except InvalidOperation:
            raise invalid(name) from None
        if not percent.is_finite() or not 0 <= percent <= 100:
            raise invalid(name)
        return base * percent / 100
    amount = get_decimal({name: raw}, name)
    if amount is None:
        return Decimal(0)
    if amount < 0 or amount > max(base, Decimal(0)):
        raise invalid(name)
    return amount


def _pick(*values):
    """The first value that is not None."""
    return next(v for v in values if v is not None)


def compute_totals(record: dict) -> None:
    """sub_total, header discount, total (+ shipping and adjustment); tax is not modelled."""
    sub_total = sum((li["item_total"] for li in record["line_items"]), Decimal(0))
    discount = money(discount_amount(record.get("discount"), sub_total, "discount"))
    extra = record.get("shipping_charge", Decimal(0)) + record.get("adjustment", Decimal(0))
    record["sub_total"] = money(sub_total)
    record["discount_total"] = discount
    record["tax_total"] = Decimal("0.00")
    record["total"] = money(sub_total - discount + extra)
    # The balance follows from payments and credits (emulators.books.receivables.settle).


def add_days(day: str, days: int) -> str:
    """yyyy-mm-dd plus N days."""
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
