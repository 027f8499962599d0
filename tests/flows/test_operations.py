"""Operator actions end to end: retry failed records, fetch one from the CRM, import by name.

Each is a targeted run: it syncs only the chosen records and leaves the cursors alone.
"""

from __future__ import annotations

from flows.records import fetch_one, import_from_crm, retry_failed_records
from support.customers import books_by_name, sync, unpaced, writes

# CRM takes a 255-character website; Books stops at 200: a record that fails on its way over.
LONG_SITE = "https://example.com/" + "a" * 220


def _account(server, name: str) -> dict:
    return next(r for r in server.emu.crm.records("Accounts").values()
                if r["Account_Name"] == name)


def _update(crm_http, record_id: str, **values) -> None:
    answer = crm_http.put("/crm/v8/Accounts", json={"data": [{"id": record_id, **values}]})
    assert answer.json()["data"][0]["status"] == "success", answer.text


def test_retry_syncs_a_record_fixed_at_its_source_and_keeps_a_broken_one_failed(
        connected, emu_reset, crm_http, monkeypatch):
    unpaced(monkeypatch)
    store = connected
    ids = []
    for name in ("Long Site One Ltd", "Long Site Two Ltd"):
        answer = crm_http.post("/crm/v8/Accounts", json={"data": [
            {"Account_Name": name, "Website": LONG_SITE}]})
        ids.append(answer.json()["data"][0]["details"]["id"])
    state, run = sync(store, crm_module="accounts", scope="fetch", duplicates="skip")
    assert state.is_failed() and run.state == "completed_with_failures"
    failed = store.failures(module="customers")
    assert set(failed["crm_id"]) == set(ids)
    cursor = store.cursor("customers", "crm")

    _update(crm_http, ids[0], Website="https://example.com/short")
    retry_failed_records(module="customers", return_state=True)

    fixed = books_by_name(emu_reset)["Long Site One Ltd"]
    assert [b["website"] for b in fixed] == ["https://example.com/short"]
    assert "Long Site Two Ltd" not in books_by_name(emu_reset)
    still = store.failures(module="customers")
    assert list(still["crm_id"]) == [ids[1]]  # still broken: still failed, with its reason
    assert still.iloc[0]["attempts"] == 2 and "website" in still.iloc[0]["message"].lower()
    assert store.cursor("customers", "crm") == cursor  # a targeted run moves no cursor


def test_fetch_one_refreshes_a_single_customer_by_name(connected, emu_reset, crm_http,
                                                        monkeypatch):
    unpaced(monkeypatch)
    store = connected
    sync(store, crm_module="accounts", scope="fetch", duplicates="skip")
    account = _account(emu_reset, "Müller & Söhne GmbH")
    _update(crm_http, account["id"], Billing_City="Zwickau")
    emu_reset.emu.stats.clear()

    state = fetch_one(kind="customer", name="Müller & Söhne GmbH", return_state=True)

    assert state.is_completed(), state.message
    books = books_by_name(emu_reset)["Müller & Söhne GmbH"]
    assert [b["billing_address"]["city"] for b in books] == ["Zwickau"]
    assert len(writes(emu_reset, "books")) == 1  # that one customer, nothing else


def test_a_crm_account_outside_the_view_is_found_by_name_and_imported(connected, emu_reset,
                                                                       monkeypatch):
    unpaced(monkeypatch)
    store = connected
    sync(store, crm_module="accounts", scope="fetch", duplicates="skip", view="Key Accounts")
    outside = next(r for r in emu_reset.emu.crm.records("Accounts").values()
                   if r.get("Industry") != "Technology" and "(" not in r["Account_Name"])
    assert outside["Account_Name"] not in books_by_name(emu_reset) or any(
        b.get("contact_id") for b in books_by_name(emu_reset)[outside["Account_Name"]])
    before = len(books_by_name(emu_reset).get(outside["Account_Name"], []))

    state = import_from_crm(name=outside["Account_Name"], where="accounts", pick=1,
                            return_state=True)

    assert state.is_completed() or state.is_failed()
    linked = store.links("customers")
    assert outside["id"] in set(linked["crm_id"])
    after = books_by_name(emu_reset)[outside["Account_Name"]]
    assert len(after) in (before, before + 1)  # created, or matched the existing one (skip)
