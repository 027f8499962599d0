"""End to end: the Books accounting figures on the linked CRM customer, through the emulators'
HTTP APIs — by the customers catch-up, by a Books payment webhook, and a missing CRM field."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from crmbooks.app.receiver.server import Receiver
from crmbooks.sync.check import MappingCheckError
from flows.customers import sync_customers
from support.customers import clear_stats, sync, writes
from support.receiver import settle, wait_for
from support.vendors_items import org_of

D = Decimal


class Books:
    """Invoices and payments written through the Books emulator's API."""

    def __init__(self, http, org: str):
        self.http, self.org = http, org

    def ok(self, method: str, path: str, **kw) -> dict:
        response = self.http.request(method, f"/books/v3{path}",
                                     params={"organization_id": self.org}, **kw)
        body = json.loads(response.text, parse_float=Decimal)
        assert response.status_code < 300 and body["code"] == 0, body
        return body

    def invoice(self, customer_id: str, rate: str) -> str:
        invoice = self.ok("POST", "/invoices", json={
            "customer_id": customer_id,
            "line_items": [{"name": "Consulting", "rate": rate, "quantity": 1}]})["invoice"]
        self.ok("POST", f"/invoices/{invoice['invoice_id']}/status/sent")
        return invoice["invoice_id"]

    def pay(self, customer_id: str, amount: str, invoice_id: str, day: str) -> None:
        self.ok("POST", "/customerpayments", json={
            "customer_id": customer_id, "payment_mode": "banktransfer", "amount": amount,
            "date": day, "invoices": [{"invoice_id": invoice_id, "amount_applied": amount}]})


def a_linked_account(store) -> tuple[str, str]:
    """(Books contact id, CRM account id) of one linked business customer."""
    links = store.link_ids("customers")
    row = links[links["kind"] == "accounts"].iloc[0]
    return str(row["books_id"]), str(row["crm_id"])


def money(value) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(D("0.01"))


def test_invoice_and_payment_figures_reach_the_crm_account_and_a_quiet_run_writes_nothing(
        store, emu_reset, books_http):
    books = Books(books_http, org_of(emu_reset))
    state, _ = sync(store)
    books_id, crm_id = a_linked_account(store)
    account = emu_reset.emu.crm.records("Accounts")[crm_id]
    base = money(account.get("Books_Invoiced_Total__c")) or D("0.00")
    assert account.get("Books_Currency__c")  # the first run wrote every linked customer's

    invoice = books.invoice(books_id, "100.50")
    sync(store)
    assert money(account["Books_Outstanding__c"]) >= D("100.50")
    assert money(account["Books_Invoiced_Total__c"]) == base + D("100.50")
    outstanding = money(account["Books_Outstanding__c"])

    books.pay(books_id, "40.25", invoice, "2026-01-15")
    state, _ = sync(store)
    assert money(account["Books_Outstanding__c"]) == outstanding - D("40.25")
    assert account["Books_Last_Payment_Date__c"] == "2026-01-15"
    assert money(account["Books_Last_Payment_Amount__c"]) == D("40.25")
    figures = state.result()["figures"]
    assert (figures["read"], figures["written"]) == (1, 1)

    clear_stats(emu_reset)
    state, _ = sync(store)
    assert state.result()["figures"]["written"] == 0
    assert writes(emu_reset, "crm") == []

    # The payment of a customer that is not linked (as a webhook names it) is skipped with
    # its reason, and nothing is written.
    stranger = books.ok("POST", "/contacts", json={"contact_name": "Never Linked Ltd"})[
        "contact"]["contact_id"]
    books.pay(stranger, "10.00", books.invoice(stranger, "10.00"), "2026-01-16")
    clear_stats(emu_reset)
    figures = sync_customers(figures_of=[stranger], return_state=True).result()["figures"]
    assert [s["books_id"] for s in figures["skipped"]] == [stranger]
    assert "not linked" in figures["skipped"][0]["reason"]
    assert writes(emu_reset, "crm") == []


def test_a_books_payment_webhook_moves_the_crm_figure_without_a_scheduled_run(
        store, emu_reset, books_http):
    books = Books(books_http, org_of(emu_reset))
    sync(store)
    books_id, crm_id = a_linked_account(store)
    invoice = books.invoice(books_id, "250.00")
    account = emu_reset.emu.crm.records("Accounts")[crm_id]
    runs_before = len(store.list_runs("customers", limit=50))
    receiver = Receiver(debounce_s=0.1).start()
    try:
        books.pay(books_id, "70.00", invoice, "2026-02-01")
        wait_for(lambda: account.get("Books_Last_Payment_Date__c") == "2026-02-01")
        settle(emu_reset, receiver)
        assert money(account["Books_Last_Payment_Amount__c"]) == D("70.00")
        runs = store.list_runs("customers", limit=50)[:len(store.list_runs(
            "customers", limit=50)) - runs_before]
        # Only targeted runs: the figures cursor of the catch-up did not move.
        assert runs and all(r.state == "completed" for r in runs)
    finally:
        receiver.stop()


@pytest.mark.parametrize("change, words", [
    ("missing", ["no field Books_Outstanding__c", "create it in CRM"]),
    ("read_only", ["Books_Outstanding__c is read-only"]),
])
def test_a_figure_field_that_does_not_fit_stops_the_run_before_any_write(
        store, emu_reset, change, words):
    fields = emu_reset.emu.crm.catalogue.fields["Accounts"]
    kept = list(fields)
    [target] = [f for f in fields if f.api_name == "Books_Outstanding__c"]
    if change == "missing":
        fields.remove(target)
    else:
        fields[fields.index(target)] = type(target)(**{**target.__dict__, "read_only": True})
    clear_stats(emu_reset)
    try:
        state, run = sync(store)
    finally:
        fields[:] = kept
    assert state.is_failed()
    with pytest.raises(MappingCheckError):
        state.result()
    for word in words:
        assert word in run.message
    assert writes(emu_reset) == []
    assert store.link_ids("customers").empty
