"""Books emulator: customer payments, credit notes, and what they do to invoices and to the
customer's receivables (`outstanding_receivable_amount`, `unused_credits_receivable_amount`
and their base-currency twins), over HTTP; every refused request leaves everything as it was.
"""

from __future__ import annotations

import json
import threading
import time
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest


@pytest.fixture
def books(books_http, emu_reset):
    """A Books client bound to the default organization."""
    return Books(books_http, emu_reset.emu.config.books_org_ids[0])


class Books:
    """Short calls to the Books emulator of one organization; amounts come back as Decimal."""

    def __init__(self, http, org: str):
        self.http, self.org = http, org

    def call(self, method: str, path: str, **kw):
        params = {"organization_id": self.org, **kw.pop("params", {})}
        response = self.http.request(method, f"/books/v3{path}", params=params, **kw)
        return response.status_code, json.loads(response.text, parse_float=Decimal)

    def ok(self, method: str, path: str, **kw) -> dict:
        status, body = self.call(method, path, **kw)
        assert status < 300 and body["code"] == 0, body
        return body

    def customer(self, name: str) -> str:
        return self.ok("POST", "/contacts", json={"contact_name": name})["contact"]["contact_id"]

    def invoice(self, customer_id: str, rate: str, sent: bool = True) -> dict:
        invoice = self.ok("POST", "/invoices", json={
            "customer_id": customer_id,
            "line_items": [{"name": "Consulting", "rate": rate, "quantity": 1}]})["invoice"]
        if sent:
            self.ok("POST", f"/invoices/{invoice['invoice_id']}/status/sent")
        return self.get("invoices", invoice["invoice_id"])

    def get(self, plural: str, record_id: str) -> dict:
        key = {"customerpayments": "payment"}.get(plural, plural[:-1])
        return self.ok("GET", f"/{plural}/{record_id}")[key]

    def figures(self, contact_id: str) -> tuple[Decimal, Decimal]:
        contact = self.get("contacts", contact_id)
        return (contact["outstanding_receivable_amount"],
                contact["unused_credits_receivable_amount"])

    def listed_figures(self, contact_id: str) -> tuple[Decimal, Decimal]:
        row = self.ok("GET", "/contacts", params={"contact_name": self.get(
            "contacts", contact_id)["contact_name"]})["contacts"][0]
        return row["outstanding_receivable_amount"], row["unused_credits_receivable_amount"]

    def pay(self, customer_id: str, amount: str, *applied: tuple[str, str], **extra):
        return self.call("POST", "/customerpayments", json={
            "customer_id": customer_id, "payment_mode": "banktransfer", "amount": amount,
            "invoices": [{"invoice_id": i, "amount_applied": a} for i, a in applied],
            **extra})


D = Decimal


def test_receivables_follow_invoice_payment_credit_note_and_void(books):
    customer = books.customer("Receivables Ltd")
    assert books.figures(customer) == (D("0"), D("0"))
    draft = books.invoice(customer, "50.00", sent=False)
    assert books.figures(customer) == (D("0"), D("0"))  # a draft owes nothing yet
    invoice = books.invoice(customer, "100.10")
    assert invoice["balance"] == D("100.10") and invoice["status"] == "sent"
    assert books.figures(customer) == (D("100.10"), D("0"))

    # Three partial payments of a third: Decimal to the cent, no float drift.
    for _ in range(3):
        status, body = books.pay(customer, "33.33", (invoice["invoice_id"], "33.33"))
        assert status == 201 and body["message"] == "The payment has been created."
    invoice = books.get("invoices", invoice["invoice_id"])
    assert invoice["status"] == "partially_paid"
    assert (invoice["payment_made"], invoice["balance"]) == (D("99.99"), D("0.11"))
    assert books.figures(customer) == (D("0.11"), D("0"))

    # A credit note is an unused credit until applied; applying it pays the invoice off.
    note = books.ok("POST", "/creditnotes", json={
        "customer_id": customer,
        "line_items": [{"name": "Returned goods", "rate": "20.00"}]})["creditnote"]
    assert note["status"] == "open" and note["creditnote_number"].startswith("CN-")
    assert books.figures(customer) == (D("0.11"), D("20.00"))
    applied = books.ok("POST", f"/creditnotes/{note['creditnote_id']}/invoices", json={
        "invoices": [{"invoice_id": invoice["invoice_id"], "amount_applied": "0.11"}]})
    assert applied["message"] == "Credits have been applied to the invoice(s)."
    invoice = books.get("invoices", invoice["invoice_id"])
    assert (invoice["status"], invoice["balance"], invoice["credits_applied"]) == (
        "paid", D("0.00"), D("0.11"))
    assert books.get("creditnotes", note["creditnote_id"])["balance"] == D("19.89")
    assert books.figures(customer) == (D("0.00"), D("19.89"))
    assert books.listed_figures(customer) == (D("0.00"), D("19.89"))  # the list row too
    paid = books.ok("GET", f"/invoices/{invoice['invoice_id']}/payments")["payments"]
    assert [p["amount"] for p in paid] == [D("33.33")] * 3
    credits = books.ok("GET", f"/invoices/{invoice['invoice_id']}/creditsapplied")["credits"]
    assert [(c["creditnote_id"], c["amount_applied"]) for c in credits] == [
        (note["creditnote_id"], D("0.11"))]

    # Void: refused while credits are applied; once they are removed, the credit is gone.
    status, body = books.call("POST", f"/creditnotes/{note['creditnote_id']}/status/void")
    assert status == 400 and "Delete them before voiding" in body["message"]
    credited = books.ok("GET", f"/creditnotes/{note['creditnote_id']}/invoices")[
        "invoices_credited"]
    books.ok("DELETE", f"/creditnotes/{note['creditnote_id']}/invoices/"
             f"{credited[0]['creditnote_invoice_id']}")
    assert books.get("invoices", invoice["invoice_id"])["status"] == "partially_paid"
    assert books.figures(customer) == (D("0.11"), D("20.00"))
    voided = books.ok("POST", f"/creditnotes/{note['creditnote_id']}/status/void")
    assert voided["message"] == "The credit note has been voided."
    assert books.figures(customer) == (D("0.11"), D("0"))
    books.ok("POST", f"/creditnotes/{note['creditnote_id']}/status/open")
    assert books.figures(customer) == (D("0.11"), D("20.00"))

    # An invoice with payments is not voided; the draft is, and changes nothing.
    status, body = books.call("POST", f"/invoices/{invoice['invoice_id']}/status/void")
    assert status == 400
    books.ok("POST", f"/invoices/{draft['invoice_id']}/status/void")
    assert books.figures(customer) == (D("0.11"), D("20.00"))


def test_payments_crud_lists_and_excess_credit(books, emu_reset):
    customer = books.customer("Payer GmbH")
    other = books.customer("Other Payer")
    first, second = books.invoice(customer, "80.00"), books.invoice(customer, "45.50")
    books.invoice(other, "10.00")
    status, body = books.pay(customer, "150.00", (first["invoice_id"], "80.00"),
                             (second["invoice_id"], "20.00"), reference_number="BANK-1")
    assert status == 201
    payment = body["payment"]
    assert payment["payment_number"] and payment["unused_amount"] == D("50.00")
    assert [(r["invoice_id"], r["amount_applied"]) for r in payment["invoices"]] == [
        (first["invoice_id"], D("80.00")), (second["invoice_id"], D("20.00"))]
    assert books.get("invoices", first["invoice_id"])["status"] == "paid"
    # The excess of a payment is an unused credit of the customer.
    assert books.figures(customer) == (D("25.50"), D("50.00"))
    assert books.figures(other) == (D("10.00"), D("0"))

    # The list: customer_id, paging, the modified-after filter, the sort.
    _, theirs = books.pay(other, "5.00")
    mine = books.ok("GET", "/customerpayments", params={"customer_id": customer})
    assert [r["payment_id"] for r in mine["customerpayments"]] == [payment["payment_id"]]
    page = books.ok("GET", "/customerpayments", params={"per_page": 1, "page": 1,
                                                         "sort_column": "amount"})
    assert page["page_context"]["has_more_page"] and page["customerpayments"][0][
        "amount"] == D("5.00")
    emu_reset.emu.advance_clock(60)

    # Update: a new invoices array replaces the applications.
    updated = books.ok("PUT", f"/customerpayments/{payment['payment_id']}", json={
        "amount": "100.00", "invoices": [{"invoice_id": second["invoice_id"],
                                          "amount_applied": "45.50"}]})
    assert updated["message"] == "The payment details have been updated."
    assert books.get("invoices", first["invoice_id"])["balance"] == D("80.00")
    assert books.get("invoices", second["invoice_id"])["status"] == "paid"
    assert books.figures(customer) == (D("80.00"), D("54.50"))
    later = books.get("customerpayments", payment["payment_id"])["last_modified_time"]
    assert later > payment["last_modified_time"]
    since = books.ok("GET", "/customerpayments", params={"last_modified_time": later})
    assert [r["payment_id"] for r in since["customerpayments"]] == [payment["payment_id"]]
    assert theirs["payment"]["payment_id"] in {r["payment_id"] for r in books.ok(
        "GET", "/customerpayments", params={"last_modified_time": payment[
            "last_modified_time"]})["customerpayments"]}

    # Deleting the invoice turns what was applied to it into unused credit.
    books.ok("DELETE", f"/invoices/{second['invoice_id']}")
    assert books.get("customerpayments", payment["payment_id"])["unused_amount"] == D("100.00")
    assert books.figures(customer) == (D("80.00"), D("100.00"))
    # Deleting the payment gives up the credit.
    deleted = books.ok("DELETE", f"/customerpayments/{payment['payment_id']}")
    assert deleted["message"] == "The payment has been deleted."
    assert books.figures(customer) == (D("80.00"), D("0"))
    status, _ = books.call("GET", f"/customerpayments/{payment['payment_id']}")
    assert status == 404
    # Bulk delete: all or none (an unknown id deletes nothing).
    paid = [books.pay(customer, "10.00", (first["invoice_id"], "10.00"))[1]["payment"][
        "payment_id"] for _ in range(2)]
    status, _ = books.call("DELETE", "/customerpayments", params={
        "payment_id": f"{paid[0]},460000000999999", "bulk_delete": "true"})
    assert status == 404 and books.figures(customer) == (D("60.00"), D("0"))
    books.ok("DELETE", "/customerpayments", params={"payment_id": ",".join(paid),
                                                    "bulk_delete": "true"})
    assert books.get("invoices", first["invoice_id"])["balance"] == D("80.00")


def test_bad_payments_and_credits_are_refused_and_change_nothing(books):
    customer = books.customer("Careful Co")
    stranger = books.customer("Stranger Co")
    invoice = books.invoice(customer, "60.00")
    draft = books.invoice(customer, "5.00", sent=False)
    theirs = books.invoice(stranger, "7.00")
    books.pay(customer, "10.00", (invoice["invoice_id"], "10.00"))
    note = books.ok("POST", "/creditnotes", json={
        "customer_id": customer, "line_items": [{"name": "Refund", "rate": "15.00"}]})[
        "creditnote"]
    before = (books.figures(customer), books.get("invoices", invoice["invoice_id"]),
              books.ok("GET", "/customerpayments")["customerpayments"],
              books.get("creditnotes", note["creditnote_id"]))
    iid = invoice["invoice_id"]
    bad_payments = [
        ({"customer_id": customer, "amount": "5"}, "Please enter payment_mode."),
        ({"customer_id": customer, "payment_mode": "cash"}, "Please enter amount."),
        ({"customer_id": customer, "payment_mode": "cash", "amount": "0"}, "amount"),
        ({"customer_id": customer, "payment_mode": "barter", "amount": "5"}, "payment_mode"),
        ({"customer_id": "1", "payment_mode": "cash", "amount": "5"}, "customer_id"),
        ({"customer_id": customer, "payment_mode": "cash", "amount": "5", "invoices": "x"},
         "invoices"),
        ({"customer_id": customer, "payment_mode": "cash", "amount": "100",
          "invoices": [{"invoice_id": iid, "amount_applied": "50.01"}]}, "its balance"),
        ({"customer_id": customer, "payment_mode": "cash", "amount": "5",
          "invoices": [{"invoice_id": iid, "amount_applied": "6"}]},
         "more than the payment amount"),
        ({"customer_id": customer, "payment_mode": "cash", "amount": "5",
          "invoices": [{"invoice_id": theirs["invoice_id"], "amount_applied": "1"}]},
         "another customer"),
        ({"customer_id": customer, "payment_mode": "cash", "amount": "5",
          "invoices": [{"invoice_id": draft["invoice_id"], "amount_applied": "1"}]},
         "is draft"),
        ({"customer_id": customer, "payment_mode": "cash", "amount": "5",
          "invoices": [{"invoice_id": iid, "amount_applied": "1"},
                       {"invoice_id": iid, "amount_applied": "1"}]}, "invoice_id"),
        ({"customer_id": customer, "payment_mode": "cash", "amount": "5",
          "invoices": [{"invoice_id": "460000000999999", "amount_applied": "1"}]},
         "Invoice does not exist."),
    ]
    for body, words in bad_payments:
        status, answer = books.call("POST", "/customerpayments", json=body)
        assert status in (400, 404) and words in answer["message"], (body, answer)
    path = f"/creditnotes/{note['creditnote_id']}/invoices"
    for body, words in [
        ({}, "Please enter invoices."),
        ({"invoices": [{"invoice_id": iid, "amount_applied": "15.01"}]}, "credit amount"),
        ({"invoices": [{"invoice_id": iid, "amount_applied": "-1"}]}, "amount_applied"),
        ({"invoices": [{"invoice_id": theirs["invoice_id"], "amount_applied": "1"}]},
         "another customer")]:
        status, answer = books.call("POST", path, json=body)
        assert status == 400 and words in answer["message"], (body, answer)
    # An invoice cannot shrink below what was received, nor move to another customer.
    status, answer = books.call("PUT", f"/invoices/{iid}", json={
        "line_items": [{"name": "Consulting", "rate": "9.99"}]})
    assert status == 400 and "cannot be less than" in answer["message"]
    status, answer = books.call("PUT", f"/invoices/{iid}", json={"customer_id": stranger})
    assert status == 400 and "customer_id" in answer["message"]
    status, answer = books.call("DELETE", f"{path}/460000000999999")
    assert status == 404
    # A customer with payments is not deleted (Books: mark it inactive instead).
    payer = books.customer("Only Pays Ltd")
    _, advance = books.pay(payer, "3.00")
    status, answer = books.call("DELETE", f"/contacts/{payer}")
    assert status == 400 and "associated with transactions" in answer["message"]
    books.ok("DELETE", f"/customerpayments/{advance['payment']['payment_id']}")
    books.ok("DELETE", f"/contacts/{payer}")
    # A unique custom-field value already taken refuses the whole payment.
    status, made = books.pay(customer, "1.00", custom_fields=[{"api_name": "cf_crm_id",
                                                               "value": "P-1"}])
    assert status == 201
    status, answer = books.call("POST", "/customerpayments", json={
        "customer_id": customer, "payment_mode": "cash", "amount": "2.00",
        "invoices": [{"invoice_id": iid, "amount_applied": "2.00"}],
        "custom_fields": [{"api_name": "cf_crm_id", "value": "P-1"}]})
    assert status == 400 and answer["code"] == 1001
    books.ok("DELETE", f"/customerpayments/{made['payment']['payment_id']}")
    after = (books.figures(customer), books.get("invoices", iid),
             books.ok("GET", "/customerpayments")["customerpayments"],
             books.get("creditnotes", note["creditnote_id"]))
    assert after == before


def test_webhooks_for_invoices_payments_and_credit_notes(books, emu_reset):
    received: list[dict] = []
    arrived = threading.Condition()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the standard library's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with arrived:
                received.append(body)
                arrived.notify_all()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hooks = emu_reset.emu.books
    customer = books.customer("Hooked Payer")
    hooks.register_webhook(books.org, f"http://127.0.0.1:{server.server_port}/", "s3")
    try:
        invoice = books.invoice(customer, "30.00")
        _, made = books.pay(customer, "30.00", (invoice["invoice_id"], "30.00"))
        payment_id = made["payment"]["payment_id"]
        books.ok("PUT", f"/customerpayments/{payment_id}", json={"description": "thanks"})
        books.ok("DELETE", f"/customerpayments/{payment_id}")
        note = books.ok("POST", "/creditnotes", json={
            "customer_id": customer, "line_items": [{"name": "Back", "rate": "3"}]})[
            "creditnote"]
        books.ok("POST", f"/creditnotes/{note['creditnote_id']}/invoices", json={
            "invoices": [{"invoice_id": invoice["invoice_id"], "amount_applied": "3"}]})
        books.ok("DELETE", f"/creditnotes/{note['creditnote_id']}")
        expected = ["invoice_created", "invoice_updated", "payment_created", "invoice_updated",
                    "payment_updated", "payment_deleted", "invoice_updated",
                    "creditnote_created", "creditnote_updated", "invoice_updated",
                    "creditnote_deleted", "invoice_updated"]
        deadline = time.monotonic() + 5
        with arrived:
            while len(received) < len(expected) and time.monotonic() < deadline:
                arrived.wait(timeout=deadline - time.monotonic())
    finally:
        hooks.unregister_webhook(books.org)
        server.shutdown()
    assert [event["event_type"] for event in received] == expected
    # Zoho's payload key (one key named after the entity) besides event_type and data
    assert received[2]["payment"]["payment_id"] == payment_id == received[2]["data"][
        "payment_id"]
    assert received[3]["invoice"]["status"] == "paid"
    assert received[6]["invoice"]["balance"] == 30.0
    assert received[7]["creditnote"]["creditnote_id"] == note["creditnote_id"]


def test_base_currency_figures_use_each_documents_exchange_rate(books):
    contact = books.ok("POST", "/contacts", json={"contact_name": "Euro Kunde",
                                                  "currency_code": "EUR"})["contact"]
    assert contact["outstanding_receivable_amount_bcy"] == D("0.00")
    invoice = books.invoice(contact["contact_id"], "100.00")
    rate = invoice["exchange_rate"]
    assert rate != 1 and invoice["currency_code"] == "EUR"
    books.pay(contact["contact_id"], "30.00", (invoice["invoice_id"], "25.00"))
    figures = books.get("contacts", contact["contact_id"])
    assert figures["outstanding_receivable_amount"] == D("75.00")
    assert figures["outstanding_receivable_amount_bcy"] == (D("75.00") * rate).quantize(
        D("0.01"), ROUND_HALF_UP)
    assert figures["unused_credits_receivable_amount"] == D("5.00")
    assert figures["unused_credits_receivable_amount_bcy"] == (D("5.00") * rate).quantize(
        D("0.01"), ROUND_HALF_UP)
