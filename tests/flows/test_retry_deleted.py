"""End to end: `crmbooks retry` of a record deleted at its source since it failed.

The retry reads each failed record by id anyway; when that read says the record does not exist
(CRM INVALID_DATA, Books 404), there is nothing left to sync: the failure is resolved with a
note saying so, shown in the retry's report and in `history`, and nothing is written. A read
that fails for a transient reason (a 5xx from the emulator's faults) resolves nothing.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.runtime import get_runtime
from flows.deal_triggers import sync_deal_triggers
from support.customers import request_log, sync, writes
from support.transactions import ALL, crm_create, lines, run
from support.transactions import cli_json as cli
from support.waits import no_retry_waits

pytestmark = pytest.mark.settings(transactions={"enabled": True, "modules": ALL})

# CRM takes a 255-character website; Books stops at 200: a record that fails on its way over.
LONG_SITE = "https://example.com/" + "a" * 220
GONE_FROM_CRM = "deleted in the CRM since it failed: nothing to sync"


def delete_in_crm(crm_http, module: str, record_id: str) -> None:
    """Delete a record at its source through the CRM emulator's API."""
    answer = crm_http.delete(f"/crm/v8/{module}/{record_id}")
    assert answer.json()["data"][0]["status"] == "success", answer.text


def assert_resolved_as_deleted(report: dict, store, module: str, key: str, reason: str):
    """The retry reported the record resolved with the note, and the store agrees: no longer
    among the unresolved failures, the note kept next to the reason it failed."""
    assert report["resolved"] == [{"module": module, "record": key, "side": "books",
                                   "message": report["resolved"][0]["message"],
                                   "note": GONE_FROM_CRM}]
    assert reason in report["resolved"][0]["message"].lower()
    assert store.failures(module=module).empty
    [row] = store.failures(module=module, unresolved_only=False).to_dict("records")
    assert row["record_key"] == key and row["resolved"] and row["hint"] == GONE_FROM_CRM


def test_retry_resolves_a_customer_deleted_in_the_crm_and_writes_nothing(
        store, emu_reset, crm_http, monkeypatch):
    import crmbooks.app.cli.common

    monkeypatch.setattr(crmbooks.app.cli.common.console, "width", 2000)  # history's table in full
    answer = crm_http.post("/crm/v8/Accounts", json={"data": [
        {"Account_Name": "Gone Since Ltd", "Website": LONG_SITE}]})
    account = answer.json()["data"][0]["details"]["id"]
    state, first = sync(store, crm_module="accounts", scope="fetch", duplicates="skip")
    key = f"crm/Accounts/{account}"
    assert list(store.failures(module="customers")["record_key"]) == [key]

    delete_in_crm(crm_http, "Accounts", account)
    emu_reset.emu.stats.clear()
    code, report = cli("retry", "--module", "customers")

    assert code == 0, report
    [again] = report["runs"]
    assert again["module"] == "customers" and again["failures"] == []
    assert_resolved_as_deleted(report, store, "customers", key, "website")
    assert writes(emu_reset) == []
    # `history`: no longer among the unresolved failures; the failed run shows the note.
    code, listed = cli("history", "--failures")
    assert code == 0 and listed["failures"] == []
    shown = CliRunner().invoke(app, ["history", "--run", first.id[:8]])
    assert shown.exit_code == 0 and "deleted in the CRM since it failed" in shown.output
    # The text report of a retry says the same (here: nothing left to retry).
    assert "no unresolved failures" in CliRunner().invoke(app, ["retry"]).output


def test_retry_resolves_a_quote_deleted_in_the_crm_and_writes_nothing(
        store, emu_reset, crm_http, linked):
    quote = crm_create("Quotes", {"Subject": "Unlinked item, then deleted",
                                  "Account_Name": {"id": linked["account"]},
                                  "Quoted_Items": lines(linked, linked["unlinked_product"])})
    assert run("Quotes", quote)["counts"]["books"]["failed"] == 1
    key = f"Quotes:{quote}"

    delete_in_crm(crm_http, "Quotes", quote)
    emu_reset.emu.stats.clear()
    code, report = cli("retry", "--record", key)

    assert code == 0, report
    [again] = report["runs"]
    assert again["module"] == "transactions" and again["failures"] == []
    assert_resolved_as_deleted(report, store, "transactions", key, "not linked")
    assert writes(emu_reset) == []


def test_retry_resolves_a_deal_deleted_in_the_crm_and_writes_nothing(
        store, emu_reset, crm_http):
    store.save_settings("deals", {"enabled": True, "mode": "invoice"})
    [made] = get_runtime().crm.create("Deals", [{
        "Deal_Name": "No account, then deleted", "Stage": "Closed Won",
        "Amount": Decimal("99.50")}])
    assert made.ok, made
    sync_deal_triggers(deal_ids=[made.id], return_state=True)  # fails: the deal has no account
    key = f"deal:{made.id}"
    assert list(store.failures(module="deals")["record_key"]) == [key]

    delete_in_crm(crm_http, "Deals", made.id)
    emu_reset.emu.stats.clear()
    code, report = cli("retry", "--module", "deals")

    assert code == 0, report
    [again] = report["runs"]
    assert again["module"] == "deals" and again["failures"] == []
    assert_resolved_as_deleted(report, store, "deals", key, "has no account")
    assert writes(emu_reset) == []


def test_a_record_unreadable_for_a_transient_error_stays_failed(
        store, emu_reset, crm_http, linked, set_faults, monkeypatch):
    import crmbooks.runtime as runtime
    from crmbooks.connectors.zoho_crm import CrmClient

    # The client's backoff and the steps' retry delays shortened: the test is about the
    # outcome, not the waiting.
    no_retry_waits(monkeypatch)
    monkeypatch.setattr(runtime, "CrmClient", lambda config, *a, **k: CrmClient(
        config, *a, sleep=lambda s: time.sleep(min(s, 0.01)), **k))
    runtime.reset_runtime_cache()
    quote = crm_create("Quotes", {"Subject": "Unlinked item, unreadable",
                                  "Account_Name": {"id": linked["account"]},
                                  "Quoted_Items": lines(linked, linked["unlinked_product"])})
    assert run("Quotes", quote)["counts"]["books"]["failed"] == 1
    key = f"Quotes:{quote}"

    emu_reset.emu.stats.clear()
    set_faults({"error_rate": 1.0, "seed": 1})  # every answer a 5xx: the record unreadable
    code, report = cli("retry", "--record", key)
    set_faults({})

    # Zoho never answered: "try again later" (exit 4), in one sentence, the failure kept.
    assert code == 4, report
    assert report.startswith("error: Zoho or the network did not answer normally")
    assert "Traceback" not in report
    reads = [r["status"] for r in request_log(emu_reset)
             if r["method"] == "GET" and r["path"] == f"/crm/v8/Quotes/{quote}"]
    assert reads and all(s >= 500 for s in reads)  # the retry's read was what failed
    [still] = store.failures(module="transactions").to_dict("records")
    assert still["record_key"] == key and not still["resolved"]
    assert "not linked" in still["message"] and still["hint"] != GONE_FROM_CRM
    assert writes(emu_reset) == []
