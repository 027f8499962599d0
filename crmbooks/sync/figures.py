"""The Books accounting figures written on a linked CRM customer: what they are (a declaration),
how each is computed from what Books' list endpoints carry, which changed, and whether the
CRM fields that hold them fit — all pure.

A figure is one CRM field on the customer's record (an account, or a contact for an individual
customer). Books has no overdue amount on a contact or in its lists (only the
`Invoice.OverDue` filter), so there is no overdue figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

Kind = Literal["money", "date", "text"]
CENT = Decimal("0.01")
#: CRM field types a figure of each kind can be written to.
CRM_TYPES: dict[str, frozenset[str]] = {
    "money": frozenset({"currency", "double", "decimal"}),
    "date": frozenset({"date"}),
    "text": frozenset({"text"}),
}
#: Invoice statuses that are not invoiced amounts (a draft is not sent, a void is cancelled).
NOT_INVOICED = frozenset({"draft", "void"})


@dataclass(frozen=True)
class Figure:
    """One accounting figure: the CRM field that holds it and what kind of value it is."""

    crm_field: str
    kind: Kind
    label: str  # what the README and the errors call it


FIGURES: tuple[Figure, ...] = (
    Figure("Books_Outstanding__c", "money", "outstanding receivables"),
    Figure("Books_Unused_Credits__c", "money", "unused credits"),
    Figure("Books_Invoiced_This_Year__c", "money", "total invoiced this fiscal year"),
    Figure("Books_Invoiced_Total__c", "money", "total invoiced, all time"),
    Figure("Books_Last_Payment_Date__c", "date", "last payment date"),
    Figure("Books_Last_Payment_Amount__c", "money", "last payment amount"),
    Figure("Books_Currency__c", "text", "Books currency"),
)
FIELDS = tuple(f.crm_field for f in FIGURES)
#: The CRM modules a customer's figures go to (business customers → Accounts, individuals →
#: Contacts), by the customers module's record kind.
FIGURE_KINDS = {"accounts": "Accounts", "contacts": "Contacts"}


def money(value: Any) -> Decimal:
    """A Books amount as Decimal to the cent (absent or empty: zero). ValueError naming the
    value when it is not a number."""
    if value is None or value == "":
        return Decimal("0.00")
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None


def fiscal_year_start(today: date, start_month: int) -> date:
    """The first day of the fiscal year ``today`` is in; ``start_month`` is Books'
    `fiscal_year_start_month` (0 = January … 11 = December)."""
    month = int(start_month) % 12 + 1
    year = today.year if today.month >= month else today.year - 1
    return date(year, month, 1)


def compute(contact: Mapping[str, Any], invoices: Iterable[Mapping[str, Any]],
            payments: Iterable[Mapping[str, Any]], year_start: date) -> dict[str, Any]:
    """The figures of one customer, from its Books contact (list or detail: it carries the
    receivables and the currency), its invoices (list rows: date, status, total) and its
    customer payments (list rows: date, amount)."""
    invoiced = this_year = Decimal("0.00")
    for invoice in invoices:
        if str(invoice.get("status") or "").lower() in NOT_INVOICED:
            continue
        total = money(invoice.get("total"))
        invoiced += total
        if _day(invoice.get("date")) is not None and _day(invoice.get("date")) >= year_start:
            this_year += total
    last = max(payments, default=None,
               key=lambda p: (str(p.get("date") or ""), str(p.get("created_time") or ""),
                              str(p.get("payment_id") or "")))
    return {
        "Books_Outstanding__c": money(contact.get("outstanding_receivable_amount")),
        "Books_Unused_Credits__c": money(contact.get("unused_credits_receivable_amount")),
        "Books_Invoiced_This_Year__c": this_year,
        "Books_Invoiced_Total__c": invoiced,
        "Books_Last_Payment_Date__c": (str(last.get("date"))[:10]
                                       if last and last.get("date") else None),
        "Books_Last_Payment_Amount__c": money(last.get("amount")) if last else None,
        "Books_Currency__c": contact.get("currency_code") or None,
    }


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def changes(current: Mapping[str, Any], computed: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of ``computed`` that differ from what the CRM record ``current`` holds
    (amounts compared as Decimals to the cent: 12.5 and "12.50" are the same)."""
    out = {}
    for fig in FIGURES:
        new, old = computed.get(fig.crm_field), current.get(fig.crm_field)
        if not _same(fig, old, new):
            out[fig.crm_field] = new
    return out


def _same(fig: Figure, old: Any, new: Any) -> bool:
    if old in (None, "") or new in (None, ""):
        return old in (None, "") and new in (None, "")
    if fig.kind == "money":
        try:
            return money(old) == money(new)
        except ValueError:
            return False
    return str(old)[:10] == str(new)[:10] if fig.kind == "date" else str(old) == str(new)
