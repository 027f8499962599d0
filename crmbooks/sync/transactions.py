"""Transactions (F14) as pure functions: a CRM quote, sales order, invoice or purchase order as
the body of its Books estimate, sales order, invoice or purchase order.

The party comes from the customers (or vendors) links, every line item from the items links;
anything not linked yet makes the record a failure whose reason names it (sync that module
first). Money is Decimal throughout, and a currency the Books organization has not enabled is
refused with a reason instead of being sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

#: CRM module → Books resource.
RESOURCE = {"Quotes": "estimates", "Sales_Orders": "salesorders", "Invoices": "invoices",
            "Purchase_Orders": "purchaseorders"}
CRM_MODULE = {v: k for k, v in RESOURCE.items()}
SUBFORM = {"Quotes": "Quoted_Items", "Sales_Orders": "Ordered_Items",
           "Invoices": "Invoiced_Items", "Purchase_Orders": "Purchase_Items"}
#: CRM date field → Books date field.
DATES = {"Quotes": ("Valid_Till", "expiry_date"), "Sales_Orders": ("Due_Date", "shipment_date"),
         "Invoices": ("Due_Date", "due_date"), "Purchase_Orders": ("Due_Date", "delivery_date")}
NOUN = {"estimates": "estimate", "salesorders": "sales order", "invoices": "invoice",
        "purchaseorders": "purchase order"}
#: Books statuses after which CRM changes are no longer applied.
CLOSED = {"void", "cancelled", "billed", "invoiced", "closed"}
CRM_BOOKS_ID = "Books_Id__c"


def crm_fields(module: str, present: set[str] | None = None) -> list[str]:
    """The fields a transactions run reads of `module` (those the org has, when given)."""
    party = "Vendor_Name" if module == "Purchase_Orders" else "Account_Name"
    names = ["Subject", party, "Contact_Name", "Deal_Name", "Status", DATES[module][0],
             "Adjustment", SUBFORM[module], CRM_BOOKS_ID, "Currency", "Modified_Time"]
    return [n for n in names if present is None or n in present]


def _lookup(value: Any) -> tuple[str | None, str]:
    if isinstance(value, Mapping) and value.get("id"):
        return str(value["id"]), str(value.get("name") or "")
    return None, ""


def _money(raw: Any, what: str) -> tuple[Decimal | None, str | None]:
    if raw is None or raw == "":
        return None, None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None, f"{what} {raw!r} is not a number"
    if not value.is_finite():
        return None, f"{what} {raw!r} is not a number"
    if value < 0:
        return None, f"{what} is negative ({value})"
    return value, None


def party_of(record: Mapping[str, Any], module: str, customers_mode: str,
             links: Mapping[str, Mapping[str, str]]) -> tuple[dict | None, str | None]:
    """({customer_id|vendor_id: …}, None) from the links, or (None, reason naming the party)."""
    if module == "Purchase_Orders":
        vendor_id, name = _lookup(record.get("Vendor_Name"))
        if not vendor_id:
            return None, "the purchase order has no vendor"
        books = links.get("vendors", {}).get(vendor_id)
        return ({"vendor_id": books}, None) if books else (None, (
            f"vendor {name!r} ({vendor_id}) is not linked to a Books vendor yet: sync vendors "
            "first (`crmbooks sync vendors`)"))
    if customers_mode == "contacts":
        contact_id, name = _lookup(record.get("Contact_Name"))
        kind, noun = "contacts", "contact"
        if not contact_id:
            return None, ("the record has no contact: the customers module syncs CRM "
                          "Contacts, so its customer comes from Contact Name")
        crm_id = contact_id
    else:
        crm_id, name = _lookup(record.get("Account_Name"))
        kind, noun = "accounts", "account"
        if not crm_id:
            return None, "the record has no account"
    books = links.get(kind, {}).get(crm_id)
    return ({"customer_id": books}, None) if books else (None, (
        f"{noun} {name!r} ({crm_id}) is not linked to a Books customer yet: sync customers "
        "first (`crmbooks sync customers`)"))


def line_items(record: Mapping[str, Any], module: str,
               items: Mapping[str, str]) -> tuple[list[dict], list[str]]:
    """Books line items from the CRM subform, and the problems (unlinked products …)."""
    lines, problems = [], []
    rows = record.get(SUBFORM[module]) or []
    if not rows:
        problems.append("the record has no line items")
    for n, row in enumerate(rows, start=1):
        product_id, name = _lookup(row.get("Product_Name"))
        item_id = items.get(product_id or "")
        if not item_id:
            problems.append(f"line {n}: product {name!r} ({product_id}) is not linked to a "
                            "Books item yet: sync items first (`crmbooks sync items`)")
            continue
        quantity, q_problem = _money(row.get("Quantity"), f"line {n}: Quantity")
        rate, r_problem = _money(row.get("List_Price"), f"line {n}: List Price")
        discount, d_problem = _money(row.get("Discount"), f"line {n}: Discount")
        problems += [p for p in (q_problem, r_problem, d_problem) if p]
        line = {"item_id": item_id, "quantity": quantity if quantity is not None
                else Decimal(1)}
        if rate is not None:
            line["rate"] = rate
        if discount:
            line["discount"] = discount
        if row.get("Description"):
            line["description"] = str(row["Description"])[:2000]
        lines.append(line)
    return lines, problems


def books_body(record: Mapping[str, Any], module: str, *, customers_mode: str,
               links: Mapping[str, Mapping[str, str]], currencies: frozenset[str],
               base_currency: str | None) -> tuple[dict | None, str | None]:
    """(Books body, None) for one CRM transaction, or (None, every reason it cannot go)."""
    party, why = party_of(record, module, customers_mode, links)
    lines, problems = line_items(record, module, links.get("items", {}))
    problems = ([why] if why else []) + problems
    currency = str(record.get("Currency") or "").strip().upper()
    if currency and currency != (base_currency or "").upper() and currencies \
            and currency not in currencies:
        problems.append(f"currency {currency} is not enabled in the Books organization "
                        f"(enabled: {', '.join(sorted(currencies))}); add it in Books or "
                        "change the record")
    if problems:
        return None, "; ".join(problems)
    body: dict[str, Any] = {**party, "line_items": lines,
                            "reference_number": str(record.get("Subject") or "")[:100]}
    crm_date, books_date = DATES[module]
    if record.get(crm_date):
        body[books_date] = str(record[crm_date])
    if module != "Purchase_Orders":
        deal_id, name = _lookup(record.get("Deal_Name"))
        if deal_id:
            body["zcrm_potential_id"], body["zcrm_potential_name"] = deal_id, name[:200]
        adjustment = record.get("Adjustment")
        if adjustment not in (None, "", 0):
            body["adjustment"] = Decimal(str(adjustment))  # may be negative
    if currency and currency != (base_currency or "").upper():
        body["currency_code"] = currency
    return body, None
