"""What customer payments and credit notes do to invoices and to the customer's receivables.

Books keeps, per invoice, what was paid (`payment_made`) and credited (`credits_applied`) and
derives `balance` and the paid / partially_paid statuses from them; per customer it shows
`outstanding_receivable_amount` (what its issued invoices still owe) and
`unused_credits_receivable_amount` (open credit-note balances plus the unused part of its
payments), each also in the base currency (`_bcy`), as contacts.yml documents them. Every write
here validates first and changes state only once the whole request is known to be good, so a
refused request leaves no trace. Money is Decimal, rounded half up to the cent.

The contact fields are recomputed from a per-customer index of the documents that count
(`Ledger`), so a refresh costs the customer's own documents, not the organization's.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from emulators.books.resources import (
    CONTACTS,
    CREDITNOTES,
    CUSTOMERPAYMENTS,
    INVOICES,
    PAYMENT_MODES,
    Resource,
)
from emulators.books.state import (
    INVALID,
    MISSING,
    Ledger,
    Org,
    apply_custom_fields,
    fmt_time,
    get_decimal,
    get_enum,
    get_id,
    get_str,
    invalid,
    money,
    parse_date,
)
from emulators.common.envelopes import books_error

ZERO = Decimal("0.00")
# Invoices that owe nothing by nature: a draft is not issued yet, a void one is cancelled.
NOT_RECEIVABLE = ("draft", "void")
LEDGER_RESOURCES = (INVOICES, CREDITNOTES, CUSTOMERPAYMENTS)


# --------------------------------------------------------------------------------------------
# Balances and statuses
# --------------------------------------------------------------------------------------------


def settle_invoice(invoice: dict) -> None:
    """balance = total - payments - credits; paid / partially_paid follow the balance.

    An invoice with nothing received goes back to `sent` from paid/partially_paid (Books'
    overdue status, derived from due dates, is not modelled)."""
    received = invoice.get("payment_made", ZERO) + invoice.get("credits_applied", ZERO)
    if invoice["status"] == "void":
        invoice["balance"] = ZERO
        return
    balance = money(invoice["total"] - received)
    if balance < 0:
        raise books_error(INVALID, "The invoice total cannot be less than the payments and "
                          "credits already applied to it.")
    invoice["balance"] = balance
    if invoice["status"] == "draft":
        return
    if received > 0 and balance == 0:
        invoice["status"] = "paid"
    elif received > 0:
        invoice["status"] = "partially_paid"
    elif invoice["status"] in ("paid", "partially_paid"):
        invoice["status"] = "sent"


def settle_creditnote(note: dict) -> None:
    """balance = total - credits applied; closed when all is used, open again when not."""
    applied = sum((a["amount_applied"] for a in note.get("invoices_credited", [])), ZERO)
    if note["status"] == "void":
        note["balance"] = ZERO
        return
    balance = money(note["total"] - applied)
    if balance < 0:
        raise books_error(INVALID, "The credit note total cannot be less than the credits "
                          "already applied from it.")
    note["balance"] = balance
    if note["status"] == "open" and balance == 0 and applied > 0:
        note["status"] = "closed"
    elif note["status"] == "closed" and balance > 0:
        note["status"] = "open"


def settle(resource: Resource, record: dict) -> None:
    """Recompute the balance (and paid/closed status) of an invoice or a credit note."""
    if resource is INVOICES:
        settle_invoice(record)
    elif resource is CREDITNOTES:
        settle_creditnote(record)


def check_void(resource: Resource, record: dict) -> None:
    """An invoice with payments or credits, or a credit note with credits applied, is not
    voided (the applications are removed first; Books' wording is unverified)."""
    if resource is INVOICES and (record.get("payment_made", ZERO) > 0
                                 or record.get("credits_applied", ZERO) > 0):
        raise books_error(INVALID, "The invoice has payments or credits applied. Delete them "
                          "before voiding the invoice.")
    if resource is CREDITNOTES and record.get("invoices_credited"):
        raise books_error(INVALID, "Credits of this credit note are applied to invoices. "
                          "Delete them before voiding the credit note.")


# --------------------------------------------------------------------------------------------
# The per-customer index and the contact's receivables fields
# --------------------------------------------------------------------------------------------


def rebuild(org: Org) -> None:
    """Index every invoice, credit note and payment and recompute every customer (after the
    sample data is laid down outside the request handlers)."""
    org.ledger = Ledger()
    for resource in LEDGER_RESOURCES:
        for record in org.table(resource).values():
            org.ledger.place(resource, record)
    for contact in org.table(CONTACTS).values():
        refresh_contact(org, contact)


def touched(org: Org, resource: Resource, record: dict, action: str) -> None:
    """After a write of an invoice, credit note or payment: refresh the customers it counts
    for (a document moved to another customer refreshes both)."""
    if resource not in LEDGER_RESOURCES:
        return
    for customer_id in org.ledger.place(resource, record, deleted=action == "deleted"):
        contact = org.table(CONTACTS).get(customer_id)
        if contact is not None:
            refresh_contact(org, contact)


def customer_documents(org: Org, customer_id: str, resource: Resource) -> list[dict]:
    """A customer's payments or credit notes (from the index: what may apply to its
    invoices), oldest first."""
    keys = org.ledger.docs.get(customer_id, ())
    table = org.table(resource)
    return sorted((table[i] for plural, i in keys if plural == resource.plural),
                  key=lambda r: (r["created_time"], r[resource.id_field]))


def refresh_contact(org: Org, contact: dict) -> None:
    """The receivables fields of one contact, from its indexed documents."""
    outstanding = outstanding_bcy = credits = credits_bcy = ZERO
    for plural, record_id in org.ledger.docs.get(contact["contact_id"], ()):
        record = org.records[plural][record_id]
        rate = record.get("exchange_rate") or Decimal(1)
        if plural == INVOICES.plural:
            if record["status"] not in NOT_RECEIVABLE:
                outstanding += record["balance"]
                outstanding_bcy += record["balance"] * rate
        elif plural == CREDITNOTES.plural:
            if record["status"] == "open":
                credits += record["balance"]
                credits_bcy += record["balance"] * rate
        else:
            credits += record["unused_amount"]
            credits_bcy += record["unused_amount"] * rate
    contact["outstanding_receivable_amount"] = money(outstanding)
    contact["outstanding_receivable_amount_bcy"] = money(outstanding_bcy)
    contact["unused_credits_receivable_amount"] = money(credits)
    contact["unused_credits_receivable_amount_bcy"] = money(credits_bcy)


# --------------------------------------------------------------------------------------------
# Applications: [{"invoice_id", "amount_applied"}] from a payment or a credit note
# --------------------------------------------------------------------------------------------


def read_applications(org: Org, raw: Any, customer_id: str, available: Decimal,
                      already: dict[str, Decimal], what: str) -> list[tuple[dict, Decimal]]:
    """Validate an `invoices` array; (invoice, amount) pairs.

    Each invoice is an issued invoice of the same customer, named once, with a positive
    amount no larger than its balance (plus what this document already applied to it, for an
    update), and together they use no more than `available`."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid("invoices")
    out: list[tuple[dict, Decimal]] = []
    seen: set[str] = set()
    for entry in raw:
        if not isinstance(entry, dict):
            raise invalid("invoices")
        invoice_id = get_id(entry, "invoice_id")
        if invoice_id is None:
            raise books_error(MISSING, "Please enter invoice_id.")
        if invoice_id in seen:
            raise invalid("invoice_id")
        seen.add(invoice_id)
        amount = get_decimal(entry, "amount_applied", required=True)
        if amount is None or amount <= 0:
            raise invalid("amount_applied")
        amount = money(amount)
        invoice = org.get(INVOICES, invoice_id)
        if invoice.get("customer_id") != customer_id:
            raise books_error(INVALID, f"Invoice {invoice['invoice_number']} belongs to "
                              "another customer.")
        if invoice["status"] in NOT_RECEIVABLE:
            raise books_error(INVALID, f"Invoice {invoice['invoice_number']} is "
                              f"{invoice['status']}: no {what} can be applied to it.")
        if amount > invoice["balance"] + already.get(invoice_id, ZERO):
            raise books_error(INVALID, f"The amount applied to invoice "
                              f"{invoice['invoice_number']} is more than its balance.")
        out.append((invoice, amount))
    if sum((a for _, a in out), ZERO) > available:
        raise books_error(INVALID, f"The amount applied to invoices is more than the "
                          f"{what} amount.")
    return out


# --------------------------------------------------------------------------------------------
# Customer payments
# --------------------------------------------------------------------------------------------


def new_payment(org: Org, data: dict, payment_id: str, now: datetime) -> tuple[dict, list]:
    """A payment from a create body: (record, invoices whose balance changed)."""
    for key in CUSTOMERPAYMENTS.required:
        if key not in data:
            raise books_error(MISSING, f"Please enter {key}.")
    stamp = fmt_time(now)
    record: dict[str, Any] = {
        "payment_id": payment_id, "payment_number": "", "customer_id": "",
        "customer_name": "", "payment_mode": "", "amount": ZERO, "unused_amount": ZERO,
        "bank_charges": ZERO, "date": now.date().isoformat(), "status": "success",
        "reference_number": "", "description": "", "invoices": [], "invoice_numbers": "",
        "exchange_rate": Decimal(1), "custom_fields": [], "custom_field_hash": {},
        "created_time": stamp, "last_modified_time": stamp,
    }
    changed = update_payment(org, record, data, now)
    org.numbers[CUSTOMERPAYMENTS.plural] = org.numbers.get(CUSTOMERPAYMENTS.plural, 0) + 1
    record["payment_number"] = str(org.numbers[CUSTOMERPAYMENTS.plural])
    return record, changed


def update_payment(org: Org, record: dict, data: dict, now: datetime) -> list[dict]:
    """Apply a (partial) payment body; an `invoices` array replaces the applications. Checks
    everything before changing anything; returns the invoices whose balance changed."""
    customer_id = get_id(data, "customer_id") if "customer_id" in data else \
        record["customer_id"]
    contact = org.table(CONTACTS).get(customer_id or "")
    if contact is None or contact["contact_type"] != "customer":
        raise invalid("customer_id")
    mode = get_enum(data, "payment_mode", PAYMENT_MODES)
    amount = get_decimal(data, "amount")
    if amount is not None and amount <= 0:
        raise invalid("amount")
    amount = money(amount) if amount is not None else record["amount"]
    day = parse_date(data["date"], "date") if data.get("date") else None
    texts = {key: get_str(data, key, limit) for key, limit in
             (("reference_number", 100), ("description", 2000))}
    charges = get_decimal(data, "bank_charges")
    if charges is not None and charges < 0:
        raise invalid("bank_charges")
    rate = get_decimal(data, "exchange_rate")
    if rate is not None and rate <= 0:
        raise invalid("exchange_rate")
    old = {a["invoice_id"]: a["amount_applied"] for a in record["invoices"]}
    if "invoices" in data:
        applications = read_applications(org, data["invoices"], customer_id, amount, old,
                                         "payment")
    else:  # the applications stay; they must still fit the (new) amount and customer
        if customer_id != record["customer_id"] and old:
            raise invalid("customer_id")
        applications = [(org.get(INVOICES, i), a) for i, a in old.items()]
        if sum(old.values(), ZERO) > amount:
            raise books_error(INVALID, "The amount applied to invoices is more than the "
                              "payment amount.")
    # Custom fields last among the checks (a repeated unique value is refused), then the
    # changes: the invoices, the customer's reference count (a customer with payments is not
    # deleted), the payment.
    apply_custom_fields(org, CUSTOMERPAYMENTS, record, data, record["payment_id"])
    changed = _reapply(org, "payment_made", old, applications)
    if record["customer_id"] != customer_id:
        if record["customer_id"]:
            org.ref(record["customer_id"], -1)
        org.ref(customer_id, 1)
    record.update(customer_id=customer_id, customer_name=contact["contact_name"],
                  amount=amount)
    if mode is not None:
        record["payment_mode"] = mode
    if day is not None:
        record["date"] = day
    for key, value in texts.items():
        if value is not None:
            record[key] = value
    if charges is not None:
        record["bank_charges"] = money(charges)
    record["exchange_rate"] = rate if rate is not None else org.currencies[
        contact["currency_id"]]["exchange_rate"]
    record.update(currency_id=contact["currency_id"], currency_code=contact["currency_code"],
                  currency_symbol=contact["currency_symbol"])
    record["invoices"] = [_applied_row(invoice, a) for invoice, a in applications]
    record["invoice_numbers"] = ",".join(i["invoice_number"] for i, _ in applications)
    applied = sum((a for _, a in applications), ZERO)
    record["unused_amount"] = money(amount - applied)
    record["bcy_amount"] = money(amount * record["exchange_rate"])
    contact["has_transaction"] = True
    record["last_modified_time"] = fmt_time(now)
    return changed


def _applied_row(invoice: dict, amount: Decimal) -> dict:
    """One entry of a payment's `invoices`, as customer-payments.yml documents it."""
    return {"invoice_id": invoice["invoice_id"], "invoice_number": invoice["invoice_number"],
            "date": invoice["date"], "invoice_amount": invoice["total"],
            "amount_applied": amount, "balance_amount": invoice["balance"]}


def _reapply(org: Org, field: str, old: dict[str, Decimal],
             new: list[tuple[dict, Decimal]]) -> list[dict]:
    """Move a document's applications from `old` to `new` on the invoices' `field`; the
    invoices whose amount really changed (re-applying the same amounts changes nothing)."""
    touched: dict[str, tuple[dict, Decimal]] = {}
    for invoice_id, amount in old.items():
        invoice = org.table(INVOICES).get(invoice_id)
        if invoice is not None:
            touched.setdefault(invoice_id, (invoice, invoice.get(field, ZERO)))
            invoice[field] = money(invoice.get(field, ZERO) - amount)
    for invoice, amount in new:
        touched.setdefault(invoice["invoice_id"], (invoice, invoice.get(field, ZERO)))
        invoice[field] = money(invoice.get(field, ZERO) + amount)
    changed = []
    for invoice, before in touched.values():
        settle_invoice(invoice)
        if invoice[field] != before:
            changed.append(invoice)
    return changed


def release_payment(org: Org, record: dict) -> list[dict]:
    """A deleted payment gives its invoices their balance back and stops holding its
    customer."""
    org.ref(record["customer_id"], -1)
    old = {a["invoice_id"]: a["amount_applied"] for a in record["invoices"]}
    return _reapply(org, "payment_made", old, [])


def refresh_rows(payment: dict, org: Org) -> None:
    """The invoice rows of a payment show the invoices' current balances."""
    for row in payment["invoices"]:
        invoice = org.table(INVOICES).get(row["invoice_id"])
        if invoice is not None:
            row["balance_amount"] = invoice["balance"]
            row["invoice_amount"] = invoice["total"]


# --------------------------------------------------------------------------------------------
# Credit notes applied to invoices
# --------------------------------------------------------------------------------------------


def apply_credits(org: Org, note: dict, data: dict, now: datetime, new_id) -> list[dict]:
    """POST /creditnotes/{id}/invoices: validate all, then credit each invoice. Returns the
    applied rows ({"invoice_id", "amount_applied"})."""
    if note["status"] != "open":
        raise books_error(INVALID, f"Credits can be applied only from an open credit note; "
                          f"this one is {note['status']}.")
    if "invoices" not in data:
        raise books_error(MISSING, "Please enter invoices.")
    if not data["invoices"]:
        raise invalid("invoices")
    applications = read_applications(org, data["invoices"], note["customer_id"],
                                     note["balance"], {}, "credit")
    for invoice, amount in applications:
        invoice["credits_applied"] = money(invoice.get("credits_applied", ZERO) + amount)
        settle_invoice(invoice)
        invoice["last_modified_time"] = fmt_time(now)
        note.setdefault("invoices_credited", []).append({
            "creditnote_invoice_id": new_id(), "invoice_id": invoice["invoice_id"],
            "invoice_number": invoice["invoice_number"], "date": now.date().isoformat(),
            "amount_applied": amount})
    settle_creditnote(note)
    note["last_modified_time"] = fmt_time(now)
    return [{"invoice_id": i["invoice_id"], "amount_applied": a} for i, a in applications]


def remove_credit(org: Org, note: dict, application_id: str, now: datetime) -> dict | None:
    """DELETE /creditnotes/{id}/invoices/{creditnote_invoice_id}: the invoice owes the amount
    again and the credit note has it back. Returns the invoice (None if it is gone)."""
    rows = note.get("invoices_credited", [])
    row = next((r for r in rows if r["creditnote_invoice_id"] == application_id), None)
    if row is None:
        raise books_error(1002, "The credit applied to the invoice does not exist.",
                          status=404)
    rows.remove(row)
    invoice = org.table(INVOICES).get(row["invoice_id"])
    if invoice is not None:
        invoice["credits_applied"] = money(invoice["credits_applied"] - row["amount_applied"])
        settle_invoice(invoice)
        invoice["last_modified_time"] = fmt_time(now)
    settle_creditnote(note)
    note["last_modified_time"] = fmt_time(now)
    return invoice


def release_creditnote(org: Org, note: dict, now: datetime) -> list[dict]:
    """A deleted credit note takes its credits back from the invoices."""
    invoices = []
    for row in list(note.get("invoices_credited", [])):
        invoice = remove_credit(org, note, row["creditnote_invoice_id"], now)
        if invoice is not None:
            invoices.append(invoice)
    return invoices


def release_invoice(org: Org, invoice: dict, now: datetime) -> tuple[list[dict], list[dict]]:
    """A deleted invoice frees what was applied to it: the payments' amounts become unused
    credit, the credit notes get their credits back. Returns (payments, credit notes)."""
    invoice_id = invoice["invoice_id"]
    payments, notes = [], []
    for payment in customer_documents(org, invoice["customer_id"], CUSTOMERPAYMENTS):
        kept = [r for r in payment["invoices"] if r["invoice_id"] != invoice_id]
        if len(kept) != len(payment["invoices"]):
            payment["invoices"] = kept
            payment["invoice_numbers"] = ",".join(r["invoice_number"] for r in kept)
            payment["unused_amount"] = money(
                payment["amount"] - sum((r["amount_applied"] for r in kept), ZERO))
            payment["last_modified_time"] = fmt_time(now)
            payments.append(payment)
    for note in customer_documents(org, invoice["customer_id"], CREDITNOTES):
        rows = note.get("invoices_credited", [])
        kept = [r for r in rows if r["invoice_id"] != invoice_id]
        if len(kept) != len(rows):
            note["invoices_credited"] = kept
            settle_creditnote(note)
            note["last_modified_time"] = fmt_time(now)
            notes.append(note)
    return payments, notes
