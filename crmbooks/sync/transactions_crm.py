"""Transactions Books → CRM as pure functions, and the custom fields of both directions.

A Books transaction (estimate, sales order …) becomes the body of its CRM record (Quote,
Sales Order …), every field name coming from its document type (mappings/transactions.yaml):
the party from the customers (or vendors) links read backwards, each line item from the items
links read backwards (an item not linked makes the record a failure whose reason names it),
the Books status as a value of the CRM Status picklist, and the totals. The CRM computes its
totals itself (line Total = Quantity × List Price − Discount, Grand Total = Sub Total +
Adjustment, read-only), so the Books amounts are sent as lines plus an Adjustment that carries
whatever the CRM cannot model (header discount, shipping, tax, rounding): the CRM's Grand Total
then equals the Books total. Money is Decimal.

Custom fields: a map pairs a CRM field with a Books custom field; values are converted by the
*target* field's type and a value that does not fit (a word into a number field …) is a
problem naming both fields, never a silent drop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from crmbooks.sync.registry import document_type, shape
from crmbooks.sync.registry import party as party_fields

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
    options = [own, document_type(resource).status_to_crm.get(status)]
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
    books, crm = shape().books.lines, shape().crm.lines
    rows, problems, total = [], [], Decimal(0)
    lines = record.get("line_items") or []
    if not lines:
        problems.append("the Books record has no line items")
    for n, line in enumerate(lines, start=1):
        item_id = str(line.get(books.item) or "")
        product = items_back.get(item_id)
        if not product:
            name = str(line.get(books.name) or "")
            problems.append(f"line {n}: item {name!r} ({item_id or 'no item'}) is not linked "
                            "to a CRM product yet: sync items first (`crmbooks sync items`)")
            continue
        quantity = _decimal(line.get(books.quantity))
        rate = _decimal(line.get(books.rate))
        if quantity is None or rate is None:
            problems.append(f"line {n}: quantity or rate is not a number")
            continue
        gross = quantity * rate
        item_total = _decimal(line.get(books.total))
        discount = max(gross - item_total, Decimal(0)) if item_total is not None else Decimal(0)
        row = {crm.product: {"id": product}, crm.quantity: quantity, crm.price: rate,
               crm.discount: discount.quantize(CENT)}
        if line.get(books.description):
            row[crm.description] = str(line[books.description])[:2000]
        rows.append(row)
        total += (gross - row[crm.discount]).quantize(CENT)  # how the CRM computes the row Total
    return rows, total, problems


def books_web_base(accounts_url: str, org_id: str) -> str:
    """The Books web app of an organization: `https://books.zoho.<dc>/app/<org id>`.

    The web app lives beside the Accounts server of the same data centre (accounts.zoho.eu →
    books.zoho.eu, accounts.zohocloud.ca → books.zohocloud.ca); a server not named
    `accounts.…` (the local emulators) serves under its own address."""
    scheme, _, rest = accounts_url.rstrip("/").partition("://")
    host, _, path = rest.partition("/")
    if host.startswith("accounts."):
        host, path = "books." + host.removeprefix("accounts."), ""
    base = f"{scheme}://{host}" + (f"/{path}" if path else "")
    return f"{base}/app/{org_id}"


def web_address(web_base: str, resource: str, books_id: str) -> str:
    """The page of one Books transaction in the Books web app (the app's own URL pattern,
    `…/app/<org id>#/quotes/<id>`, as its address bar shows it)."""
    doc = document_type(resource)
    return f"{web_base}#/{doc.books.web_path or resource}/{books_id}"


def crm_body(record: Mapping[str, Any], resource: str, *, party: Mapping[str, Any] | None,
             items_back: Mapping[str, str], picklist: list[str] | None,
             present: set[str], web_base: str = "") -> tuple[dict | None, str | None]:
    """(CRM body, None) for one Books transaction, or (None, every reason it cannot go).

    ``party`` is the CRM lookup part ({"Account_Name": {"id"}} …) from the links, or None
    when the Books customer/vendor is not linked; ``present`` the CRM fields the org has;
    ``web_base`` the organization's Books web app (books_web_base). The deal comes from the
    Books record (a trigger, `deals link` or the CRM set it; none: no deal, so an unlink
    clears it). Subject, party and Books id are the caller's business (they differ for
    create/update).
    """
    doc, crm, books = document_type(resource), shape().crm, shape().books
    rows, lines_total, problems = crm_lines(record, items_back)
    if party is None:
        who = party_fields(doc)
        problems.insert(0, f"the Books {doc.noun}'s {doc.books.party} "
                        f"{record.get(who.books_name)!r} is not linked to the CRM")
    total = _decimal(record.get(books.total))
    if total is None:
        problems.append("the Books total is not a number")
    if problems:
        return None, "; ".join(problems)
    body: dict[str, Any] = {**party, doc.crm.subform: rows}
    if crm.adjustment in present:
        body[crm.adjustment] = (total - lines_total).quantize(CENT)
    status = crm_status(resource, record.get(books.status), picklist)
    if status and crm.status in present:
        body[crm.status] = status
    if record.get(doc.books.date_field) and doc.crm.date_field in present:
        body[doc.crm.date_field] = str(record[doc.books.date_field])
    currency = str(record.get(books.currency) or "").upper()
    if currency and crm.currency in present:
        body[crm.currency] = currency
    if doc.deal and crm.deal in present:
        deal = str(record.get(books.deal_id) or "")
        body[crm.deal] = {"id": deal} if deal else None
    number = str(record.get(doc.books.number_field) or "")
    if number and crm.books_number in present:
        body[crm.books_number] = number
    books_id = str(record.get(doc.books.id_field) or "")
    if web_base and books_id and crm.books_url in present:
        body[crm.books_url] = web_address(web_base, resource, books_id)
    return body, None


def subject_of(record: Mapping[str, Any], resource: str) -> str:
    """The CRM Subject of a Books-made transaction: its reference, else its number."""
    number = record.get(document_type(resource).books.number_field)
    return str(record.get(shape().books.reference) or number or "")[:200]


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


def books_crm_id(record: Mapping[str, Any], field: str | None = None) -> str:
    """The CRM id a Books record carries in its unique custom field ('' when none)."""
    field = field or shape().books.crm_id
    for cf in record.get("custom_fields") or []:
        if isinstance(cf, Mapping) and cf.get("api_name") == field:
            return str(cf.get("value") or "")
    return ""


def is_trigger_key(value: str) -> bool:
    """A `cf_crm_id` a deal trigger wrote (`<deal id>:estimate`): the key of the trigger's
    exactly-once upsert, not a CRM record id, so it is never replaced by one."""
    return ":" in value

