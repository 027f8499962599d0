"""`crmbooks demo`: the main job on the embedded emulators, with nothing else to set up."""

from __future__ import annotations

import typer

from crmbooks.app.cli.common import MODULE_ORDER, console, prepare_local_prefect, run_sync


def demo(
    seed: int = typer.Option(7, help="Seed of the emulators' sample data."),
    accounts: int = typer.Option(40, help="CRM accounts to seed."),
    json_out: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
):
    """The main job on the embedded default: emulators, connect, sync every module twice.

    The second sync runs right after the first and is incremental: it shows what a quiet
    run costs (about one request per module per side). State goes to CRMBOOKS_HOME/demo.

    Example: crmbooks demo --accounts 200
    """
    import os
    import shutil

    from crmbooks.connect import connect_demo
    from crmbooks.store.engine import crmbooks_home

    home = crmbooks_home() / "demo"
    shutil.rmtree(home, ignore_errors=True)  # the emulators start fresh, so does their state
    os.environ["CRMBOOKS_HOME"] = str(home)
    os.environ.pop("CRMBOOKS_DATABASE_URL", None)
    prepare_local_prefect()
    from emulators import EmulatorConfig, EmulatorServer, Sizes

    with EmulatorServer(EmulatorConfig(seed=seed, sizes=Sizes(accounts=accounts))) as server:
        connect_demo(server)
        if not json_out:
            console.print(f"[bold]Zoho emulators[/] at {server.base_url}; state in {home}")
        first = run_sync(list(MODULE_ORDER), False, json_out)
        if not json_out:
            console.print("[bold]Again, right away (incremental):[/]")
        second = run_sync(list(MODULE_ORDER), False, json_out)
    raise typer.Exit(max(first, second))
