"""Quiet runs at the minimum: records changed in the cursor's second are not read again by
every later run, and a change made later in that same second is still found.

Stamps have whole seconds and the incremental reads include the cursor's second. The cursor
skips its second only when the read that reached it began after that second had ended, by the
server's clock (its Date headers). The emulator's clock is moved forward instead of waiting.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from emulators.crm.store import iso
from flows.vendors import sync_vendors
from support.customers import clear_stats, request_log
from support.vendors_items import crm_update, runner

CRM_VENDORS = "/crm/v8/Vendors"
run = runner("vendors", sync_vendors)


def vendors(emu) -> dict[str, dict]:
    return emu.crm.records("Vendors")


def stamp_alike(emu, ids, stamp: str) -> None:
    """Give these CRM vendors one modified stamp, as a bulk change within one second does."""
    module = emu.crm.stores["Vendors"]
    for record_id in ids:
        record = module.records[record_id]
        old_stamp, old_values = record["Modified_Time"], dict(record)
        record["Modified_Time"] = stamp
        module.touch(record, old_stamp, old_values)  # the If-Modified-Since index too


def crm_list_reads(server) -> list[dict]:
    return [r for r in request_log(server) if r["method"] == "GET"
            and r["path"] == CRM_VENDORS]


def books_names(emu) -> set[str]:
    org = emu.books.org()
    return {c["contact_name"] for c in org.records["contacts"].values()
            if c.get("contact_type") == "vendor"}


def test_after_a_bulk_change_in_one_second_a_quiet_run_reads_nothing_again(
        store, emu_reset, crm_http):
    emu = emu_reset.emu
    emu.reset(seed=7, sizes=replace(emu.config.sizes, vendors=210))  # more than one page
    assert run(store).state == "completed"
    ids = sorted(vendors(emu))
    for start in range(0, len(ids), 100):
        response = crm_http.put(CRM_VENDORS, json={"data": [
            {"id": i, "Description": f"Bulk edit {n}"} for n, i in
            enumerate(ids[start:start + 100], start)]})
        assert response.status_code in (200, 202), response.text
    stamp_alike(emu, ids, max(v["Modified_Time"] for v in vendors(emu).values()))
    emu.advance_clock(2)  # the next read begins after that second has ended

    clear_stats(emu_reset)
    changed = run(store)
    assert changed.state == "completed" and changed.counts["books"]["updated"] > 200
    assert len(crm_list_reads(emu_reset)) == 2  # 210 records: two pages

    clear_stats(emu_reset)
    quiet = run(store)
    assert quiet.state == "completed"
    assert [r["status"] for r in crm_list_reads(emu_reset)] == [304]  # one call, nothing read


def test_a_change_later_in_the_cursors_second_is_still_found(store, emu_reset, crm_http):
    emu = emu_reset.emu
    assert run(store).state == "completed"
    synced = set(store.links("vendors")["crm_id"])
    first, second = sorted(i for i in vendors(emu) if i in synced)[:2]
    # A change stamped half a minute ahead: the next run reads it before its second ends.
    second_of_change = iso(emu.now() + timedelta(seconds=30))
    crm_update(crm_http, "Vendors", first, {"Vendor_Name": "Early Change Ltd"})
    stamp_alike(emu, [first], second_of_change)
    assert run(store).state == "completed"
    assert "Early Change Ltd" in books_names(emu)

    # Another change in that same second, made after the read: it carries the same stamp.
    crm_update(crm_http, "Vendors", second, {"Vendor_Name": "Same Second Ltd"})
    stamp_alike(emu, [second], second_of_change)
    assert run(store).state == "completed"
    assert "Same Second Ltd" in books_names(emu)

    # Once that second has ended, a run moves past it and the next reads nothing again.
    emu.advance_clock(60)
    assert run(store).state == "completed"
    clear_stats(emu_reset)
    assert run(store).state == "completed"
    assert [r["status"] for r in crm_list_reads(emu_reset)] == [304]
