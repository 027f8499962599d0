"""An extra Books organization on the same CRM syncs one way only (CRM → Books).

One test-local emulator serves two Books organizations (the session emulator has one). The
primary org syncs both ways; the extra org gets every CRM customer, sends nothing to CRM
whatever its settings say, and keeps its own links, cursors and history.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.runtime import NotConnected
from crmbooks.store import Store
from flows.customers import sync_customers
from flows.operations import sync_now
from flows.vendors import sync_vendors
from support.customers import cf, clear_stats, writes
from support.orgs import EXTRA, PRIMARY


def _contacts(server, org: str, contact_type: str) -> dict[str, dict]:
    records = server.emu.books.org(org).records["contacts"]
    return {i: r for i, r in records.items() if r["contact_type"] == contact_type}


def test_extra_org_gets_every_crm_customer_and_sends_nothing_to_crm(connected_two, two_orgs):
    primary = connected_two
    extra = Store(primary.engine, org_id=EXTRA)
    # Settings are per organization; the extra org's "both" is overridden (one way only).
    configured = CliRunner().invoke(app, ["configure", "customers", "--org", EXTRA, "--scope",
                                          "both", "--duplicates", "overwrite"])
    assert configured.exit_code == 0, configured.output
    assert extra.active_settings("customers")[1]["duplicates"] == "overwrite"
    assert primary.active_settings("customers") is None
    assert sync_customers(return_state=True).is_completed()
    crm_before = {m: dict(two_orgs.emu.crm.records(m)) for m in ("Accounts", "Contacts")}
    clear_stats(two_orgs)

    state = sync_customers(org_id=EXTRA, return_state=True)

    assert state.is_completed(), state.message
    assert writes(two_orgs, "crm") == []  # nothing from org 2 reaches CRM
    assert {m: two_orgs.emu.crm.records(m) for m in crm_before} == crm_before
    run = extra.list_runs(module="customers", limit=1)[0]
    assert run.org_id == EXTRA and run.state == "completed"
    assert "one-way" in (run.message or "") and EXTRA in run.message
    assert run.counts["crm"]["created"] == run.counts["crm"]["updated"] == 0
    # Every CRM account is a customer of org 2, created there or overwritten (CRM wins).
    by_crm_id = {cf(r): r for r in _contacts(two_orgs, EXTRA, "customer").values() if cf(r)}
    assert set(by_crm_id) == set(crm_before["Accounts"])
    # Links and cursors are per organization.
    links = extra.links("customers")
    assert set(links["crm_id"]) == set(crm_before["Accounts"])
    assert set(links["books_id"]) <= set(_contacts(two_orgs, EXTRA, "customer"))
    assert not set(links["books_id"]) & set(primary.links("customers")["books_id"])
    assert extra.cursor("customers", "crm") is not None
    # The history lists the runs of every organization, each with its own.
    orgs = [r.org_id for r in primary.list_runs(module="customers", limit=5)]
    assert orgs == [EXTRA, PRIMARY]
    # A second run of the extra org (sync now, as from the Prefect UI) writes nothing.
    clear_stats(two_orgs)
    assert sync_now(modules=["customers"], org_id=EXTRA, return_state=True).is_completed()
    assert writes(two_orgs) == []
    assert extra.list_runs(limit=1)[0].org_id == EXTRA


def test_sync_cli_one_org_all_orgs_and_an_unknown_org(connected_two, two_orgs):
    crm_vendors = dict(two_orgs.emu.crm.records("Vendors"))
    extra = Store(connected_two.engine, org_id=EXTRA)
    extra.save_settings("vendors", {"duplicates": "overwrite"})  # CRM wins in org 2
    assert CliRunner().invoke(app, ["configure", "vendors", "--org", "77"]).exit_code == 2
    clear_stats(two_orgs)
    runner = CliRunner()

    result = runner.invoke(app, ["sync", "vendors", "--org", EXTRA, "--json"])

    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.output)["runs"]
    assert run["org_id"] == EXTRA and run["state"] == "completed"
    assert run["counts"]["books"]["created"] > 0 and run["api_calls"]["crm"] >= 1
    assert writes(two_orgs, "crm") == [] and two_orgs.emu.crm.records("Vendors") == crm_vendors
    assert set(extra.links("vendors")["crm_id"]) == set(crm_vendors)

    result = runner.invoke(app, ["sync", "vendors", "--all-orgs", "--json"])
    assert result.exit_code == 0, result.output
    assert [r["org_id"] for r in json.loads(result.output)["runs"]] == [PRIMARY, EXTRA]

    result = runner.invoke(app, ["sync", "vendors", "--org", "20099003"])
    assert result.exit_code == 2
    assert "--extra-books-org 20099003" in " ".join(result.output.split())
    assert runner.invoke(app, ["sync", "--org", EXTRA, "--all-orgs"]).exit_code == 2
    with pytest.raises(NotConnected, match="not connected"):
        sync_vendors(org_id="20099003")
