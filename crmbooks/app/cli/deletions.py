"""`crmbooks deletions …`: the deletions a run's brake held, and their approval.

A run that would delete or deactivate more twins than the module's brake allows (configure
`--delete-brake`) deletes nothing and holds them. `deletions` lists what is held; `approve
RUN` approves one run's held deletions and runs the module, which applies them. Exit codes:
0 done, 2 a refusal (nothing written).
"""

from __future__ import annotations

import json

import typer

from crmbooks.app.cli.common import Command, Group, console, fail, primary_store, print_table

deletions_app = typer.Typer(help="Deletions held by the brake: list, approve.", cls=Group,
                            invoke_without_command=True)


@deletions_app.callback()
def listing(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
):
    """List the deletions held for approval, per run.

    Example: crmbooks deletions --json
    """
    if ctx.invoked_subcommand is not None:
        return
    rows = [{"run_id": h.run_id, "module": h.module, "deleted_in": h.deleted_side,
             "deleted_id": h.deleted_id, "crm_id": h.crm_id, "books_id": h.books_id,
             "action": h.action, "state": h.state, "held_at": h.held_at.isoformat()}
            for h in primary_store().held_deletions()]
    if json_out:
        print(json.dumps({"deletions": rows}, indent=2))
        return
    if not rows:
        console.print("No deletion is held.")
        return
    from rich.table import Table

    table = Table(title=f"Deletions held by the brake: {len(rows)}")
    for column in ("run", "module", "deleted in", "deleted id", "twin", "action", "state"):
        table.add_column(column, overflow="fold")
    for r in rows:
        twin = r["books_id"] if r["deleted_in"] == "crm" else r["crm_id"]
        table.add_row(r["run_id"][:8], r["module"], r["deleted_in"], r["deleted_id"], twin,
                      r["action"], r["state"])
    print_table(table)
    console.print("Approve a run's deletions with `crmbooks deletions approve RUN`.")


@deletions_app.command("approve", cls=Command)
def approve(
    run_id: str = typer.Argument(..., metavar="RUN", help="The run id (or its first 8 "
                                                          "characters) that held them."),
    json_out: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
):
    """Approve the deletions a run held, then run its module, which applies them.

    Example: crmbooks deletions approve 3f2a9c1e
    """
    from crmbooks.app.cli.common import run_sync

    run_id = run_id.strip()
    store = primary_store()
    if not run_id or not any(h.run_id.startswith(run_id)
                             for h in store.held_deletions(states=("held",))):
        fail(f"run {run_id!r} has no deletions waiting for approval (see `crmbooks "
             "deletions`); nothing was written")
    approved = store.approve_deletions(run_id)
    if not approved:
        fail(f"{run_id!r} names more than one run: give more of its id; nothing was written")
    module = approved[0].module
    if not json_out:  # --json prints the run's JSON alone
        console.print(f"[bold green]Approved[/] {len(approved)} deletion(s) of run "
                      f"{approved[0].run_id[:8]}; running {module} to apply them.",
                      highlight=False)
    raise typer.Exit(run_sync([module], dry_run=False, json_out=json_out))
