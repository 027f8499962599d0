"""End to end: records that cannot sync fail alone, with a reason, and sync once fixed.

Each bad record becomes a failure row saying what is wrong and what to do; the run ends
completed_with_failures (the flow run Failed) while every other record syncs; nothing is lost:
the record stays on its side and goes through on the run after it was fixed at the source.
Awkward but valid names (emoji, right-to-left scripts, criteria special characters, a deleted
owner) must simply sync.
"""

from __future__ import annotations

import pytest

from support.customers import (
    BOOKS_CUSTOMERS,
    books_by_name,
    books_customers,
    books_put,
    cf,
    clear_stats,
    crm,
    crm_by_name,
    crm_put,
    failures,
    next_second,
    request_log,
    sync,
    unpaced,
)

pytestmark = pytest.mark.books_customers(BOOKS_CUSTOMERS)


def by_name(server, name: str, module: str = "Accounts") -> dict:
    """The one CRM record with this display name."""
    (rec,) = crm_by_name(server, module)[name]
    return rec


def books_org(server) -> str:
    return server.emu.config.books_org_ids[0]


def test_account_failures_are_reported_and_sync_once_fixed(store, emu_reset, crm_http):
    """A too-long name fails alone; clashing display names are cloned with the clone suffix
    (Books names are unique); odd names and owners sync."""
    crm_records = crm(emu_reset)
    long_id = by_name(emu_reset, "Vertex Robotics plc")["id"]
    crm_records[long_id]["Account_Name"] = "Vertex Robotics " + "x" * 200  # CRM allows 255
    users = emu_reset.emu.crm.directory.users
    deleted_user = next(u for u, v in users.items() if v["status"] != "active")
    orphan_id = by_name(emu_reset, "Alpine Analytics SARL")["id"]
    crm_records[orphan_id]["Owner"] = deleted_user
    clashing = {n: by_name(emu_reset, n)["id"] for n in (
        "Acme Ltd", "Müller & Söhne GmbH", "株式会社山田製作所", "Global Logistics Corp.")}
    ids = {a["Account_Name"]: i for i, a in crm_records.items()}

    state, run = sync(store, scope="both", duplicates="clone")

    assert run.state == "completed_with_failures" and state.is_failed()
    assert "failed" in state.message and "fix them at the source" in state.message
    failed = {f["crm_id"]: f for f in failures(store)}
    assert set(failed) == {long_id}
    too_long = failed[long_id]
    assert too_long["code"] == "TOO_LONG" and too_long["field"] == "contact_name"
    assert "216 characters, longer than the 200 allowed" in too_long["message"]
    assert "shorten it" in too_long["hint"]
    synced = {cf(r): r["contact_name"] for r in books_customers(emu_reset).values() if cf(r)}
    for name, crm_id in clashing.items():
        assert synced[crm_id] == f"{name} (2)"
    for name in ("Acme (UK), Ltd\\", "Café ☕ Résumé Ltd", "شركة النور للتجارة",
                 "Alpine Analytics SARL", "ACME Limited", "Société Générale des Eaux"):
        assert synced[ids[name]] == name
    assert long_id not in synced and crm(emu_reset)[long_id]["Account_Name"].endswith("x" * 200)
    assert run.counts["books"]["failed"] == 1 and run.counts["books"]["created"] == 11

    next_second()  # fix both at the source, then run again
    crm_put(crm_http, "Accounts", long_id, {"Account_Name": "Vertex Robotics plc"})
    acme_id = clashing.pop("Acme Ltd")
    crm_put(crm_http, "Accounts", acme_id, {"Account_Name": "Acme Ltd (CRM)"})
    state, rerun = sync(store)

    synced = {cf(r): r["contact_name"] for r in books_customers(emu_reset).values() if cf(r)}
    assert synced[long_id] == "Vertex Robotics plc"
    assert synced[acme_id] == "Acme Ltd (CRM)"
    assert failures(store) == []
    assert rerun.counts["books"]["created"] == 1 and rerun.state == "completed"
    resolved = store.failures(module="customers", unresolved_only=False)
    assert set(resolved[resolved["resolved"]]["crm_id"]) == {long_id}


def test_contact_failures_are_reported_and_sync_once_fixed(store, emu_reset, crm_http,
                                                           books_http):
    """An invalid email (CRM) and a person without last name (Books) fail alone, then sync."""
    contacts = crm(emu_reset, "Contacts")
    seeded = len(contacts)
    bad_id = by_name(emu_reset, "James Cohen", "Contacts")["id"]
    contacts[bad_id]["Email"] = "james.cohen@@example"
    response = books_http.post("/books/v3/contacts", params={"organization_id": books_org(
        emu_reset)}, json={"contact_name": "Solo Customer", "customer_sub_type": "individual",
                           "contact_persons": [{"first_name": "Solo",
                                                "is_primary_contact": True}]})
    assert response.status_code == 201, response.text
    solo = response.json()["contact"]

    state, run = sync(store, crm_module="contacts", scope="both")

    assert run.state == "completed_with_failures" and state.is_failed()
    failed = {f["record_key"]: f for f in failures(store)}
    assert set(failed) == {f"crm/Contacts/{bad_id}", f"books/contacts/{solo['contact_id']}"}
    email = failed[f"crm/Contacts/{bad_id}"]
    assert email["code"] == "INVALID_EMAIL" and "'james.cohen@@example'" in email["message"]
    assert "correct the email address" in email["hint"]
    no_last = failed[f"books/contacts/{solo['contact_id']}"]
    assert no_last["code"] == "MISSING_REQUIRED" and no_last["side"] == "crm"
    assert "last_name is empty but CRM needs it" in no_last["message"]
    individuals = {cf(r): r for r in books_customers(emu_reset, "individual").values()}
    for name in ("Sam 🚀 Rocket", "محمد العلي", "太郎 山田", "Renée Zoë-Ångström"):
        assert individuals[by_name(emu_reset, name, "Contacts")["id"]]["contact_name"] == name
    assert bad_id not in individuals and len(set(individuals) - {None}) == seeded - 1
    assert all(c.get("Books_Id__c") != solo["contact_id"] for c in contacts.values())

    next_second()
    crm_put(crm_http, "Contacts", bad_id, {"Email": "james.cohen@example.com"})
    person = solo["contact_persons"][0]
    books_put(books_http, emu_reset, solo["contact_id"], {"contact_persons": [
        {"contact_person_id": person["contact_person_id"], "first_name": "Solo",
         "last_name": "Customer", "is_primary_contact": True}]})
    state, rerun = sync(store)

    assert state.is_completed() and rerun.state == "completed", failures(store)
    assert failures(store) == []
    fixed = {cf(r): r for r in books_customers(emu_reset, "individual").values()}[bad_id]
    assert fixed["contact_persons"][0]["email"] == "james.cohen@example.com"
    made = [c for c in crm(emu_reset, "Contacts").values()
            if c.get("Books_Id__c") == solo["contact_id"]]
    assert [(c["First_Name"], c["Last_Name"]) for c in made] == [("Solo", "Customer")]


def test_criteria_special_names_sync_incrementally(store, emu_reset, crm_http, books_http):
    """Names full of criteria and markup characters are looked up and created exactly."""
    state, _ = sync(store, scope="both", duplicates="skip")
    assert state.is_completed()
    next_second()
    weird = 'Widgets (EU), Ltd\\ "Intl" a:b & c*'
    response = books_http.post("/books/v3/contacts", params={"organization_id": books_org(
        emu_reset)}, json={"contact_name": weird, "company_name": weird})
    assert response.status_code == 201, response.text
    books_id = response.json()["contact"]["contact_id"]
    response = crm_http.post("/crm/v8/Accounts", json={"data": [
        {"Account_Name": "Gadgets (UK), Ltd\\ (2)", "Billing_City": "Leeds"}]})
    assert response.status_code == 201, response.text
    crm_id = response.json()["data"][0]["details"]["id"]
    clear_stats(emu_reset)

    state, run = sync(store)

    assert state.is_completed(), failures(store)
    assert by_name(emu_reset, weird)["Books_Id__c"] == books_id
    (made,) = books_by_name(emu_reset)["Gadgets (UK), Ltd\\ (2)"]
    assert cf(made) == crm_id and made["billing_address"]["city"] == "Leeds"
    assert run.counts["books"]["created"] == run.counts["crm"]["created"] == 1
    assert any("search" in r["path"] for r in request_log(emu_reset))  # looked up by name


def test_an_account_named_like_a_books_individual_is_skipped_with_the_reason(
        connected, emu_reset, crm_http, books_http, monkeypatch):
    """Books names are unique per contact type: a business customer cannot take the name of
    an individual one. The account is skipped with a reason instead of failing every run."""
    unpaced(monkeypatch)
    org = emu_reset.emu.config.books_org_ids[0]
    created = books_http.post("/books/v3/contacts", params={"organization_id": org}, json={
        "contact_name": "Zed Solo", "contact_type": "customer",
        "customer_sub_type": "individual",  # two-way it becomes a CRM contact: a last name
        "contact_persons": [{"first_name": "Zed", "last_name": "Solo",
                             "is_primary_contact": True}]})
    assert created.status_code == 201, created.text
    answer = crm_http.post("/crm/v8/Accounts", json={"data": [{"Account_Name": "Zed Solo"}]})
    account_id = answer.json()["data"][0]["details"]["id"]

    state, run = sync(connected, crm_module="accounts", scope="both", duplicates="skip")

    assert run.state == "completed", failures(connected)
    events = connected.events(run_id=run.id)
    mine = events[events["crm_id"] == account_id]
    assert list(mine["action"]) == ["skipped"]
    assert "unique per contact type" in mine.iloc[0]["message"]
    assert len(books_by_name(emu_reset)["Zed Solo"]) == 1  # nothing created, nothing lost
    assert account_id in crm(emu_reset)
