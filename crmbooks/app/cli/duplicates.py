"""`crmbooks duplicates …`: the review queue of possible duplicates, and the decisions on it.

Under the duplicates policy `review`, a run neither creates nor links a record whose match on
the other side is exact after normalisation or likely: it queues it with its candidates and
the evidence. `duplicates` lists the queue; `pair KEY OTHER_ID` links the record with one
candidate (both then sync as a pair on the next run), `separate KEY` has the next run create
it as a record of its own (with the clone suffix where names must be unique), `skip KEY`
leaves it out of every run. Exit codes: 0 done, 2 a refusal (nothing written).
"""

from __future__ import annotations

import json

import typer

from crmbooks.app.cli.common import (
    Command,
    Group,
    console,
    fail,
    primary_store,
    print_table,
    runtime_or_fail,
)

duplicates_app = typer.Typer(help="Possible duplicates waiting for a decision: list, pair, "
                                  "separate, skip.", cls=Group, invoke_without_command=True)

MODULE_HELP = "customers, vendors or items."


@duplicates_app.callback()
def listing(
    ctx: typer.Context,
    module: str | None = typer.Option(None, "--module", help=MODULE_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
):
    """List the records waiting for a decision, with their candidates and the evidence.

    Example: crmbooks duplicates --module customers --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from crmbooks.pairing import PAIRED_MODULES

    if module is not None and module.strip().lower() not in PAIRED_MODULES:
        fail(f"unknown module {module!r}: use {', '.join(PAIRED_MODULES)}")
    entries = primary_store().reviews(module.strip().lower() if module else None)
    rows = [{"key": e.record_key, "module": e.module, "kind": e.kind, "side": e.side,
             "id": e.record_id, "name": e.name, "candidates": e.candidates or [],
             "evidence": e.evidence or [], "found_by_run": e.run_id} for e in entries]
    if json_out:
        print(json.dumps({"duplicates": rows}, indent=2))
        return
    if not rows:
        console.print("Nothing waits for review.")
        return
    from rich.table import Table

    table = Table(title=f"Possible duplicates waiting for a decision: {len(rows)}")
    for column in ("key", "module", "name", "candidates on the other side", "evidence"):
        table.add_column(column, overflow="fold")
    for r in rows:
        candidates = ", ".join(f"{c.get('id')} {c.get('name') or ''}".strip()
                               for c in r["candidates"])
        table.add_row(r["key"], r["module"], r["name"] or "", candidates,
                      "; ".join(r["evidence"]))
    print_table(table)
    console.print("Decide with `crmbooks duplicates pair KEY OTHER_ID`, `separate KEY` or "
                  "`skip KEY`.")


def _decide(key: str, decision: str, other_id: str | None, module: str | None) -> None:
    from crmbooks.pairing import PairingError, decide

    runtime = runtime_or_fail()
    try:
        text = decide(runtime, key, decision, other_id, module)
    except PairingError as exc:
        fail(f"{exc} (nothing was written)")
    console.print(f"[bold green]Done:[/] {text}.", highlight=False)


@duplicates_app.command("pair", cls=Command)
def pair(
    key: str = typer.Argument(..., metavar="KEY", help="The queued record's key."),
    other_id: str = typer.Argument(..., metavar="OTHER_ID",
                                   help="The id of the record on the other side."),
    module: str | None = typer.Option(None, "--module", help=MODULE_HELP),
):
    """Link a queued record with a record on the other side; the next run syncs them.

    Example: crmbooks duplicates pair crm/Accounts/5725767000000123001 460000000026049
    """
    _decide(key, "pair", other_id, module)


@duplicates_app.command("separate", cls=Command)
def separate(
    key: str = typer.Argument(..., metavar="KEY", help="The queued record's key."),
    module: str | None = typer.Option(None, "--module", help=MODULE_HELP),
):
    """Have the next run create a queued record as a record of its own (clone naming)."""
    _decide(key, "separate", None, module)


@duplicates_app.command("skip", cls=Command)
def skip(
    key: str = typer.Argument(..., metavar="KEY", help="The queued record's key."),
    module: str | None = typer.Option(None, "--module", help=MODULE_HELP),
):
    """Leave a queued record out of every run."""
    _decide(key, "skip", None, module)
