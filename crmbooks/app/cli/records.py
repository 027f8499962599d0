"""`crmbooks retry`, `crmbooks fetch`, `crmbooks search`: operator actions on single records.

Each runs the matching flow of flows/records.py in this process and prints the runs it made,
like `crmbooks sync` (same exit codes: 0 synced, 1 some records failed, 2 configuration).
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from crmbooks.app.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED_RECORDS,
    EXIT_OK,
    EXIT_PAUSED,
    console,
    expected_errors,
    fail,
    prepare_local_prefect,
    print_runs,
)


def _run_and_report(flow_call, json_out: bool) -> int:
    """Run an operator flow; print the runs it started, and the failures it resolved because
    their record was deleted at its source (JSON key "resolved"); return the exit code."""
    import json

    from crmbooks.operations import NothingToDo, deleted_resolutions
    from crmbooks.reporting import run_to_json
    from crmbooks.runtime import open_store
    from crmbooks.sync.lifecycle import RunRefused

    prepare_local_prefect()
    started = datetime.now(UTC)
    state = flow_call()
    try:
        state.result()
    except NothingToDo as exc:
        console.print(str(exc))
        return EXIT_OK
    except RunRefused as exc:
        fail(str(exc), EXIT_PAUSED, wrap=True)
    except (*expected_errors(), ValueError) as exc:
        fail(str(exc), EXIT_CONFIG, wrap=True)
    except Exception:  # noqa: BLE001 - records failed: the runs below say which and why
        pass
    store = open_store()
    runs = [r for r in store.list_runs(limit=20) if _aware(r.started_at) >= started]
    as_json = [run_to_json(store, r) for r in reversed(runs)]
    gone = deleted_resolutions(store, started)
    if json_out:
        print(json.dumps({"runs": as_json, "resolved": gone}, indent=2, default=str))
    else:
        print_runs(as_json)
        for g in gone:
            console.print(f"[green]✓[/] {g['module']} {g['record']}: {g['note']} (failed "
                          f"before: {g['message']})", highlight=False)
    failed = any(r["state"] != "completed" for r in as_json)
    return EXIT_FAILED_RECORDS if failed else EXIT_OK


def _aware(moment: datetime) -> datetime:
    """A stored time as UTC-aware (SQLite gives naive times back)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def retry(
    run: str = typer.Option(None, "--run", help="Retry the failures of this run (id)."),
    module: str = typer.Option(None, "--module", help="Retry the failures of one module: "
                               "customers, vendors, items, transactions or deals."),
    record: list[str] = typer.Option(None, "--record",
                                     help="Retry these record keys (see `history --failures`)."),
    json_out: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
):
    """Retry failed records: all of a run, of a module, or by record key.

    A record fixed at its source syncs; one still broken stays failed with its reason; one
    deleted at its source since it failed is resolved with a note saying so (a record that
    could not be read for a transient error stays failed).
    Transactions are re-run through the transactions flow (keys `Quotes:<CRM id>` into Books,
    `estimates:<Books id>` into the CRM), deals through the deal triggers (`deal:<id>`).

    Example: crmbooks retry --module customers
    """
    from flows.records import retry_failed_records

    raise typer.Exit(_run_and_report(lambda: retry_failed_records(
        module=module, run_id=run, record_keys=record or None, return_state=True), json_out))


def fetch(
    kind: str = typer.Argument(..., help="customer or vendor"),
    crm_id: str = typer.Option(None, "--crm-id", help="The CRM record id."),
    name: str = typer.Option(None, "--name", help="The exact CRM name."),
    json_out: bool = typer.Option(False, "--json", help="Print the run as JSON."),
):
    """Refresh one customer or vendor from the CRM now, without a full sync.

    Example: crmbooks fetch customer --name "Acme Ltd"
    """
    from flows.records import fetch_one

    raise typer.Exit(_run_and_report(lambda: fetch_one(
        kind=kind, crm_id=crm_id, name=name, return_state=True), json_out))


def search(
    name: str = typer.Argument(..., help="Account or vendor name, or a contact's first/last name"),
    module: str = typer.Option("accounts", "--module", help="accounts, contacts or vendors"),
    import_pick: int = typer.Option(None, "--import",
                                    help="Import the N-th record never imported (1-based)."),
):
    """Look up CRM records by name; list those never imported; --import N imports one.

    Example: crmbooks search "Acme" --module accounts --import 1
    """
    from crmbooks.operations import look_up
    from crmbooks.runtime import get_runtime

    prepare_local_prefect()
    try:
        found = look_up(get_runtime(), name, module)
    except ValueError as exc:
        fail(str(exc), wrap=True)
    fresh = [f for f in found if not f.linked]
    if import_pick is None:
        if not found:
            console.print(f"no CRM {module} named {name!r}")
        for i, f in enumerate(fresh, 1):
            console.print(f"{i}. {f.name}  ({f.crm_module} {f.crm_id})")
        linked = len(found) - len(fresh)
        if linked:
            console.print(f"({linked} more already imported)")
        raise typer.Exit(0)
    from flows.records import import_from_crm

    raise typer.Exit(_run_and_report(lambda: import_from_crm(
        name=name, where=module, pick=import_pick, return_state=True), False))
