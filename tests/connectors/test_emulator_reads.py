"""Reads against the emulators over real loopback HTTP, with and without injected faults."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from crmbooks.connectors.zoho_crm import criterion
from emulators import Sizes
from support.clients import make_crm

FAULTS = {"error_rate": 0.05, "rate_429": 0.02, "drop_rate": 0.05, "seed": 11}


def _ids(pages) -> list[str]:
    return [str(r["id"]) for page in pages for r in page]


def test_every_account_once_past_2000_with_faults_and_token_expiry(emu_reset, set_faults):
    emu_reset.emu.reset(seed=3, sizes=Sizes(accounts=2150, contacts_per_account=0,
                                            unassociated_contacts=0, vendors=1, products=1,
                                            deals=0, books_customers=1, books_vendors=1,
                                            books_items=1))
    set_faults({**FAULTS, "expire_tokens_after": 4})
    crm = make_crm(emu_reset)
    ids = _ids(crm.iter_records("Accounts", ["Account_Name", "Phone"]))
    expected = set(emu_reset.emu.crm.records("Accounts"))
    assert len(ids) == len(set(ids)) == len(expected) == 2150
    assert set(ids) == expected
    assert crm.http.auth.refreshes > 1  # the token died mid-read and was replaced
    assert crm.calls.snapshot()["crm GET /crm/v8/{module}"] >= 11


def test_token_expiry_in_the_middle_of_a_paginated_read(crm_client, set_faults):
    set_faults({"expire_tokens_after": 3})
    ids = _ids(crm_client.iter_records("Contacts", ["Last_Name", "Email"], per_page=5))
    assert len(ids) == len(set(ids)) == len(crm_client_records(crm_client, "Contacts"))
    assert crm_client.http.auth.refreshes >= 2


def emu_records(crm_client, module):
    return crm_client_records(crm_client, module)


def crm_client_records(crm_client, module):
    return list(_ids(crm_client.coql(f"select id from {module} where id is not null")))


def test_more_than_50_fields_are_merged_by_id(crm_client):
    module = max(("Accounts", "Contacts", "Deals", "Products", "Vendors"),
                 key=lambda m: len(crm_client.fields(m)))
    fields = [f["api_name"] for f in crm_client.fields(module)]
    if len(fields) <= 50:
        # The emulator's modules are smaller than CRM's cap: lower the cap to exercise the
        # split-and-merge path over real HTTP (the 50 itself is unit-tested).
        crm_client.max_fields = 8
    before = crm_client.calls.by_system()["crm"]
    records = [r for p in crm_client.iter_records(module, fields) for r in p]
    assert len(records) == len(emu_records(crm_client, module))
    last = fields[-1]
    assert all(last in r for r in records)  # a field from the second group was merged
    assert crm_client.calls.by_system()["crm"] - before >= 2


def test_nothing_new_costs_one_request(crm_client):
    future = datetime.now(UTC) + timedelta(days=1)
    assert list(crm_client.iter_records("Accounts", ["Account_Name"],
                                        modified_since=future)) == []
    assert crm_client.calls.by_system()["crm"] == 1


def test_modified_since_returns_what_changed(crm_client):
    [first] = list(crm_client.iter_records("Accounts", ["Account_Name"], per_page=1))[0][:1]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    [result] = crm_client.update("Accounts", [{"id": first["id"], "Phone": "555-0100"}])
    assert result.ok
    ids = _ids(crm_client.iter_records("Accounts", ["Account_Name"], modified_since=start,
                                       sort_by="Modified_Time"))
    assert ids == [str(first["id"])]


def test_custom_view_and_find_view(crm_client):
    views = crm_client.custom_views("Accounts")
    assert views
    view = crm_client.find_view("Accounts", views[0].get("display_value") or views[0]["name"])
    assert view["id"] == views[0]["id"]
    assert crm_client.find_view("Accounts", str(views[0]["id"]))["id"] == views[0]["id"]
    ids = _ids(crm_client.iter_records("Accounts", ["Account_Name"], cvid=view["id"]))
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", [
    "Acme (UK), Ltd\\",
    "Smith & Sons: 100% + \"quoted\"",
    "Zürich (Zweig), AG",
    "a,b,(c)\\d",
])
def test_search_criteria_with_special_characters_finds_itself(crm_client, name):
    [result] = crm_client.upsert("Accounts", [{"Account_Name": name}],
                                 duplicate_check_fields=["Account_Name"])
    assert result.ok
    pages = list(crm_client.search("Accounts",
                                   criteria=criterion("Account_Name", "equals", name)))
    found = [r for p in pages for r in p]
    assert result.id in {str(r["id"]) for r in found}


def test_search_by_email_and_word(crm_client):
    contact = crm_client_first(crm_client, "Contacts", ["Email", "Last_Name"])
    found = _ids(crm_client.search("Contacts", email=contact["Email"]))
    assert str(contact["id"]) in found
    assert list(crm_client.search("Contacts", word="zzqqxxnotthere")) == []


def crm_client_first(crm_client, module, fields):
    return next(iter(crm_client.iter_records(module, fields)))[0]


def test_coql_and_deleted(crm_client):
    rows = [r for p in crm_client.coql("select Account_Name from Accounts where "
                                       "Account_Name is not null", page_size=5) for r in p]
    assert len(rows) == 12
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    victims = [str(r["id"]) for r in rows[:2]]
    results = crm_client.delete("Accounts", victims)
    assert all(r.ok and r.action == "delete" for r in results)
    gone = _ids(crm_client.deleted("Accounts", start))
    assert set(victims) <= set(gone)


def test_metadata(crm_client):
    assert any(m.get("api_name") == "Accounts" for m in crm_client.modules())
    stages = crm_client.deal_stages()
    assert stages and all(isinstance(s[0], str) for s in stages)
    assert any(p == 100 for _, p, _ in stages)
    assert crm_client.users("AllUsers")
    assert crm_client.current_user().get("email")
    assert stages[0][0] != "-None-"
    summary = crm_client.org_summary()
    assert summary["currency"] == "USD" and summary["multi_currency"] is False
    assert summary["edition"].lower() == "professional"


def test_books_reads_and_incremental(books_client):
    assert books_client.organizations()[0]["organization_id"] == books_client.org_id
    assert books_client.organization().get("currency_code") == "USD"
    assert books_client.currencies()
    for resource in ("contacts", "items", "estimates", "invoices", "salesorders",
                     "purchaseorders"):
        rows = [r for p in books_client.iter_pages(resource) for r in p]
        ids = [r[resource[:-1] + "_id"] for r in rows]
        assert len(ids) == len(set(ids))
    contacts = [r for p in books_client.iter_pages("contacts", per_page=2) for r in p]
    target = contacts[-1]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    assert books_client.update("contacts", target["contact_id"], {"website": "https://x.example"}).ok
    changed = [r["contact_id"] for p in books_client.iter_modified("contacts", start) for r in p]
    assert changed == [target["contact_id"]]
    everything = [r for p in books_client.iter_modified("items", start) for r in p]
    assert everything  # items: always a full scan


def test_books_reads_survive_faults(books_client, set_faults):
    expected = {r["contact_id"] for p in books_client.iter_pages("contacts") for r in p}
    set_faults({**FAULTS, "expire_tokens_after": 2})
    got = [r["contact_id"] for p in books_client.iter_pages("contacts", per_page=2) for r in p]
    assert len(got) == len(set(got)) and set(got) == expected


def test_client_counts_match_the_emulator(crm_client, books_client):
    list(crm_client.iter_records("Contacts", ["Last_Name"], per_page=7))
    list(books_client.iter_pages("contacts", per_page=2))
    server = emu_stats(crm_client)
    ours = {**crm_client.calls.snapshot(), **books_client.calls.snapshot()}
    assert server["GET /crm/v8/{module}"] == ours["crm GET /crm/v8/{module}"]
    books_key = next(k for k in server if k.startswith("GET /books/v3/") and "contacts" in k)
    assert server[books_key] == ours["books GET /books/v3/{resource}"]


def emu_stats(client):
    return httpx.get(f"{client.config.api_url}/__emulator__/stats").json()["requests"]


def test_bounded_concurrency_never_trips_crm_limit(emu_reset):
    emu_reset.emu.config.crm_concurrency = 3
    emu_reset.emu.faults.latency_ms = 30
    crm = make_crm(emu_reset, crm_max_concurrency=3)
    errors = []

    def read():
        try:
            for _ in range(3):
                list(crm.iter_records("Accounts", ["Account_Name"], per_page=4))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert "429" not in httpx_stats(emu_reset)["responses"]


def httpx_stats(server):
    return httpx.get(f"{server.base_url}/__emulator__/stats").json()


def test_a_429_burst_is_waited_out(crm_client, set_faults):
    set_faults({"rate_429": 0.5, "seed": 4})
    ids = _ids(crm_client.iter_records("Accounts", ["Account_Name"], per_page=4))
    assert len(ids) == len(set(ids)) == 12
    refused = httpx_stats_of(crm_client)["responses"].get("429", 0)
    assert refused > 0
    assert crm_client.calls.by_system()["crm"] == 3 + refused  # each 429 retried once


def httpx_stats_of(client):
    return httpx.get(f"{client.config.api_url}/__emulator__/stats").json()
