"""`crmbooks demo`: the main job on the embedded emulators, with nothing else to set up."""

from __future__ import annotations

import typer

from crmbooks.app.cli.common import (
    MODULE_ORDER,
    console,
    prepare_local_prefect,
    run_sync,
    use_prefect_server,
)

#: Books requests per minute the demo's emulators allow (real Books: 100). The clients pace
#: at the limit the emulators are started with, so the demo does not wait a minute and a
#: half for a limit the local emulator does not need; connecting to real Zoho keeps 100.
DEMO_BOOKS_LIMIT = 6000


def demo(
    seed: int = typer.Option(7, help="Seed of the emulators' sample data."),
    accounts: int = typer.Option(40, help="CRM accounts to seed."),
    json_out: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
):
    """The main job on the embedded default: emulators, connect, sync every module twice.

    The second sync runs right after the first and is incremental: it shows what a quiet
    run costs (about one request per module per side). State goes to CRMBOOKS_HOME/demo;
    the runs show in the Prefect UI of `crmbooks up`.

    Example: crmbooks demo --accounts 200
    """
    import os
    import shutil
    import time

    from crmbooks.connect import connect_demo
    from crmbooks.store.engine import crmbooks_home

    started = time.monotonic()
    base = crmbooks_home()
    home = base / "demo"
    shutil.rmtree(home, ignore_errors=True)  # the emulators start fresh, so does their state
    # Prefect's home stays the base one: its server is the one later commands and `crmbooks
    # up` use, so the demo neither starts a server of its own nor deletes one's database.
    os.environ.setdefault("PREFECT_HOME", str(base / "prefect"))
    os.environ["CRMBOOKS_HOME"] = str(home)
    os.environ.pop("CRMBOOKS_DATABASE_URL", None)
    prepare_local_prefect()
    from emulators import EmulatorConfig, EmulatorServer, Sizes

    say = (lambda *_a: None) if json_out else (
        lambda text: console.print(text, highlight=False))
    config = EmulatorConfig(seed=seed, sizes=Sizes(accounts=accounts),
                            books_rate_limit=DEMO_BOOKS_LIMIT)
    with EmulatorServer(config) as server:
        connect_demo(server)
        say(f"[bold]1. Zoho emulators[/] (CRM, Books, Accounts) at {server.base_url} with "
            f"{accounts} CRM accounts and their contacts, vendors and products; connected "
            f"as an operator would (`crmbooks connect`). Books allows {DEMO_BOOKS_LIMIT} "
            f"requests a minute here (real Books: 100), and crmbooks paces at it.")
        use_prefect_server()
        say(f"[bold]2. First sync[/] of {', '.join(MODULE_ORDER)}, CRM ↔ Books:")
        first = run_sync(list(MODULE_ORDER), False, json_out)
        if not json_out:
            tell(list(MODULE_ORDER))
        say("[bold]3. Again, right away[/] (incremental: only what changed since the "
            "first sync, about one request per module and side):")
        second = run_sync(list(MODULE_ORDER), False, json_out)
    if not json_out:
        epilogue(home, time.monotonic() - started)
    raise typer.Exit(max(first, second))


def tell(modules: list[str]) -> None:
    """The last run of each module in words: what it created and updated on each side, and
    why it skipped what it skipped."""
    from collections import Counter

    from crmbooks.reporting import run_to_json
    from crmbooks.runtime import open_store

    store = open_store()
    for module in modules:
        [run] = store.list_runs(module, limit=1) or [None]
        if run is None:
            continue
        report = run_to_json(store, run)
        books, crm = report["counts"]["books"], report["counts"]["crm"]
        line = (f"  {module}: {books['created']} created and {books['updated']} updated in "
                f"Books, {crm['created']} created and {crm['updated']} updated in the CRM")
        skipped = books["skipped"] + crm["skipped"]
        if skipped:
            events = store.events(run_id=run.id)
            rows = [] if events.empty else events[
                events["action"].isin(["skip", "skipped"])].to_dict("records")
            reasons = Counter(reason_of(row.get("message")) for row in rows)
            why = "; ".join(f"{n} × {reason}" for reason, n in reasons.most_common(3))
            line += f"; {skipped} skipped" + (f": {why}" if why else "")
        failed = books["failed"] + crm["failed"]
        if failed:
            line += f"; {failed} failed (see `crmbooks history --failures`)"
        console.print(line + ".", highlight=False)


def reason_of(message: str | None) -> str:
    """A skip's reason without the record it names (a name, an id), so equal reasons count
    together: "Books already has 1 record(s) named …; duplicates: skip keeps it"."""
    import re

    return re.sub(r"'[^']*'|\b\d{4,}\b", "…", str(message or "no reason given"))


def epilogue(home, seconds: float) -> None:
    """What the demo left out, where its state is, and the commands to try next."""
    console.print(
        f"Done in {seconds:.0f} s. Not in the demo: transactions and deal triggers are off "
        "until configured (`crmbooks configure transactions …`, `crmbooks configure deals "
        "…`), since they act on documents and deals a person chooses to sync.",
        highlight=False)
    console.print("Next:", highlight=False)
    for command, what in (
            ("crmbooks up", "the Prefect UI (these runs are in it), the schedules and the "
                            "event receiver, on the emulators until you `connect`"),
            (f"CRMBOOKS_HOME={home} crmbooks history", "these runs; `--failures`: what "
                                                      "failed and what to do"),
            ("crmbooks retry --module customers", "once a failed record is fixed at its "
                                                  "source, sync just it again")):
        console.print(f"  {command}\n      {what}", highlight=False)
