"""The write journal in the state store: writes journaled before they are sent, settled by
their run, and a run undone only once (SQLite and, when configured, PostgreSQL)."""

from __future__ import annotations

import pytest

from crmbooks.store import StoreError
from tasks.steps import journal_entries


def test_a_batch_is_journaled_with_its_before_values_and_settled_by_its_outcomes(store):
    run = store.start_run("customers")
    units = [{"record_key": "crm/Accounts/1", "kind": "accounts", "crm_id": "1",
              "books_id": "b1", "name": "Acme", "action": "overwrite",
              "changes": [{"side": "books", "field": "website", "before": "https://old",
                           "after": "https://new"},
                          {"side": "crm", "field": "Phone", "before": None, "after": "1"}]},
             {"record_key": "crm/Accounts/2", "kind": "accounts", "crm_id": "2",
              "action": "create", "changes": []}]
    ids = store.journal_writes(run, "customers", journal_entries("books", units))
    assert len(ids) == 2
    sent = store.writes(run)
    assert [w["state"] for w in sent] == ["sent", "sent"]
    assert sent[0]["changes"] == [{"side": "books", "field": "website",
                                   "before": "https://old", "after": "https://new"}]
    assert [w["run_id"] for w in store.unsettled_writes("customers", other_than="x")] == \
        [run, run]

    settled = store.settle_writes(run, [
        {"record_key": "crm/Accounts/1", "side": "books", "ok": True, "books_id": "b1",
         "books_modified": "2026-01-01T00:00:00+0000"},
        {"record_key": "crm/Accounts/2", "side": "books", "ok": False, "message": "refused"}])
    assert settled == 2
    done, failed = store.writes(run)
    assert (done["state"], done["stamp"]) == ("done", "2026-01-01T00:00:00+0000")
    assert (failed["state"], failed["note"]) == ("failed", "refused")
    assert store.unsettled_writes("customers", other_than="x") == []


def test_a_run_is_undone_once(store):
    run, first, second = (store.start_run("customers") for _ in range(3))
    assert store.undone_by(run) is None
    store.record_undo(first, run)
    assert store.undone_by(run) == first and store.undo_of(first) == run
    with pytest.raises(StoreError, match="undone already"):
        store.record_undo(second, run)
    assert store.undone_by(run) == first


def test_the_next_run_confirms_a_killed_runs_writes_by_the_values_linked_in_place(store):
    from types import SimpleNamespace

    from tasks.audit import settle_journal

    killed = store.start_run("customers")

    def update(crm_id: str, after: str) -> dict:
        return {"side": "books", "record_key": f"crm/Accounts/{crm_id}", "crm_id": crm_id,
                "books_id": f"b{crm_id}", "action": "update",
                "changes": [{"side": "books", "field": "website", "before": None,
                             "after": after}]}

    store.journal_writes(killed, "customers", [update("1", "https://landed"),
                                               update("2", "https://lost"),
                                               update("3", "https://unlinked")])
    for crm_id, website in (("1", "https://landed"), ("2", "https://other")):
        store.upsert_link("customers", crm_id=crm_id, books_id=f"b{crm_id}", kind="accounts",
                          crm_module="Accounts", books_values={"website": website})
    rerun = store.start_run("customers")
    settle_journal(SimpleNamespace(run_id=rerun, module="customers"), store, [])
    states = {w["crm_id"]: (w["state"], w["note"]) for w in store.writes(killed)}
    assert states == {
        "1": ("confirmed", f"confirmed by run {rerun[:8]}"),
        "2": ("superseded", f"run {rerun[:8]} found other values in place"),
        "3": ("sent", f"run {rerun[:8]} found the record not linked")}
