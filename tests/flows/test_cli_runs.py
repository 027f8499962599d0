"""The CLI around real runs: a refused run and a provider failing are one sentence with their
exit code and no traceback (also in a separate process, where Prefect's own console logging
is live), and the tables read at 80 columns: a record key, a run id and a state are never
cut, and every table a script would read has `--json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app, common
from support.waits import no_retry_waits

# CRM takes a 255-character website; Books stops at 200: a record that fails on its way over.
LONG_SITE = "https://example.com/" + "a" * 220


def cli_process(*args: str, env: dict) -> subprocess.CompletedProcess:
    """`crmbooks ARGS` in a process of its own, on this test's state and Prefect server."""
    from prefect.settings import PREFECT_API_URL

    full = {**os.environ, **env, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "COLUMNS": "80"}
    full.pop("PREFECT_LOGGING_LEVEL", None)
    return subprocess.run([sys.executable, "-m", "crmbooks.app.cli", *args], env=full,
                          capture_output=True, text=True, timeout=240)


def one_sentence(output: str, *words: str) -> str:
    assert "Traceback" not in output, output
    text = " ".join(output.split())
    assert text.startswith("error: ") and text.count("error:") == 1, output
    for word in words:
        assert word in text, text
    return text


def test_a_run_refused_by_another_in_progress_is_one_line_exit_3(store):
    """In a process of its own: no Prefect traceback, no INFO line, one sentence."""
    holder = store.start_run("customers")
    store.acquire_run_lock("customers", holder)  # this test's process: alive, so not stale
    try:
        done = cli_process("sync", "customers", env={})
    finally:
        store.release_run_lock("customers", holder)
    assert done.returncode == 3, done.stdout + done.stderr
    one_sentence(done.stdout + done.stderr, "another run of customers is in progress",
                 holder)
    assert "| INFO" not in done.stderr and "Flow run" not in done.stderr


def test_sync_runs_transactions_and_deal_triggers_by_name_and_skips_them_when_off(store):
    """`sync transactions deal-triggers`: turned off (as on a new connection), each is a
    skipped run object with its reason and the exit code is 0; turned on, it runs (the demo's
    test shows both on, in `sync all`)."""
    result = CliRunner().invoke(app, ["sync", "Deal-Triggers", "transactions", "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)["runs"]
    assert [(r["module"], r["state"], r["run_id"]) for r in runs] == [
        ("transactions", "skipped", None), ("deals", "skipped", None)]
    assert "crmbooks configure transactions --enable" in runs[0]["reason"]
    assert "crmbooks configure deals" in runs[1]["reason"]
    # the run object's keys are all there (scripts read them), with nothing counted
    assert {"dry_run", "counts", "api_calls", "failures"} <= set(runs[0])
    assert runs[0]["counts"]["books"]["failed"] == 0 and runs[0]["failures"] == []
    assert store.list_runs() == []  # nothing ran, so nothing is recorded as failed

    table = CliRunner().invoke(app, ["sync", "deals"], terminal_width=100)
    assert table.exit_code == 0, table.output
    assert "deals skipped: deal triggers are off: run `crmbooks configure deals`" in " ".join(
        table.output.split())

    # deal triggers on (transactions still off): the deals run is a run like any other
    store.save_settings("deals", {"enabled": True, "mode": "invoice"})
    result = CliRunner().invoke(app, ["sync", "transactions", "deals", "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)["runs"]
    assert [(r["module"], r["state"]) for r in runs] == [("transactions", "skipped"),
                                                         ("deals", "completed")]
    assert [r.id for r in store.list_runs()] == [runs[1]["run_id"]]


@pytest.mark.slow
def test_a_429_storm_during_a_sync_exits_4(store, set_faults, monkeypatch):
    from crmbooks.connectors.http import ZohoHttp

    monkeypatch.setitem(ZohoHttp.__init__.__kwdefaults__, "sleep", lambda _s: None)
    no_retry_waits(monkeypatch)
    set_faults({"rate_429": 1.0})
    result = CliRunner().invoke(app, ["sync", "vendors"])
    assert result.exit_code == 4, result.output
    one_sentence(result.output, "429", "try again")


@pytest.fixture
def failed_run(store, crm_http):
    """A customers run with one failed record: (run id, its record key)."""
    answer = crm_http.post("/crm/v8/Accounts", json={"data": [
        {"Account_Name": "Very Long Website Ltd", "Website": LONG_SITE}]})
    key = f"crm/Accounts/{answer.json()['data'][0]['details']['id']}"
    store.save_settings("customers", {"crm_module": "accounts", "scope": "fetch",
                                      "duplicates": "skip"})
    return store, key


def at_80_columns(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(common.console, "width", 80)
    monkeypatch.setattr(common.err_console, "width", 80)


def lines_hold(output: str, *whole: str) -> None:
    """Each of `whole` appears uncut on one line of `output`, and no table cell was cut (…;
    a provider's message may quote a long value shortened with one itself)."""
    for text in whole:
        assert any(text in line for line in output.splitlines()), (text, output)
    cells = [line for line in output.splitlines() if "│" in line or "┃" in line]
    assert not [line for line in cells if "…" in line], output


def test_tables_at_80_columns_never_cut_keys_ids_or_states(failed_run, monkeypatch):
    store, key = failed_run
    at_80_columns(monkeypatch)
    synced = CliRunner().invoke(app, ["sync", "customers"])
    assert synced.exit_code == 1, synced.output
    lines_hold(synced.output, "customers", "completed_with_failures", key)
    [run] = store.list_runs(module="customers", limit=1)

    shown = CliRunner().invoke(app, ["history"])
    lines_hold(shown.output, run.id, "completed_with_failures")
    failures = CliRunner().invoke(app, ["history", "--failures"])
    lines_hold(failures.output, key, "TOO_LONG")
    one_run = CliRunner().invoke(app, ["history", "--run", run.id[:8]])
    lines_hold(one_run.output, run.id, key)
    status = CliRunner().invoke(app, ["status"])
    lines_hold(status.output, "completed_with_failures", "include_unassociated_contacts=no;")
    linked = CliRunner().invoke(app, ["linked", "customers"])
    some = store.links("customers").iloc[0]
    lines_hold(linked.output, str(some["crm_id"]), str(some["books_id"]))


def test_every_table_a_script_reads_has_json(failed_run):
    store, key = failed_run
    synced = CliRunner().invoke(app, ["sync", "customers", "--json"])
    [run] = json.loads(synced.output)["runs"]
    assert run["state"] == "completed_with_failures"
    assert [f["record"] for f in run["failures"]] == [key]
    for args, top in ((["history"], "runs"), (["history", "--failures"], "failures"),
                      (["status"], "modules"), (["linked", "customers"], "customers"),
                      (["retry", "--module", "customers"], "runs"),
                      (["search", "Very Long Website Ltd"], "found"),
                      (["deals", "links", "1"], "links")):
        result = CliRunner().invoke(app, [*args, "--json"])
        assert result.exit_code in (0, 1), (args, result.output)
        assert top in json.loads(result.output), (args, result.output)
