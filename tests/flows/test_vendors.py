"""Vendors ↔ CRM Vendors end to end: scope × duplicates, views, plan, merge, history,
failures and bad input, checked on both emulators after each run.

Vendors: CRM records are fetched first and CRM wins conflicts and overwrites. The seed has one
Books vendor named exactly like a CRM vendor (the duplicate every policy test acts on).
"""

from __future__ import annotations

import pytest

from flows.vendors import sync_vendors
from support.customers import next_second
from support.vendors_items import (
    books_update,
    by_name,
    cf,
    crm_create,
    crm_update,
    data_of,
    events_of,
    failures_of,
    last_run,
    org_of,
    runner,
    written,
)

ADDRESS = {"Street": "address", "City": "city", "State": "state", "Zip_Code": "zip",
           "Country": "country"}


run = runner("vendors", sync_vendors)


def vendors(emu) -> dict[str, dict]:
    return emu.crm.records("Vendors")


def contacts(emu, contact_type: str = "vendor") -> dict[str, dict]:
    return {i: c for i, c in emu.books.org().records["contacts"].items()
            if c["contact_type"] == contact_type}


def primary(contact: dict) -> dict:
    return next(p for p in contact["contact_persons"] if p.get("is_primary_contact"))


def assert_same_vendor(vendor: dict, contact: dict) -> None:
    """The Books vendor carries the CRM vendor's mapped values."""
    assert contact["contact_name"] == contact["company_name"] == vendor["Vendor_Name"]
    assert primary(contact)["email"] == vendor["Email"]
    assert primary(contact)["phone"] == vendor["Phone"]
    assert contact["website"] == vendor["Website"]
    for crm_field, books_field in ADDRESS.items():
        assert (contact["billing_address"][books_field] or None) == vendor.get(crm_field)
    assert (contact.get("notes") or None) == vendor.get("Description")


# --------------------------------------------------------------------- scope × duplicates
@pytest.mark.parametrize("scope", ["both", "fetch"])
@pytest.mark.parametrize("policy", ["clone", "overwrite", "skip"])
def test_scope_and_duplicates_policy(store, emu_reset, scope, policy):
    emu = emu_reset.emu
    crm_before = {i: dict(v) for i, v in vendors(emu).items()}
    books_before = {i: dict(c) for i, c in contacts(emu).items()}
    customers_before = {i: dict(c) for i, c in contacts(emu, "customer").items()}
    dup = ({v["Vendor_Name"] for v in crm_before.values()}
           & {c["contact_name"] for c in books_before.values()})
    assert len(dup) == 1
    dup_name = dup.pop()
    crm_dup = next(v for v in crm_before.values() if v["Vendor_Name"] == dup_name)
    books_dup = next(c for c in books_before.values() if c["contact_name"] == dup_name)

    first = run(store, scope=scope, duplicates=policy)

    books_now = by_name(contacts(emu), "contact_name")
    crm_now = by_name(vendors(emu), "Vendor_Name")
    for vendor in crm_before.values():  # CRM is fetched first: every other vendor in Books
        if vendor["Vendor_Name"] != dup_name:
            [contact] = books_now[vendor["Vendor_Name"]]
            assert_same_vendor(vendor, contact)
            assert cf(contact, "cf_crm_id") == vendor["id"]
    for contact in books_before.values():
        if contact["contact_name"] == dup_name:
            continue
        if scope == "both":
            [vendor] = crm_now[contact["contact_name"]]
            assert vendor["Email"] == primary(contact)["email"]
            assert vendor["Books_Id__c"] == contact["contact_id"]
        else:
            assert contact["contact_name"] not in crm_now
    if scope == "fetch":
        assert written(first)["crm"] == 0
        assert all(vendors(emu)[i] == v for i, v in crm_before.items())
    assert contacts(emu, "customer") == customers_before  # customers are another module

    crm_dups, [books_vendor] = crm_now[dup_name], books_now[dup_name]
    failures = failures_of(store, first)
    if policy == "skip":
        assert data_of(books_vendor) == data_of(books_dup) and crm_dups == [crm_dup]
        assert not failures
        [event] = [e for e in events_of(store, first) if e["name"] == dup_name]
        assert event["action"] == "skipped" and "duplicates: skip" in event["message"]
    elif policy == "overwrite":
        # CRM wins in both scopes: its data replaces the Books vendor, CRM is unchanged.
        assert crm_dups == [crm_dup]
        assert books_vendor["contact_id"] == books_dup["contact_id"]
        assert_same_vendor(crm_dup, books_vendor)
        assert len(books_vendor["contact_persons"]) == len(books_dup["contact_persons"])
        assert cf(books_vendor, "cf_crm_id") == crm_dup["id"]
        assert not failures
    else:  # clone: Books vendor names are unique, so the CRM vendor's copy takes a suffix
        assert data_of(books_vendor) == data_of(books_dup) and not failures
        [copy_] = books_now[f"{dup_name} (2)"]
        assert cf(copy_, "cf_crm_id") == crm_dup["id"]
        if scope == "both":  # ... but the Books vendor is cloned into CRM next to it
            original, clone = sorted(crm_dups, key=lambda v: v["id"])
            assert original == crm_dup
            assert clone["Email"] == primary(books_dup)["email"]
            assert clone["Books_Id__c"] == books_dup["contact_id"]
        else:
            assert crm_dups == [crm_dup]

    second = run(store)
    assert written(second) == {"books": 0, "crm": 0}
    assert second.counts["books"]["failed"] == 0  # a clone no longer fails on every run


def test_a_vendor_named_like_a_customer_is_its_own_record(store, emu_reset, crm_http):
    """Books display names are unique per contact type: a vendor may share a customer's name,
    and a customer is never a duplicate of a vendor."""
    emu = emu_reset.emu
    customer = next(iter(contacts(emu, "customer").values()))
    customer_before = dict(customer)
    [vendor_id] = crm_create(crm_http, "Vendors", {"Vendor_Name": customer["contact_name"],
                                                   "Email": "ap@twin.example"})
    first = run(store, scope="both", duplicates="skip")
    [vendor] = [c for c in contacts(emu).values() if cf(c, "cf_crm_id") == vendor_id]
    assert vendor["contact_name"] == customer["contact_name"]
    assert vendor["contact_id"] != customer["contact_id"]
    assert primary(vendor)["email"] == "ap@twin.example"
    assert emu.books.org().records["contacts"][customer["contact_id"]] == customer_before
    assert first.counts["books"]["skipped"] == 1  # only the seeded vendor duplicate
    assert not failures_of(store, first)


# ---------------------------------------------------------------------------------- views
def test_a_view_limits_the_synced_vendors(store, emu_reset, crm_http):
    emu = emu_reset.emu
    mine = crm_create(crm_http, "Vendors", {"Vendor_Name": "Own Supply Co"})
    me = emu.crm.directory.current_user_id
    expected = {i for i, v in vendors(emu).items() if v["Owner"] == me}
    assert set(mine) < expected < set(vendors(emu))
    first = run(store, scope="fetch", view="My Vendors")
    assert first.counts["books"]["created"] == len(expected)
    synced = {cf(c, "cf_crm_id") for c in contacts(emu).values()} - {None}
    assert synced == expected


def test_an_unknown_view_fails_before_any_write(store, emu_reset):
    emu = emu_reset.emu
    before = (dict(vendors(emu)), dict(emu.books.org().records["contacts"]))
    store.save_settings("vendors", {"view": "Vendors I Never Made"})
    assert sync_vendors(return_state=True).is_failed()
    history = last_run(store, "vendors")
    assert history.state == "failed" and "Vendors I Never Made" in (history.message or "")
    assert (vendors(emu), emu.books.org().records["contacts"]) == before
    assert store.links("vendors").empty


# ------------------------------------------------------------------------- plan (dry run)
def test_a_dry_run_plans_and_writes_nothing(store, emu_reset):
    emu = emu_reset.emu
    crm_before = {i: dict(v) for i, v in vendors(emu).items()}
    books_before = {i: dict(c) for i, c in emu.books.org().records["contacts"].items()}
    store.save_settings("vendors", {"scope": "both", "duplicates": "overwrite"})
    sync_vendors(dry_run=True, return_state=True)
    plan = last_run(store, "vendors")
    assert plan.dry_run
    assert vendors(emu) == crm_before
    assert emu.books.org().records["contacts"] == books_before
    assert store.links("vendors").empty and store.cursor("vendors", "crm") is None
    planned = events_of(store, plan)
    assert {e["action"] for e in planned} == {"created", "overwritten"}
    real = run(store)
    assert plan.counts == real.counts
    assert plan.counts["books"] == {**plan.counts["books"], "created": 4, "updated": 1}


# -------------------------------------------------------------------------- merge, history
def test_three_way_merge_crm_wins_a_field_changed_on_both_sides(store_any_db, emu_reset, crm_http,
                                                                books_http):
    store = store_any_db
    emu = emu_reset.emu
    seeded = set(vendors(emu))
    run(store, scope="both", duplicates="skip")
    links = store.links("vendors")
    link = links[links["crm_id"].isin(seeded)].iloc[0]  # a vendor created in Books
    crm_id, books_id = link["crm_id"], link["books_id"]
    next_second()
    crm_update(crm_http, "Vendors", crm_id, {"City": "Lyon", "Phone": "+33 1 23 45 67 89"})
    books_update(books_http, org_of(emu_reset), "contacts", books_id,
                 {"billing_address": {"city": "Graz"}, "website": "https://books.example"})
    second = run(store)
    vendor, contact = vendors(emu)[crm_id], emu.books.org().records["contacts"][books_id]
    assert vendor["City"] == contact["billing_address"]["city"] == "Lyon"  # CRM wins
    assert primary(contact)["phone"] == vendor["Phone"] == "+33 1 23 45 67 89"  # merged
    assert vendor["Website"] == contact["website"] == "https://books.example"  # merged
    assert len(contact["contact_persons"]) == 1  # the primary person updated in place
    assert second.counts["books"]["conflicts"] == 1
    conflict_events = [e for e in events_of(store, second) if e["crm_id"] == crm_id]
    assert {e["action"] for e in conflict_events} == {"conflict"}
    assert conflict_events[0]["conflicts"] == [{"field": "billing_address.city", "crm": "Lyon",
                                                "books": "Graz", "winner": "crm"}]
    # History per record: created, then this run's field changes, from what to what.
    history = [e for e in store.events().to_dict("records") if e["crm_id"] == crm_id]
    assert sorted(h["action"] for h in history) == ["conflict", "conflict", "created"]
    changes = {(c["side"], c["field"]): (c["before"], c["after"])
               for h in history for c in h["changes"]}
    assert changes[("books", "billing_address.city")] == ("Graz", "Lyon")
    assert changes[("crm", "Website")][1] == "https://books.example"
    assert written(run(store)) == {"books": 0, "crm": 0}


def test_an_edit_in_the_same_second_as_our_write_is_not_an_echo(store, emu_reset, crm_http,
                                                               monkeypatch):
    """Regression: stamps have whole seconds, so a CRM edit right after our write (a workflow
    rule reacting to it) carried our write's stamp and was dropped as an echo, for good."""
    emu = emu_reset.emu
    frozen = emu.now()
    monkeypatch.setattr(emu, "now", lambda: frozen)  # every write lands in the same second
    seeded = set(vendors(emu))
    run(store, scope="both", duplicates="skip")
    links = store.links("vendors")
    link = links[~links["crm_id"].isin(seeded)].iloc[0]  # a vendor this run wrote to CRM
    crm_update(crm_http, "Vendors", link["crm_id"], {"City": "Same Second City"})
    second = run(store)
    contact = emu.books.org().records["contacts"][link["books_id"]]
    assert contact["billing_address"]["city"] == "Same Second City"
    assert written(second) == {"books": 1, "crm": 0}
    assert written(run(store)) == {"books": 0, "crm": 0}


# ------------------------------------------------------------------ bad input and failures
def test_bad_vendors_fail_with_reasons_and_the_rest_syncs(store, emu_reset, crm_http):
    emu = emu_reset.emu
    [bad_email, ok] = crm_create(crm_http, "Vendors",
                                 {"Vendor_Name": "Dotty Supply", "Email": "ap..x@dotty.example"},
                                 {"Vendor_Name": "Fine Supply", "Email": "ap@fine.example"})
    [bad_url] = crm_create(crm_http, "Vendors", {"Vendor_Name": "Nowhere Supply",
                                                  "Website": "not a web address"})
    first = run(store, scope="fetch")
    failures = {f["crm_id"]: f for f in failures_of(store, first)}
    assert set(failures) == {bad_email, bad_url}
    assert "'ap..x@dotty.example' is not a valid email address" in failures[bad_email]["message"]
    assert "is not a web address" in failures[bad_url]["message"]
    assert all(f["hint"] for f in failures.values())
    synced = {cf(c, "cf_crm_id"): c for c in contacts(emu).values()}
    assert ok in synced and bad_email not in synced and bad_url not in synced
    assert first.counts["books"]["created"] == len(vendors(emu)) - 3  # minus 2 bad and 1 dup
    # Nothing lost: fixed in CRM, the next run syncs it and resolves its failure.
    next_second()
    crm_update(crm_http, "Vendors", bad_email, {"Email": "ap.x@dotty.example"})
    second = run(store)
    assert second.counts["books"]["created"] == 1
    assert primary(next(c for c in contacts(emu).values()
                        if cf(c, "cf_crm_id") == bad_email))["email"] == "ap.x@dotty.example"
    still_open = set(store.failures(module="vendors")["crm_id"])
    assert still_open == {bad_url}
