"""Transactions (F14) Books → CRM as pure functions, and the custom fields of both directions.

A Books estimate, sales order, invoice or purchase order becomes the body of its CRM Quote,
Sales Order, Invoice or Purchase Order: the party from the customers (or vendors) links read
backwards, each line item from the items links read backwards (an item not linked makes the
record a failure whose reason names it), the Books status as a value of the CRM Status
picklist, and the totals. The CRM computes its totals itself (line Total = Quantity × List
Price − Discount, Grand Total = Sub Total + Adjustment, read-only), so the Books amounts are
sent as lines plus an Adjustment that carries whatever the CRM cannot model (header discount,
shipping, tax, rounding): the CRM's Grand Total then equals the Books total. Money is Decimal.

Custom fields: a map pairs a CRM field with a Books custom field; values are converted by the
*target* field's type and a value that does not fit (a word into a number field …) is a
problem naming both fields, never a silent drop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from crmbooks.sync.transactions import CRM_MODULE, DATES, NOUN, SUBFORM

#: Books status → CRM Status picklist value, per resource, for the CRM's standard picklists
#: (Quotes: Draft … Closed Won/Lost; the others: Created, Approved, Delivered, Cancelled).
#: A picklist that has the Books status itself (e.g. an added "Paid") gets that value instead.
STATUS_TO_CRM: dict[str, dict[str, str]] = {
    "estimates": {"draft": "Draft", "sent": "Delivered", "accepted": "Confirmed",
                  "invoiced": "Closed Won", "declined": "Closed Lost", "expired": "Closed Lost"},
    "salesorders": {"draft": "Created", "open": "Approved", "overdue": "Approved",
                    "partially_invoiced": "Delivered", "invoiced": "Delivered",
                    "void": "Cancelled"},
    "invoices": {"draft": "Created", "sent": "Approved", "viewed": "Approved",
                 "unpaid": "Approved", "overdue": "Approved", "partially_paid": "Approved",
                 "paid": "Delivered", "void": "Cancelled"},
    "purchaseorders": {"draft": "Created", "open": "Approved", "billed": "Delivered",
                       "cancelled": "Cancelled"},
}
#: Books custom-field data types that hold numbers, and CRM field types that do.
BOOKS_NUMBERS = {"number", "decimal", "amount", "percent"}
CRM_NUMBERS = {"double", "currency", "decimal", "percent"}
CRM_TEXT = {"text", "textarea", "email", "phone", "website", "picklist"}
#: CRM field types a transactions custom-field map can carry (others are refused at start).
CRM_MAPPABLE = CRM_TEXT | CRM_NUMBERS | {"integer", "date", "boolean"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CENT = Decimal("0.01")


def crm_status(resource: str, status: str | None, picklist: list[str] | None) -> str | None:
    """The CRM Status value for a Books status, or None when the picklist has no fitting one."""
    if not status:
        return None
    own = status.replace("_", " ").title()
    options = [own, STATUS_TO_CRM.get(resource, {}).get(status)]
    if picklist is None:
        return options[1]
    return next((o for o in options if o and o in picklist), None)


def _decimal(raw: Any) -> Decimal | None:
    if raw is None or raw == "" or isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def crm_lines(record: Mapping[str, Any], items_back: Mapping[str, str]
              ) -> tuple[list[dict], Decimal, list[str]]:
    """CRM subform rows of a Books record, the sum of their CRM Totals, and the problems."""
    rows, problems, total = [], [], Decimal(0)
    lines = record.get("line_items") or []
    if not lines:
        problems.append("the Books record has no line items")
    for n, line in enumerate(lines, start=1):
        item_id = str(line.get("item_id") or "")
        product = items_back.get(item_id)
        if not product:
            name = str(line.get("name") or "")
            problems.append(f"line {n}: item {name!r} ({item_id or 'no item'}) is not linked "
                            "to a CRM product yet: sync items first (`crmbooks sync items`)")
            continue
        quantity = _decimal(line.get("quantity"))
        rate = _decimal(line.get("rate"))
        if quantity is None or rate is None:
            problems.append(f"line {n}: quantity or rate is not a number")
            continue
        gross = quantity * rate
        item_total = _decimal(line.get("item_total"))
        discount = max(gross - item_total, Decimal(0)) if item_total is not None else Decimal(0)
        row = {"Product_Name": {"id": product}, "Quantity": quantity, "List_Price": rate,
               "Discount": discount.quantize(CENT)}
        if line.get("description"):
            row["Description"] = str(line["description"])[:2000]
        rows.append(row)
        total += (gross - row["Discount"]).quantize(CENT)  # how the CRM computes the row Total
    return rows, total, problems


def crm_body(record: Mapping[str, Any], resource: str, *, party: Mapping[str, Any] | None,
             items_back: Mapping[str, str], picklist: list[str] | None,
             present: set[str]) -> tuple[dict | None, str | None]:
    """(CRM body, None) for one Books transaction, or (None, every reason it cannot go).

    ``party`` is the CRM lookup part ({"Account_Name": {"id"}} …) from the links, or None
    when the Books customer/vendor is not linked; ``present`` the CRM fields the org has.
    Subject, party and Books id are the caller's business (they differ for create/update).
    """
    module = CRM_MODULE[resource]
    rows, lines_total, problems = crm_lines(record, items_back)
    if party is None:
        problems.insert(0, f"the Books {NOUN[resource]}'s "
                        f"{'vendor' if resource == 'purchaseorders' else 'customer'} "
                        f"{record.get('vendor_name') or record.get('customer_name')!r} is not "
                        "linked to the CRM")
    total = _decimal(record.get("total"))
    if total is None:
        problems.append("the Books total is not a number")
    if problems:
        return None, "; ".join(problems)
    body: dict[str, Any] = {**party, SUBFORM[module]: rows}
    if "Adjustment" in present:
        body["Adjustment"] = (total - lines_total).quantize(CENT)
    status = crm_status(resource, record.get("status"), picklist)
    if status and "Status" in present:
        body["Status"] = status
    crm_date, books_date = DATES[module]
    if record.get(books_date) and crm_date in present:
        body[crm_date] = str(record[books_date])
    currency = str(record.get("currency_code") or "").upper()
    if currency and "Currency" in present:
        body["Currency"] = currency
    return body, None


def subject_of(record: Mapping[str, Any], resource: str) -> str:
    """The CRM Subject of a Books-made transaction: its reference, else its number."""
    number = record.get(f"{resource[:-1]}_number")  # estimate_number, invoice_number …
    return str(record.get("reference_number") or number or "")[:200]


# --------------------------------------------------------------------------- custom fields
def to_books_value(value: Any, books_type: str | None) -> tuple[str | None, str | None]:
    """(Books custom-field value, None) or (None, why it does not fit ``books_type``)."""
    if value is None or value == "":
        return "", None
    if isinstance(value, (dict, list)):
        return None, f"{str(value)[:60]} is not a single value"
    if books_type in BOOKS_NUMBERS:
        number = _decimal(value)
        return (str(number), None) if number is not None else (
            None, f"{str(value)[:60]!r} is not a number")
    if books_type == "date":
        return (str(value), None) if _DATE.match(str(value)) else (
            None, f"{str(value)[:60]!r} is not a date (yyyy-mm-dd)")
    if books_type in ("check_box", "boolean"):
        return (("true" if value else "false"), None) if isinstance(value, bool) else (
            None, f"{str(value)[:60]!r} is not true/false")
    if isinstance(value, Decimal):
        return format(value, "f"), None
    return str(value)[:255], None


def to_crm_value(raw: Any, crm_type: str | None) -> tuple[Any, str | None]:
    """(CRM value, None) or (None, why a Books value does not fit ``crm_type``)."""
    if raw is None or raw == "":
        return None, None
    text = str(raw).strip()
    if crm_type in CRM_NUMBERS:
        number = _decimal(text)
        return (number, None) if number is not None else (None, f"{text[:60]!r} is not a number")
    if crm_type == "integer":
        number = _decimal(text)
        if number is None or number != number.to_integral_value():
            return None, f"{text[:60]!r} is not a whole number"
        return int(number), None
    if crm_type == "date":
        return (text, None) if _DATE.match(text) else (
            None, f"{text[:60]!r} is not a date (yyyy-mm-dd)")
    if crm_type == "boolean":
        if text.lower() in ("true", "false"):
            return text.lower() == "true", None
        return None, f"{text[:60]!r} is not true/false"
    return text, None


def custom_to_books(record: Mapping[str, Any], maps: list[dict]
                    ) -> tuple[list[dict], list[str]]:
    """Books `custom_fields` entries from a CRM record's mapped fields, and the problems."""
    out, problems = [], []
    for m in maps:
        if m["direction"] == "to_crm":
            continue
        value, why = to_books_value(record.get(m["crm"]), m.get("books_type"))
        if why:
            problems.append(f"custom field {m['crm']} → Books {m['books']} "
                            f"({m.get('books_type')}): {why}")
        else:
            out.append({"api_name": m["books"], "value": value})
    return out, problems


def custom_to_crm(record: Mapping[str, Any], maps: list[dict]) -> tuple[dict, list[str]]:
    """CRM field values from a Books record's mapped custom fields, and the problems."""
    values = {str(cf.get("api_name")): cf.get("value")
              for cf in record.get("custom_fields") or [] if isinstance(cf, Mapping)}
    out, problems = {}, []
    for m in maps:
        if m["direction"] == "to_books":
            continue
        value, why = to_crm_value(values.get(m["books"]), m.get("crm_type"))
        if why:
            problems.append(f"custom field Books {m['books']} → {m['crm']} "
                            f"({m.get('crm_type')}): {why}")
        else:
            out[m["crm"]] = value
    return out, problems


def books_crm_id(record: Mapping[str, Any], field: str = "cf_crm_id") -> str:
    """The CRM id a Books record carries in its unique custom field ('' when none)."""
    for cf in record.get("custom_fields") or []:
        if isinstance(cf, Mapping) and cf.get("api_name") == field:
            return str(cf.get("value") or "")
    return ""

