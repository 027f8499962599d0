"""`crmbooks undo RUN [--dry-run]`: put back what a run changed and remove what it created.

The plan is printed first: each record, what the undo does to it, or why it refuses (changed
or deleted since the run). Without `--dry-run` it is then done, as a run of its own in
`crmbooks history`, which can be undone in turn.
"""

from __future__ import annotations

import json

import typer
from rich.table import Table

from crmbooks.app.cli.common import console, fail, print_table, runtime_or_fail, show

#: Exit code when some parts were refused and the rest done (as a run with failed records).
EXIT_PARTLY = 1
#: Exit code while crmbooks is paused or disabled (as a run refused to start).
EXIT_STOPPED = 3


def undo(
    run_id: str = typer.Argument(..., metavar="RUN", help="The run to undo: its id or the "
                                 "first characters of it (`crmbooks history` lists them)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and write nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON: {\"run\", \"parts\", "
                                  "\"undo_run\"}."),
):
    """Undo a run: put back the values it replaced and delete the records it created.

    Only what is unchanged since the run is undone; every other part is refused with its
    reason. The undo is a run of its own in history, which can be undone in turn.

    Example: crmbooks undo 3f2a9c1e --dry-run
    """
    from crmbooks.undo import UndoError, apply_undo, plan_undo

    runtime = runtime_or_fail()
    try:
        plan = plan_undo(runtime, run_id)
    except UndoError as exc:
        fail(f"{exc} (nothing was written)")
    if not plan.doable:
        reasons = "; ".join(sorted({p.reason for p in plan.refused}))
        fail(f"nothing of run {plan.run.id[:8]} can be undone: {reasons} (nothing was "
             "written)")
    parts = [p.as_dict() for p in plan.parts]
    if not json_out:
        _print_plan(plan, dry_run)
    if dry_run:
        if json_out:
            typer.echo(json.dumps({"run": plan.run.id, "parts": parts, "undo_run": None},
                                  indent=2, default=str))
        return
    connection = runtime.store.connection()
    if connection is not None and (connection.paused or connection.disabled):
        # An undo writes like a run: it waits, as runs do, for `crmbooks resume` / `enable`.
        fail("syncing is paused or disabled: run `crmbooks resume` (or `enable`), then undo "
             "(nothing was written)", EXIT_STOPPED)
    try:
        undo_id, outcomes = apply_undo(runtime, plan)
    except UndoError as exc:
        fail(f"{exc} (nothing was written)")
    failed = [o for o in outcomes if not o["ok"]]
    if json_out:
        typer.echo(json.dumps({"run": plan.run.id, "parts": parts, "undo_run": undo_id,
                               "failed": [{"record": o["record_key"], "side": o["side"],
                                           "message": o.get("message")} for o in failed]},
                              indent=2, default=str))
    else:
        for o in failed:
            console.print(f"[red]failed[/] {o['record_key']} ({o['side']}): {o['message']}",
                          highlight=False)
        console.print(f"Done: {len(outcomes) - len(failed)} part(s) undone, "
                      f"{len(plan.refused)} refused, {len(failed)} failed (history run "
                      f"{undo_id[:8]}; `crmbooks undo {undo_id[:8]}` undoes this undo).",
                      highlight=False)
    if failed or plan.refused:
        raise typer.Exit(EXIT_PARTLY)


def _print_plan(plan, dry_run: bool) -> None:
    """The plan: one line per record and side, what the undo does or why it refuses."""
    table = Table("record", "side", "undo", "fields (now → back to)", "why",
                  title=f"undo of run {plan.run.id} ({plan.run.module})"
                  + (" — dry run, nothing written" if dry_run else ""))
    for part in plan.parts:
        label = f"{part.name} ({part.record_key})" if part.name else part.record_key
        fields = "\n".join(f"{c['field']}: {show(c['before'])} → {show(c['after'])}"
                           for c in part.changes) or "—"
        table.add_row(label, part.side, part.action, fields, part.reason)
    print_table(table)
