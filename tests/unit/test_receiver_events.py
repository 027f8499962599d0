"""The event receiver's pure parts: reading Books webhooks, and the debouncing worker."""

from __future__ import annotations

import pytest

from crmbooks.app.receiver.debounce import Debouncer, Requeue
from crmbooks.app.receiver.routing import (
    CRM_WRITE_BACK_FIELDS,
    BooksEvent,
    changed_fields,
    crm_echo_only,
    parse_books_event,
    read_key,
    record_of,
    transaction_key,
)

STAMP = "2026-11-28T06:00:02+0000"


@pytest.mark.parametrize(("body", "expected"), [
    ({"event_type": "invoice_updated", "data": {"invoice_id": 4600001, "last_modified_time":
                                                STAMP}},
     BooksEvent("invoices", "4600001", "updated", STAMP)),
    ({"event_type": "salesorder_created", "data": {"salesorder_id": " 9 "}},
     BooksEvent("salesorders", "9", "created", None)),
    ({"event_type": "purchaseorder_deleted", "data": {"purchaseorder_id": "7"}},
     BooksEvent("purchaseorders", "7", "deleted", None)),
    # Books' default workflow payload: one key named after the entity, no event type.
    ({"estimate": {"estimate_id": "5", "last_modified_time": STAMP}},
     BooksEvent("estimates", "5", "", STAMP)),
])
def test_books_transaction_events_are_read_in_both_shapes(body, expected):
    assert parse_books_event(body) == expected


@pytest.mark.parametrize("body", [
    {"event_type": "bill_created", "data": {"bill_id": "1"}},
    {"event_type": "", "data": {}},
    {"bill": {"bill_id": "1"}},
    {},
])
def test_other_events_are_not_transaction_or_record_events(body):
    assert parse_books_event(body) is None


@pytest.mark.parametrize(("body", "expected", "module"), [
    ({"event_type": "contact_updated", "data": {"contact_id": "31", "contact_type": "customer",
                                                "last_modified_time": STAMP}},
     BooksEvent("contacts", "31", "updated", STAMP, "customer"), "customers"),
    ({"contact": {"contact_id": 32, "contact_type": "vendor"}},
     BooksEvent("contacts", "32", "", None, "vendor"), "vendors"),
    ({"event_type": "item_created", "data": {"item_id": "33", "contact_type": "customer"}},
     BooksEvent("items", "33", "created", None), "items"),
    # A contact that is neither (or says nothing): no record module, so no run.
    ({"event_type": "contact_updated", "data": {"contact_id": "34"}},
     BooksEvent("contacts", "34", "updated", None), None),
    ({"event_type": "invoice_updated", "data": {"invoice_id": "35"}},
     BooksEvent("invoices", "35", "updated", None), None),
])
def test_books_contact_and_item_events_name_their_record_module(body, expected, module):
    event = parse_books_event(body)
    assert event == expected and event.record_module == module


@pytest.mark.parametrize(("body", "message"), [
    ({"event_type": "contact_updated", "data": {"contact_name": "x"}}, "no contact_id"),
    ({"event_type": "item_updated", "data": {"item_id": "twelve"}}, "record id"),
    ({"event_type": "contact_updated", "data": {"contact_id": "1", "contact_type": 7}},
     "contact_type must be a string"),
    ({"item": "33"}, "no item object"),
])
def test_malformed_contact_and_item_events_say_what_is_wrong(body, message):
    with pytest.raises(ValueError, match=message):
        parse_books_event(body)


@pytest.mark.parametrize(("body", "message"), [
    ([{"event_type": "invoice_updated"}], "JSON object"),
    ("invoice_updated", "JSON object"),
    ({"event_type": "invoice_updated"}, "no invoice object"),
    ({"event_type": "invoice_updated", "data": ["x"]}, "no invoice object"),
    ({"event_type": "estimate_updated", "data": {"status": "sent"}}, "no estimate_id"),
    ({"invoice": {"invoice_id": "  "}}, "no invoice_id"),
])
def test_malformed_transaction_events_say_what_is_wrong(body, message):
    with pytest.raises(ValueError, match=message):
        parse_books_event(body)


def test_changed_fields_of_crm_notifications():
    assert changed_fields([{"1": ["Stage", "Amount"]}, {"2": ["Books_Id__c"]}, "Owner"]) == {
        "Stage", "Amount", "Books_Id__c", "Owner"}
    assert changed_fields(None) == set() and changed_fields({"1": ["x"]}) == set()


def test_only_crmbooks_own_write_backs_are_crm_echoes():
    own = sorted(CRM_WRITE_BACK_FIELDS)
    assert crm_echo_only([{"1": own}]) and crm_echo_only([{"1": own[:1]}])
    assert not crm_echo_only([{"1": [*own, "Stage"]}])  # a user's edit rode along
    assert not crm_echo_only([]) and not crm_echo_only(None)  # nothing said: not an echo


def test_a_batch_refused_by_the_run_lock_comes_back_once_and_others_are_dropped():
    calls: list[list[str]] = []

    def handler(ids: list[str]) -> None:
        calls.append(sorted(ids))
        if len(calls) == 1:
            raise Requeue(["a"], "lock held")  # 'a' waits; 'b' ran
        if ids == ["boom"]:
            raise RuntimeError("a failing run drops its ids and the worker goes on")

    worker = Debouncer(handler, delay_s=0.01, name="test")
    try:
        worker.submit(["a", "b", "a"])
        assert worker.idle()
        assert calls == [["a", "b"], ["a"]] and worker.requeued == 1
        worker.submit(["boom"])
        assert worker.idle()
        worker.submit(["c"])
        assert worker.idle()
        assert calls[2:] == [["boom"], ["c"]] and worker.runs == 4
    finally:
        worker.stop()


def test_events_of_one_record_share_one_quiet_period_whatever_their_stamps():
    calls: list[list[str]] = []
    worker = Debouncer(calls.append, delay_s=0.01, name="test", group=record_of)
    try:
        worker.submit([transaction_key("1", "books", "invoices", "7", "06:00:02")])
        worker.submit([transaction_key("1", "books", "invoices", "7", "06:00:01"),
                       transaction_key("1", "books", "invoices", "7", "06:00:02")])
        assert worker.pending() == 2
        assert worker.idle()
        assert calls == [["1|books|invoices|7|06:00:01", "1|books|invoices|7|06:00:02"]]
        assert read_key(calls[0][0]) == ("1", "books", "invoices", "7", "06:00:01")
        assert read_key(transaction_key("1", "crm", "Quotes", "9")) == (
            "1", "crm", "Quotes", "9", "")
    finally:
        worker.stop()


@pytest.mark.parametrize(("body", "customer"), [
    ({"event_type": "payment_created", "data": {"payment_id": "3", "customer_id": "46"}}, "46"),
    ({"creditnote": {"creditnote_id": "8", "customer_id": 47}}, "47"),
    ({"event_type": "invoice_deleted", "data": {"invoice_id": "9", "customer_id": "48"}}, "48"),
    ({"event_type": "estimate_updated", "data": {"estimate_id": "5", "customer_id": "49"}},
     None),
])
def test_invoice_credit_note_and_payment_events_name_the_customer_whose_figures_move(
        body, customer):
    assert parse_books_event(body).figures_of == customer


def test_a_payment_event_with_a_malformed_customer_says_what_is_wrong():
    with pytest.raises(ValueError, match="customer_id"):
        parse_books_event({"payment": {"payment_id": "3", "customer_id": ["x"]}})
