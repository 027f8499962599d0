"""Settings that apply to what exists: after a change of what a module reads or how it maps,
the next run reads every record once and writes those whose mapped values now differ (and
only those); `configure` says so before it saves; `sync --full` does the same on demand and
writes nothing where nothing differs."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.sync.cursors import settings_fingerprint
from flows.items import sync_items
from support.customers import clear_stats, writes
from support.vendors_items import cf, last_run, org_of, written


def pairs(store, server) -> list[tuple[dict, dict]]:
    """(CRM product, Books item) of every link of the items module, as stored now."""
    products = server.emu.crm.records("Products")
    items = server.emu.books.org(org_of(server)).records["items"]
    return [(products[row.crm_id], items[row.books_id])
            for row in store.links("items").itertuples()]


def test_a_map_change_reaches_existing_unchanged_records_then_full_writes_nothing(
        store, emu_reset):
    first = sync_items(return_state=True)
    assert first.is_completed(), first.message
    linked = pairs(store, emu_reset)
    # The new map: Books' item category from the CRM's manufacturer. Nothing changed since
    # the first run, so an incremental read would find nothing; these differ now.
    differ = [(p, i) for p, i in linked if (p.get("Manufacturer") or None) !=
              (cf(i, "cf_category") or None)]
    assert len(differ) >= 5, (len(differ), len(linked))
    clear_stats(emu_reset)

    saved = CliRunner().invoke(app, ["configure", "items", "--map", "cf_category=Manufacturer"])
    assert saved.exit_code == 0, saved.output
    said = " ".join(saved.output.split())
    assert said.index("Under these settings the next run will") < said.index("Saved")
    assert "(planned over every record, nothing written)" in said
    assert writes(emu_reset) == []  # the plan wrote nothing

    run = CliRunner().invoke(app, ["sync", "items", "--json"])
    assert run.exit_code == 0, run.output
    row = last_run(store, "items")
    assert "every record is read once" in row.message
    # Only the records whose mapped values differ were written: Books one call each, the
    # CRM's in one batch.
    assert sum(written(row).values()) == len(differ)
    assert len(writes(emu_reset, "books")) == written(row)["books"] > 0
    assert len(writes(emu_reset, "crm")) == (1 if written(row)["crm"] else 0)
    for product, item in pairs(store, emu_reset):
        assert (product.get("Manufacturer") or None) == (cf(item, "cf_category") or None)
    planned = said.split("the next run will ")[1].split(" (planned")[0]
    assert planned == _words(row.counts), (planned, row.counts)
    # The cursors now stand for the new settings: the next run reads incrementally.
    active = store.active_settings("items")[1]
    from crmbooks.settings import parse_module_settings

    fingerprint = settings_fingerprint(parse_module_settings("items", active).model_dump(
        mode="json"))
    settled = {store.cursor_settings("items", side) for side in ("crm", "books")
               if store.cursor("items", side) is not None}
    assert settled == {fingerprint}

    clear_stats(emu_reset)
    full = CliRunner().invoke(app, ["sync", "items", "--full", "--json"])
    assert full.exit_code == 0, full.output
    counts = json.loads(full.output)["runs"][0]["counts"]
    assert counts["books"]["updated"] == counts["crm"]["updated"] == 0, counts
    assert writes(emu_reset) == []
    assert "a full run" in last_run(store, "items").message


def _words(counts: dict) -> str:
    """What `configure` says of a plan with these counts (its own wording, recomputed)."""
    from crmbooks.app.cli.configure import change_in_words

    return change_in_words(counts)
