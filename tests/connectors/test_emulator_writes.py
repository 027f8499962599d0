"""Writes against the emulators: applied exactly once through 429s, 5xx and dropped answers."""

from __future__ import annotations

import pytest

from crmbooks.connectors.errors import RetriableError
from support.clients import make_books, make_crm

FAULTS = {"error_rate": 0.05, "rate_429": 0.02, "drop_rate": 0.1, "seed": 5}


def test_crm_upsert_applies_each_record_once_under_faults(emu_reset, set_faults):
    crm = make_crm(emu_reset)
    set_faults({**FAULTS, "expire_tokens_after": 3})
    records = [{"Account_Name": f"Exactly Once {i:03d}", "Phone": f"555-{i:04d}"}
               for i in range(250)]
    results = crm.upsert("Accounts", records, duplicate_check_fields=["Account_Name"])
    assert [r.index for r in results] == list(range(250))
    assert all(r.ok for r in results), [r.describe() for r in results if not r.ok][:3]
    names = [r["Account_Name"] for r in emu_reset.emu.crm.records("Accounts").values()
             if r["Account_Name"].startswith("Exactly Once")]
    assert len(names) == len(set(names)) == 250
    assert crm.calls.snapshot()["crm POST /crm/v8/{module}/upsert"] >= 3


def test_crm_create_never_duplicates_silently(emu_reset, set_faults):
    crm = make_crm(emu_reset)
    set_faults({"drop_rate": 0.3, "error_rate": 0.1, "seed": 2})
    ok = ambiguous = 0
    for i in range(30):
        try:
            [result] = crm.create("Vendors", [{"Vendor_Name": f"Create Once {i:02d}"}])
            ok += result.ok
        except RetriableError as exc:
            assert exc.maybe_applied
            ambiguous += 1
    names = [r["Vendor_Name"] for r in emu_reset.emu.crm.records("Vendors").values()
             if r["Vendor_Name"].startswith("Create Once")]
    assert len(names) == len(set(names))  # nothing created twice
    assert ok <= len(names) <= ok + ambiguous
    assert ambiguous > 0  # the faults did hit creates


def test_crm_record_errors_are_data(crm_client):
    results = crm_client.create("Contacts", [{"Last_Name": "Fine"},
                                             {"Email": "no.last.name@example.com"}])
    assert results[0].ok and results[0].action == "insert"
    assert not results[1].ok and results[1].code == "MANDATORY_NOT_FOUND"
    assert results[1].field == "Last_Name"


def test_books_upsert_by_custom_field_applies_once_under_faults(emu_reset, set_faults):
    books = make_books(emu_reset)
    set_faults({**FAULTS, "expire_tokens_after": 3})
    results = [books.upsert_by_custom_field(
        "contacts", "cf_crm_id", f"crm-{i}",
        {"contact_name": f"Upsert Once {i:02d}", "contact_type": "customer",
         "contact_persons": [{"first_name": "Ann", "last_name": f"Lee{i}",
                              "email": f"ann{i}@example.com", "is_primary_contact": True}]})
        for i in range(40)]
    assert all(r.ok for r in results), [r.describe() for r in results if not r.ok][:3]
    rows = [r for p in books.iter_pages("contacts", {"contact_name_startswith": "Upsert Once"})
            for r in p]
    names = [r["contact_name"] for r in rows]
    assert len(names) == len(set(names)) == 40
    detail = books.get("contacts", results[0].id)
    assert [p["email"] for p in detail["contact_persons"]] == ["ann0@example.com"]


def test_books_duplicate_name_is_data(books_client):
    first = books_client.create("contacts", {"contact_name": "Dup Co", "contact_type":
                                             "customer"})
    second = books_client.create("contacts", {"contact_name": "Dup Co", "contact_type":
                                              "customer"})
    assert first.ok and first.action == "insert"
    assert not second.ok and second.code == 3062 and "already exists" in second.message


def _party(books, contact_type):
    rows = [r for p in books.iter_pages("contacts", {"contact_type": contact_type}) for r in p]
    return rows[0]["contact_id"]


@pytest.mark.parametrize("resource, party, steps", [
    ("estimates", "customer", ["sent", "accepted"]),
    ("estimates", "customer", ["sent", "declined"]),
    ("invoices", "customer", ["sent", "void"]),
    ("salesorders", "customer", ["open", "void"]),
    ("purchaseorders", "vendor", ["open", "cancelled"]),
])
def test_books_status_actions(books_client, resource, party, steps):
    key = "vendor_id" if party == "vendor" else "customer_id"
    created = books_client.create(resource, {
        key: _party(books_client, party),
        "line_items": [{"name": "Consulting", "rate": "120.50", "quantity": 2}]})
    assert created.ok, created.describe()
    for step in steps:
        result = books_client.mark(resource, created.id, step)
        assert result.ok, result.describe()
    status = books_client.get(resource, created.id)["status"]
    assert status == {"accepted": "accepted", "declined": "declined", "void": "void",
                      "cancelled": "cancelled"}[steps[-1]]


def test_books_status_actions_survive_lost_answers(emu_reset, set_faults):
    books = make_books(emu_reset)
    customer = _party(books, "customer")
    invoices = [books.upsert_by_custom_field(
        "invoices", "cf_crm_id", f"deal-{i}",
        {"customer_id": customer, "line_items": [{"name": "Support", "rate": 10}]})
        for i in range(10)]
    assert all(r.ok for r in invoices)
    set_faults({"drop_rate": 0.4, "seed": 9})
    results = [books.mark("invoices", r.id, "sent") for r in invoices]
    results += [books.mark("invoices", r.id, "void") for r in invoices]
    set_faults({})
    assert all(r.ok for r in results), [r.describe() for r in results if not r.ok]
    assert {books.get("invoices", r.id)["status"] for r in invoices} == {"void"}


def test_watch_channels(crm_client):
    channel = {"channel_id": "1000000068001", "events": ["Accounts.all"],
               "notify_url": "http://127.0.0.1:9/hook", "token": "tok-1"}
    [item] = crm_client.watch([channel])
    assert item["status"] == "success"
    assert [c["channel_id"] for c in crm_client.watched()] == ["1000000068001"]
    [item] = crm_client.update_watch([{"channel_id": "1000000068001",
                                       "events": ["Accounts.create"]}])
    assert item["status"] == "success"
    [bad] = crm_client.watch([{"channel_id": "x", "events": ["Accounts.all"],
                               "notify_url": "http://127.0.0.1:9/hook"}])
    assert bad["status"] == "error" and bad["code"] == "INVALID_DATA"
    [gone] = crm_client.unwatch(["1000000068001"])
    assert gone["status"] == "success" and crm_client.watched() == []
