"""`crmbooks history`: runs newest first, one run's record changes, or unresolved failures."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from crmbooks.app.cli.common import console, counts_text, fail, print_table, show, when
from crmbooks.settings import MODULES


def history(
    module: str | None = typer.Option(None, "--module", help="Only this module's runs."),
    run_id: str | None = typer.Option(None, "--run", help="One run (id or its first characters, or "
                                      "its Prefect flow-run id): every record it changed and its "
                                      "failures."),
    failures: bool = typer.Option(False, "--failures", help="Unresolved failures, with hints."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many runs."),
    org: str | None = typer.Option(None, "--org", help="Only this Books organization's "
                                   "failures and runs (default: every organization's)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON: {\"runs\": [...]}."),
):
    """Sync history: runs newest first, one run's record changes, or failures.

    Example: crmbooks history --module customers --limit 5

    Example: crmbooks history --run 3f2a9c1e    |    crmbooks history --failures --org 20099002
    """
    from crmbooks.reporting import failure_rows, run_to_json
    from crmbooks.runtime import open_store

    if module is not None and module not in MODULES:
        fail(f"unknown module {module!r}: use one of {', '.join(MODULES)}")
    store = open_store()
    org = org.strip() if org else None
    if org:
        store = _org_store(store, org)
    if failures:
        rows = failure_rows(store.failures(module=module, unresolved_only=True))
        if json_out:
            typer.echo(json.dumps({"failures": rows}, indent=2))
            return
        _print_failures(rows, "unresolved failures")
        return
    if run_id:
        run = _find_run(store, run_id)
        report = run_to_json(store, run)
        events = _event_rows(store, run.id)
        if json_out:
            typer.echo(json.dumps({"runs": [report], "events": events}, indent=2, default=str))
            return
        _print_run(run, report, events)
        _print_failures(failure_rows(store.failures(run_id=run.id, unresolved_only=False)),
                        "failures of this run")
        return
    runs = store.list_runs(module=module, limit=limit, org_id=org)
    if json_out:
        typer.echo(json.dumps({"runs": [run_to_json(store, r) for r in runs]}, indent=2))
        return
    if not runs:
        console.print("No runs yet: `crmbooks sync all --dry-run` previews the first one.")
        return
    table = Table("started", "module", "run", "state", "Books", "CRM", "API calls",
                  title="sync history (newest first)")
    for run in runs:
        report = run_to_json(store, run)
        state = report["state"] + (" (dry run)" if report["dry_run"] else "")
        table.add_row(when(run.started_at), run.module, run.id, state,
                      counts_text(report["counts"]["books"]),
                      counts_text(report["counts"]["crm"]),
                      f"CRM {report['api_calls']['crm']}, Books {report['api_calls']['books']}")
    print_table(table)
    console.print("Details of one run: `crmbooks history --run RUN`.", highlight=False)


def _org_store(store, org: str):
    """The store's view of one connected Books organization; exit 2 for one never connected."""
    from crmbooks.operations import connected_orgs
    from crmbooks.store import Store

    connected = connected_orgs(store)
    if org not in connected:
        fail(f"Books organization {org} is not connected: use one of "
             f"{', '.join(connected) or 'none (run `crmbooks connect` first)'}", wrap=True)
    return Store(store.engine, org_id=org)


def _find_run(store, run_id: str):
    """A run by its id, a unique prefix of it, or the id of its Prefect flow run (the one the
    Prefect UI shows); exit 2 when none or several match."""
    from sqlmodel import select

    from crmbooks.store.tables import Run

    run = store.run(run_id.strip())
    if run is not None:
        return run
    found = store.runs_of_flow_run(run_id)
    if len(found) > 1:  # a retry of several modules is one flow run, a crmbooks run each
        fail(f"Prefect flow run {run_id} holds {len(found)} crmbooks runs ("
             + ", ".join(f"{r.module} {r.id}" for r in found) + "): give one of them")
    if not found:
        with store.session() as s:
            found = list(s.exec(select(Run).where(Run.id.startswith(run_id.strip()))
                                .limit(2)).all())
    if len(found) == 1:
        return found[0]
    if found:
        fail(f"--run {run_id!r} matches several runs: give more characters of the id")
    fail(f"no run {run_id!r}: `crmbooks history` lists the run ids")


def _event_rows(store, run_id: str) -> list[dict]:
    """A run's record events (what it changed in each record) as plain dicts."""
    from crmbooks.reporting import text_or_none

    frame = store.events(run_id=run_id)
    rows = []
    for event in frame.to_dict("records"):
        rows.append({
            "record": event["record_key"], "name": text_or_none(event["name"]),
            "side": event["side"], "action": event["action"],
            "crm_id": text_or_none(event["crm_id"]), "books_id": text_or_none(event["books_id"]),
            "changes": event["changes"] if isinstance(event["changes"], list) else [],
            "conflicts": event["conflicts"] if isinstance(event["conflicts"], list) else [],
            "message": text_or_none(event["message"]),
            "confirmed": True,
        })
    return rows + _journal_rows(store, run_id)


#: What history says of a journaled write its run's report never recorded.
JOURNAL_WORDS = {"sent": "unconfirmed: the run ended before it saw the answer; the next run "
                         "of the module confirms it",
                 "confirmed": "confirmed", "superseded": "not applied"}


def _journal_rows(store, run_id: str) -> list[dict]:
    """The run's journaled writes its report never recorded (a run killed after sending
    them), each marked unconfirmed until a later run confirms it."""
    from crmbooks.sync.outcomes import EVENT_OF

    rows = []
    for write in store.writes(run_id):
        if write["state"] in ("done", "failed"):
            continue  # its report recorded it as a record event
        words = JOURNAL_WORDS.get(write["state"], write["state"])
        note = f"{words} ({write['note']})" if write["note"] else words
        rows.append({"record": write["record_key"], "name": write["name"],
                     "side": write["side"], "action": EVENT_OF.get(write["action"], "updated"),
                     "crm_id": write["crm_id"], "books_id": write["books_id"],
                     "changes": write["changes"] or [], "conflicts": [], "message": note,
                     "confirmed": write["state"] == "confirmed"})
    return rows


def _print_run(run, report: dict, events: list[dict]) -> None:
    """One run: header, counts and each record's changed fields (from → to)."""
    state = report["state"] + (" (dry run)" if report["dry_run"] else "")
    console.print(f"Run {run.id} of {run.module}: {state}", highlight=False)
    console.print(f"Started {when(run.started_at)}, finished {when(run.finished_at) or '—'}, "
                  f"settings version {run.settings_version or '—'}", highlight=False)
    if run.message:
        console.print(run.message, highlight=False, markup=False)
    console.print(f"Books {counts_text(report['counts']['books'])}; CRM "
                  f"{counts_text(report['counts']['crm'])}; API calls CRM "
                  f"{report['api_calls']['crm']}, Books {report['api_calls']['books']}",
                  highlight=False)
    if not events:
        console.print("No record changes recorded for this run.")
        return
    table = Table("record", "side", "action", "fields (from → to)", title="record changes")
    for event in events:
        changes = [f"{c.get('field')}: {show(c.get('before'))} → {show(c.get('after'))}"
                   for c in event["changes"]]
        changes += [f"conflict {c.get('field')}: CRM {show(c.get('crm'))} / Books "
                    f"{show(c.get('books'))}, kept {c.get('winner')}" for c in event["conflicts"]]
        if event["message"]:
            changes.append(str(event["message"]))
        label = event["name"] or event["record"]
        if event["name"]:
            label = f"{event['name']} ({event['record']})"
        action = event["action"] if event["confirmed"] else f"{event['action']} (unconfirmed)"
        table.add_row(label, event["side"], action, "\n".join(changes) or "—")
    print_table(table)


def _print_failures(rows: list[dict], title: str) -> None:
    """Failures with the field, the provider's code and message, and what to do."""
    if not rows:
        console.print(f"No {title}.")
        return
    table = Table("record", "org", "module", "side", "field", "code", "message", "what to do",
                  title=title)
    for row in rows:
        table.add_row(row["record"] or "—", row["org"] or "—", row["module"] or "—",
                      row["side"] or "—",
                      row["field"] or "—", row["code"] or "—", row["message"],
                      row["hint"] or "—")
    print_table(table)
