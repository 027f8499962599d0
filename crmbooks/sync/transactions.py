"""Transactions CRM → Books as pure functions: a CRM record of a document type's module
(Quotes, Sales Orders …) as the body of its Books transaction (estimate, sales order …).

Every field name comes from the document types (mappings/transactions.yaml, through the
registry). The party comes from the customers (or vendors) links, every line item from the
items links; anything not linked yet makes the record a failure whose reason names it (sync
that module first). Money is Decimal throughout, and a currency the Books organization has
not enabled is refused with a reason instead of being sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from crmbooks.sync.registry import document_of_crm_module, party, shape
from mappings.schema import DocumentType

#: Longest Books reference number and line description.
MAX_REFERENCE, MAX_DESCRIPTION, MAX_DEAL_NAME = 100, 2000, 200


def crm_fields(module: str, present: set[str] | None = None) -> list[str]:
    """The fields a transactions run reads of CRM `module` (those the org has, when given)."""
    doc, crm = document_of_crm_module(module), shape().crm
    names = [crm.subject, *party(doc).crm.values(), crm.deal, crm.status, doc.crm.date_field,
             crm.adjustment, doc.crm.subform, crm.books_id, crm.currency, crm.modified]
    names = list(dict.fromkeys(names))
    return [n for n in names if present is None or n in present]


def lookup(value: Any) -> tuple[str | None, str]:
    """(id, name) of a CRM lookup value ({"id", "name"}), or (None, "")."""
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


def party_kind(doc: DocumentType, customers_mode: str) -> str:
    """The kind of link that names a record's party: accounts or contacts for a customer (as
    the customers module syncs them), vendors for a vendor."""
    kinds = list(party(doc).crm)
    if len(kinds) == 1:
        return kinds[0]
    return "contacts" if customers_mode == "contacts" else "accounts"


def party_of(record: Mapping[str, Any], doc: DocumentType, customers_mode: str,
             links: Mapping[str, Mapping[str, str]]) -> tuple[dict | None, str | None]:
    """({customer_id|vendor_id: …}, None) from the links, or (None, reason naming the party)."""
    fields = party(doc)
    kind = party_kind(doc, customers_mode)
    crm_id, name = lookup(record.get(fields.crm[kind]))
    noun = kind.removesuffix("s")  # account, contact, vendor
    if not crm_id:
        if kind == "contacts":
            return None, (f"the record has no contact: the {fields.module} module syncs CRM "
                          "Contacts, so its customer comes from Contact Name")
        return None, f"the {doc.noun if doc.books.party == 'vendor' else 'record'} has no {noun}"
    books = links.get(kind, {}).get(crm_id)
    if books:
        return {fields.books_id: books}, None
    return None, (f"{noun} {name!r} ({crm_id}) is not linked to a Books {doc.books.party} yet: "
                  f"sync {fields.module} first (`crmbooks sync {fields.module}`)")


def line_items(record: Mapping[str, Any], doc: DocumentType,
               items: Mapping[str, str]) -> tuple[list[dict], list[str]]:
    """Books line items from the CRM subform, and the problems (unlinked products …)."""
    crm, books = shape().crm.lines, shape().books.lines
    lines, problems = [], []
    rows = record.get(doc.crm.subform) or []
    if not rows:
        problems.append("the record has no line items")
    for n, row in enumerate(rows, start=1):
        product_id, name = lookup(row.get(crm.product))
        item_id = items.get(product_id or "")
        if not item_id:
            problems.append(f"line {n}: product {name!r} ({product_id}) is not linked to a "
                            "Books item yet: sync items first (`crmbooks sync items`)")
            continue
        quantity, q_problem = _money(row.get(crm.quantity), f"line {n}: Quantity")
        rate, r_problem = _money(row.get(crm.price), f"line {n}: List Price")
        discount, d_problem = _money(row.get(crm.discount), f"line {n}: Discount")
        problems += [p for p in (q_problem, r_problem, d_problem) if p]
        line = {books.item: item_id, books.quantity: quantity if quantity is not None
                else Decimal(1)}
        if rate is not None:
            line[books.rate] = rate
        if discount:
            line[books.discount] = discount
        if row.get(crm.description):
            line[books.description] = str(row[crm.description])[:MAX_DESCRIPTION]
        lines.append(line)
    return lines, problems


def books_body(record: Mapping[str, Any], module: str, *, customers_mode: str,
               links: Mapping[str, Mapping[str, str]], currencies: frozenset[str],
               base_currency: str | None) -> tuple[dict | None, str | None]:
    """(Books body, None) for one CRM record of `module`, or (None, every reason it cannot go).

    `links`: {accounts|contacts|vendors|items: {CRM id: Books id}} from the links."""
    doc, crm, books = document_of_crm_module(module), shape().crm, shape().books
    found, why = party_of(record, doc, customers_mode, links)
    lines, problems = line_items(record, doc, links.get("items", {}))
    problems = ([why] if why else []) + problems
    currency = str(record.get(crm.currency) or "").strip().upper()
    if currency and currency != (base_currency or "").upper() and currencies \
            and currency not in currencies:
        problems.append(f"currency {currency} is not enabled in the Books organization "
                        f"(enabled: {', '.join(sorted(currencies))}); add it in Books or "
                        "change the record")
    if problems:
        return None, "; ".join(problems)
    body: dict[str, Any] = {**found, "line_items": lines,
                            books.reference: str(record.get(crm.subject) or "")[:MAX_REFERENCE]}
    if record.get(doc.crm.date_field):
        body[doc.books.date_field] = str(record[doc.crm.date_field])
    if doc.deal:
        deal_id, name = lookup(record.get(crm.deal))
        if deal_id:
            body[books.deal_id], body[books.deal_name] = deal_id, name[:MAX_DEAL_NAME]
    adjustment = record.get(crm.adjustment)
    if doc.adjustment and adjustment not in (None, "", 0):
        body[books.adjustment] = Decimal(str(adjustment))  # may be negative
    if currency and currency != (base_currency or "").upper():
        body[books.currency] = currency
    return body, None
