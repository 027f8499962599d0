"""End to end: what the customers flow checks and records, on the emulators.

The mapping is checked against live metadata before any write; a dry run plans without
writing; a record changed on both sides merges field by field; history keeps every run and
record with its field changes.
"""

from __future__ import annotations

import copy
import json

import pytest

from support.customers import (
    BOOKS_CUSTOMERS,
    books_customers,
    books_put,
    cf,
    clear_stats,
    crm,
    crm_put,
    failures,
    next_second,
    sync,
    writes,
)

pytestmark = pytest.mark.books_customers(BOOKS_CUSTOMERS)


def snapshot(server) -> tuple[dict, dict, dict]:
    """Deep copies of Books customers, CRM accounts and CRM contacts."""
    return copy.deepcopy((books_customers(server), crm(server), crm(server, "Contacts")))


@pytest.mark.parametrize("field_map, names", [
    ({"books": "custom_fields.cf_segment", "crm": "Segment__c"},
     ["Segment__c does not exist in Accounts", "check its API name"]),
    ({"books": "custom_fields.cf_segment", "crm": "Employees"},
     ["Employees is of type 'integer'", "pick a converter"]),
    ({"books": "custom_fields.cf_tier", "crm": "Tier__c"},
     ["custom field cf_tier does not exist", "create it in Books"]),
], ids=["unknown-crm-field", "type-mismatch", "missing-books-custom-field"])
def test_bad_mapping_stops_before_any_write(store, emu_reset, field_map, names):
    """A map that does not fit the live fields fails the run, naming the field; no write."""
    before = snapshot(emu_reset)
    state, run = sync(store, scope="both", maps=[field_map])
    assert state.is_failed() and run.state == "failed"
    for text in names:
        assert text in run.message
    assert "nothing was written" in run.message
    assert writes(emu_reset) == []
    assert snapshot(emu_reset) == before
    assert store.links("customers").empty


def read_artifacts(flow_run_id: str) -> dict[str, object]:
    """The Prefect artifacts of one flow run, by key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {a.key: a for a in found}


@pytest.mark.parametrize("duplicates", ["overwrite", "clone", "skip"])
def test_dry_run_plans_without_writing(store, emu_reset, duplicates):
    """Dry run: the plan lands in history and artifacts; neither side nor the state changes."""
    before = snapshot(emu_reset)
    state, run = sync(store, dry_run=True, scope="both", duplicates=duplicates)
    assert state.is_completed() and run.dry_run and run.state == "completed"
    assert writes(emu_reset) == []
    assert snapshot(emu_reset) == before
    assert store.links("customers").empty
    assert store.cursor("customers", "crm") is None
    dup_action = {"overwrite": "overwrite", "clone": "clone", "skip": "skip"}[duplicates]
    # 8 accounts to Books, 6 business customers to CRM Accounts and, two-way whatever the
    # CRM module, 2 individual customers to CRM Contacts
    assert run.plan_summary["create"] == 16
    assert run.plan_summary[dup_action] >= 4
    events = store.events(run.id)
    expected = {"overwrite": "overwritten", "clone": "cloned", "skip": "skipped"}[duplicates]
    dup_events = events[events["action"] == expected]
    assert {"Acme Ltd", "Global Logistics Corp."} <= set(dup_events["name"])
    assert set(events[events["action"] == "created"]["name"]) >= {"Acme (UK), Ltd\\",
                                                                   "Meridian Holdings"}
    near = events[events["name"].isin(["ACME Limited", "Global Foundry Corp.."])]
    assert len(near) == 2 and all("possible duplicate of" in m for m in near["message"])
    artifacts = read_artifacts(run.flow_run_id)
    details = artifacts["customers-plan-details"].data
    assert "Acme (UK), Ltd\\\\" in details and expected in details
    summary = {r["side"]: r for r in json.loads(artifacts["customers-plan-summary"].data)}
    assert summary["books"]["created"] == run.counts["books"]["created"] > 0
    assert summary["crm"]["created"] == run.counts["crm"]["created"] > 0


def test_changed_on_both_sides_merges_and_records_the_conflict(store, emu_reset, crm_http,
                                                               books_http):
    """Merge and history: one-side changes merge both ways; a field changed on both takes
    CRM's value."""
    sync(store, scope="both", duplicates="skip")
    next_second()
    account = next(a for a in crm(emu_reset).values() if a["Account_Name"] ==
                   "Alpine Analytics SARL")
    contact_id = next(i for i, r in books_customers(emu_reset).items() if cf(r) == account["id"])
    old_phone = books_customers(emu_reset)[contact_id]["billing_address"]["phone"]
    old_website = account["Website"]
    crm_put(crm_http, "Accounts", account["id"], {"Phone": "+44 20 7946 0000",
                                                  "Billing_City": "Lyon"})
    address = dict(books_customers(emu_reset)[contact_id]["billing_address"], city="Nice")
    books_put(books_http, emu_reset, contact_id, {"website": "https://alpine.example/new",
                                                  "billing_address": address})
    before = snapshot(emu_reset)
    clear_stats(emu_reset)

    state, plan_run = sync(store, dry_run=True)  # the conflict shows in the plan first
    assert state.is_completed() and plan_run.plan_summary.get("conflict-merge") == 1
    assert writes(emu_reset) == [] and snapshot(emu_reset) == before
    clear_stats(emu_reset)

    state, run = sync(store)
    assert state.is_completed(), failures(store)
    books_rec = books_customers(emu_reset)[contact_id]
    crm_rec = crm(emu_reset)[account["id"]]
    assert books_rec["billing_address"]["phone"] == "+44 20 7946 0000"  # CRM → Books
    assert crm_rec["Website"] == "https://alpine.example/new"  # Books → CRM
    assert books_rec["billing_address"]["city"] == crm_rec["Billing_City"] == "Lyon"  # CRM wins
    assert run.counts["books"]["conflicts"] == 1
    events = store.events(run.id)
    conflict = [c for cs in events["conflicts"] for c in cs]
    assert {"field": "billing_address.city", "crm": "Lyon", "books": "Nice",
            "winner": "crm"} in conflict
    changes = {(c["side"], c["field"]): (c["before"], c["after"])
               for cs in events["changes"] for c in cs}
    assert changes[("books", "billing_address.phone")] == (old_phone, "+44 20 7946 0000")
    assert changes[("books", "billing_address.city")] == ("Nice", "Lyon")
    assert changes[("crm", "Website")] == (old_website, "https://alpine.example/new")
    # The record's whole history, run by run
    history = store.events(record_key=f"crm/Accounts/{account['id']}")
    by_run = {r: sorted(set(zip(g["side"], g["action"], strict=True)))
              for r, g in history.groupby("run_id")}
    assert by_run[run.id] == [("books", "conflict"), ("crm", "conflict")]
    assert by_run[plan_run.id] == by_run[run.id]  # the dry run planned exactly this
    (first,) = set(by_run) - {run.id, plan_run.id}
    assert by_run[first] == [("books", "created")]
    clear_stats(emu_reset)
    state, quiet = sync(store)  # the merge is stable: nothing bounces back
    assert writes(emu_reset) == [] and quiet.counts["books"]["updated"] == 0
