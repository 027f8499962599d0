"""`crmbooks retry`, `crmbooks fetch`, `crmbooks search`: operator actions on single records.

Each checks its arguments first (a module name, a record found by name, an --import number in
range, the integration not paused), without starting Prefect; then runs the matching flow of
flows/records.py in this process and prints the runs it made, like `crmbooks sync` (same exit
codes: 0 synced, 1 some records failed, 2 arguments or configuration, 3 paused or another
run in progress, 4 Zoho or the network failed).
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from crmbooks.app.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED_RECORDS,
    EXIT_OK,
    EXIT_PAUSED,
    EXIT_PROVIDER,
    check_before_running,
    console,
    expected_errors,
    fail,
    print_runs,
    provider_errors,
    provider_sentence,
    runtime_or_fail,
    use_prefect_server,
)


def _run_and_report(flow_call, json_out: bool, nothing_code: int = EXIT_OK) -> int:
    """Run an operator flow; print the runs it started, and the failures it resolved because
    their record was deleted at its source (JSON key "resolved"); return the exit code.

    `nothing_code`: the exit code when the flow finds nothing to do (0 for a retry with no
    failure left, 2 for a record asked for by name that is not there)."""
    import json

    from crmbooks.operations import NothingToDo, deleted_resolutions
    from crmbooks.reporting import run_to_json
    from crmbooks.runtime import open_store
    from crmbooks.sync.lifecycle import RecordsFailed, RunRefused

    use_prefect_server()
    started = datetime.now(UTC)
    state = flow_call()
    try:
        state.result()
    except NothingToDo as exc:
        if nothing_code != EXIT_OK:
            fail(str(exc), nothing_code, wrap=True)
        console.print(str(exc))
        return EXIT_OK
    except RunRefused as exc:
        fail(str(exc), EXIT_PAUSED, wrap=True)
    except provider_errors() as exc:
        fail(provider_sentence(exc), EXIT_PROVIDER, wrap=True)
    except (*expected_errors(), ValueError) as exc:
        fail(str(exc), EXIT_CONFIG, wrap=True)
    except RecordsFailed:  # the runs below say which records and why
        pass
    except Exception:  # noqa: BLE001 - a run that stopped: the runs below say how it ended
        pass
    store = open_store()
    runs = [r for r in store.list_runs(limit=20) if _aware(r.started_at) >= started]
    row = store.connection()
    primary = row.books_org_id if row is not None else None
    # a run of an extra organization says which, as `sync --org` does
    as_json = [{**run_to_json(store, r), **({"org_id": r.org_id}
                                             if r.org_id and r.org_id != primary else {})}
               for r in reversed(runs)]
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
    org: str = typer.Option(None, "--org", help="Retry only this Books organization's failures "
                            "(default: every organization's, each in its own)."),
    json_out: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
):
    """Retry failed records: all of a run, of a module, or by record key.

    Each failure is retried in the Books organization it belongs to (the `org` column of
    `history --failures`); a retry in one organization never resolves another's.

    A record fixed at its source syncs; one still broken stays failed with its reason; one
    deleted at its source since it failed is resolved with a note saying so (a record that
    could not be read for a transient error stays failed).
    Transactions are re-run through the transactions flow (keys `Quotes:<CRM id>` into Books,
    `estimates:<Books id>` into the CRM), deals through the deal triggers (`deal:<id>`).

    Example: crmbooks retry --module customers
    """
    from crmbooks.operations import RETRY_MODULES, NothingToDo, failed_targets
    from crmbooks.runtime import open_store

    if module is not None and module not in RETRY_MODULES:
        fail(f"--module must be one of {', '.join(RETRY_MODULES)}, not {module!r}", wrap=True)
    org = org.strip() if org else None
    if org:  # an organization never connected is a wrong argument, not "nothing to retry"
        from crmbooks.operations import connected_orgs

        connected = connected_orgs(open_store())
        if org not in connected:
            fail(f"Books organization {org} is not connected (connected: "
                 f"{', '.join(connected) or 'none'}): `crmbooks history --failures` shows "
                 "the organization of each failure", wrap=True)
    try:  # what there is to retry, from the state store: nothing starts when nothing is due
        failed_targets(open_store(), run_id=run, module=module, record_keys=record or None,
                       org_id=org)
    except NothingToDo as exc:
        console.print(f"Nothing to retry: {exc}.", highlight=False)
        raise typer.Exit(EXIT_OK) from None
    check_before_running()
    from flows.records import retry_failed_records

    raise typer.Exit(_run_and_report(lambda: retry_failed_records(
        module=module, run_id=run, record_keys=record or None, org_id=org,
        return_state=True), json_out))


def fetch(
    kind: str = typer.Argument(..., help="customer or vendor"),
    crm_id: str = typer.Option(None, "--crm-id", help="The CRM record id."),
    name: str = typer.Option(None, "--name", help="The exact CRM name."),
    json_out: bool = typer.Option(False, "--json", help="Print the run as JSON."),
):
    """Refresh one customer or vendor from the CRM now, without a full sync.

    Example: crmbooks fetch customer --name "Acme Ltd"
    """
    from crmbooks.operations import FETCH_KINDS, NothingToDo, fetch_targets

    if kind not in FETCH_KINDS:
        fail(f"fetch takes customer or vendor, not {kind!r}", wrap=True)
    if not crm_id and not name:
        fail("give --crm-id ID or --name NAME of the CRM record to fetch", wrap=True)
    if crm_id and name:
        fail("give --crm-id or --name, not both", wrap=True)
    check_before_running()
    if name:  # found by name here, so that a name matching nothing starts nothing
        try:
            _module, targets = fetch_targets(runtime_or_fail(), kind, name=name)
        except NothingToDo as exc:
            fail(f"{exc}: check the name in the CRM, or give --crm-id", wrap=True)
        crm_id, name = targets["crm"][0], None
    from flows.records import fetch_one

    raise typer.Exit(_run_and_report(lambda: fetch_one(
        kind=kind, crm_id=crm_id, name=name, return_state=True), json_out,
        nothing_code=EXIT_CONFIG))


def search(
    name: str = typer.Argument(..., help="Account or vendor name, or a contact's first/last name"),
    module: str = typer.Option("accounts", "--module", help="accounts, contacts or vendors"),
    import_pick: int = typer.Option(None, "--import",
                                    help="Import the N-th record never imported (1-based)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts: the records "
                                  "found, or with --import the run."),
):
    """Look up CRM records by name; list those never imported; --import N imports one.

    "pick" in `--json` is the number --import takes (none for a record already imported).

    Example: crmbooks search "Acme" --module accounts --import 1
    """
    from crmbooks.operations import LOOKUPS, look_up

    if module not in LOOKUPS:
        fail(f"--module must be one of {', '.join(LOOKUPS)}, not {module!r}", wrap=True)
    if import_pick is not None:
        check_before_running()
    try:
        found = look_up(runtime_or_fail(), name, module)
    except ValueError as exc:
        fail(str(exc), wrap=True)
    fresh = [f for f in found if not f.linked]
    if import_pick is not None and not 1 <= import_pick <= len(fresh):
        fail(f"--import {import_pick} is out of range: {len(fresh)} CRM {module} named "
             f"{name!r} were never imported" + (f", so give a number from 1 to {len(fresh)}"
                                                if fresh else ""), wrap=True)
    if import_pick is None and json_out:
        import json

        picks = {id(f): i for i, f in enumerate(fresh, 1)}
        print(json.dumps({"found": [{"pick": picks.get(id(f)), "name": f.name,
                                     "crm_module": f.crm_module, "crm_id": f.crm_id,
                                     "linked": f.linked} for f in found]}, indent=2))
        raise typer.Exit(0)
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
        name=name, where=module, pick=import_pick, return_state=True), json_out))
