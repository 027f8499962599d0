"""Settings that apply to what exists: after a change of what a module reads or how it maps,
the next run reads every record once and writes those whose mapped values now differ (and
only those); `configure` says so before it saves; `sync --full` does the same on demand and
writes nothing where nothing differs."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.settings import parse_module_settings
from crmbooks.sync.cursors import settings_fingerprint
from flows.vendors import sync_vendors
from support.customers import clear_stats, writes
from support.vendors_items import cf, last_run, org_of, written

#: The CRM vendor category (a picklist) as a Books segment: an extra map with a value map.
SEGMENTS = {"Hardware": "hw", "Software": "sw", "Services": "svc", "Logistics": "log"}


def pairs(store, server) -> list[tuple[dict, dict]]:
    """(CRM vendor, Books vendor) of every link of the vendors module, as stored now."""
    crm = server.emu.crm.records("Vendors")
    books = server.emu.books.org(org_of(server)).records["contacts"]
    return [(crm[row.crm_id], books[row.books_id]) for row in store.links("vendors").itertuples()]


def segment(vendor: dict) -> str | None:
    """The Books segment a CRM vendor's category maps to."""
    return SEGMENTS.get(vendor.get("Category") or "")


def test_a_map_change_reaches_existing_unchanged_records_then_full_writes_nothing(
        store, emu_reset):
    first = sync_vendors(return_state=True)
    assert first.is_completed(), first.message
    # Nothing changed since the first run, so an incremental read would find nothing; under
    # the new map these differ.
    differ = [(v, b) for v, b in pairs(store, emu_reset)
              if segment(v) != (cf(b, "cf_segment") or None)]
    assert len(differ) >= 3, differ
    clear_stats(emu_reset)

    saved = CliRunner().invoke(app, [
        "configure", "vendors", "--map", "cf_segment=Category",
        *[a for crm, books in SEGMENTS.items() for a in ("--value-map",
                                                          f"cf_segment:{crm}={books}")]])
    assert saved.exit_code == 0, saved.output
    said = " ".join(saved.output.split())
    assert said.index("Under these settings the next run will") < said.index("Saved")
    assert "(planned over every record, nothing written)" in said
    assert writes(emu_reset) == []  # the plan wrote nothing

    assert sync_vendors(return_state=True).is_completed()
    row = last_run(store, "vendors")
    assert "every record is read once" in row.message
    # Only the records whose mapped values differ were written: Books one call each.
    assert written(row) == {"books": len(differ), "crm": 0}
    assert len(writes(emu_reset, "books")) == len(differ)
    for vendor, books in pairs(store, emu_reset):
        assert segment(vendor) == (cf(books, "cf_segment") or None)
    planned = said.split("the next run will ")[1].split(" (planned")[0]
    assert planned == _words(row.counts), (planned, row.counts)
    # The cursors now stand for the new settings: the next run reads incrementally.
    active = parse_module_settings("vendors", store.active_settings("vendors")[1])
    settled = {store.cursor_settings("vendors", side) for side in ("crm", "books")
               if store.cursor("vendors", side) is not None}
    assert settled == {settings_fingerprint(active.model_dump(mode="json"))}

    clear_stats(emu_reset)
    full = CliRunner().invoke(app, ["sync", "vendors", "--full", "--json"])
    assert full.exit_code == 0, full.output
    counts = json.loads(full.output)["runs"][0]["counts"]
    assert counts["books"]["updated"] == counts["crm"]["updated"] == 0, counts
    assert writes(emu_reset) == []
    assert "a full run" in last_run(store, "vendors").message


def _words(counts: dict) -> str:
    """What `configure` says of a plan with these counts (its own wording, recomputed)."""
    from crmbooks.app.cli.configure import change_in_words

    return change_in_words(counts)
