"""The pipeline end to end on the default settings: every module syncs, twice, both sides."""

import pytest

from flows.customers import sync_customers
from flows.items import sync_items
from flows.vendors import sync_vendors


@pytest.mark.slow
def test_every_module_syncs_and_a_second_run_writes_nothing(connected_any_db, emu_reset):
    store = connected_any_db
    for flow in (sync_customers, sync_vendors, sync_items):
        first = flow(return_state=True)
        assert first.is_completed() or first.is_failed()
    runs = store.list_runs(limit=10)
    assert {r.module for r in runs} == {"customers", "vendors", "items"}
    assert all(r.state in ("completed", "completed_with_failures") for r in runs)
    emu = emu_reset.emu
    books = emu.books.org()
    linked = store.links("customers")
    # every link points at records that exist on both sides
    for crm_id, books_id in zip(linked["crm_id"], linked["books_id"], strict=True):
        assert crm_id in emu.crm.records("Accounts") or crm_id in emu.crm.records("Contacts")
        assert books_id in books.records["contacts"] or any(
            books_id == p["contact_person_id"] for c in books.records["contacts"].values()
            for p in c.get("contact_persons", []))
    for flow in (sync_customers, sync_vendors, sync_items):
        flow(return_state=True)
    again = store.list_runs(limit=3)
    for run in again:
        written = sum(run.counts[side][k] for side in ("books", "crm")
                      for k in ("created", "updated"))
        assert written == 0, (run.module, run.counts)
