"""`crmbooks`: the operator's front door (see README and ../shared/cli.md for the surface).

Errors are one sentence saying what is wrong and what to do; `--debug` shows the traceback.
Exit codes: 0 all synced, 1 some records failed, 2 configuration/credentials/prerequisites,
3 paused or disabled.
"""

from __future__ import annotations

import dataclasses
import sys

import typer
from rich.console import Console

app = typer.Typer(
    name="crmbooks",
    help="Sync Zoho CRM and Zoho Books: exactly once, with a plan before anything is written.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

EXIT_OK, EXIT_FAILED_RECORDS, EXIT_CONFIG, EXIT_PAUSED = 0, 1, 2, 3


class CliState:
    """Options shared by every command."""

    debug: bool = False


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")):
    """crmbooks: a self-hosted sync engine between Zoho CRM and Zoho Books, on Prefect."""
    CliState.debug = debug


def fail(message: str, code: int = EXIT_CONFIG) -> None:
    """Print one clear sentence on stderr and exit with `code`."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@app.command()
def emulators(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (keep it on loopback)."),
    port: int = typer.Option(8900, help="Port to listen on; 0 picks a free one."),
    seed: int = typer.Option(7, help="Seed of the sample data (same seed, same data)."),
    accounts: int = typer.Option(40, help="CRM accounts to seed."),
    contacts_per_account: int = typer.Option(2, help="CRM contacts per account."),
    unassociated_contacts: int = typer.Option(5, help="CRM contacts without an account."),
    vendors: int = typer.Option(15, help="CRM vendors to seed."),
    products: int = typer.Option(40, help="CRM products to seed."),
    deals: int = typer.Option(20, help="CRM deals to seed."),
    books_customers: int = typer.Option(15, help="Books customers that already exist."),
    books_vendors: int = typer.Option(5, help="Books vendors that already exist."),
    books_items: int = typer.Option(10, help="Books items that already exist."),
    books_rate_limit: int = typer.Option(100, help="Books requests per minute per organization."),
    books_daily_limit: int = typer.Option(10000, help="Books requests per day per organization."),
    crm_concurrency: int = typer.Option(15, help="CRM calls in flight at once."),
    books_orgs: int = typer.Option(1, help="How many Books organizations to serve."),
    client_id: str = typer.Option("crmbooks-demo", help="OAuth client id to accept."),
    client_secret: str = typer.Option("crmbooks-demo-secret", help="OAuth client secret."),
    refresh_token: str = typer.Option("crmbooks-demo-refresh", help="OAuth refresh token."),
    faults: str = typer.Option("", help="Faults, e.g. error_rate=0.1,rate_429=0.05,drop_rate=0.02"),
):
    """Serve local Zoho CRM, Zoho Books and Zoho Accounts (OAuth) on one base URL until Ctrl-C.

    Example: crmbooks emulators --port 8900 --accounts 2000 --faults error_rate=0.05
    """
    from emulators.core import EmulatorConfig, Faults, Sizes
    from emulators.server import serve_forever

    sizes = Sizes(accounts=accounts, contacts_per_account=contacts_per_account,
                  unassociated_contacts=unassociated_contacts, vendors=vendors,
                  products=products, deals=deals, books_customers=books_customers,
                  books_vendors=books_vendors, books_items=books_items)
    try:
        fault_spec = Faults.parse_spec(faults) if faults else Faults()
    except (TypeError, ValueError) as exc:
        fail(f"--faults is not valid ({exc}); use e.g. error_rate=0.1,rate_429=0.05")
    config = EmulatorConfig(
        seed=seed, sizes=sizes, client_id=client_id, client_secret=client_secret,
        refresh_token=refresh_token, books_rate_limit=books_rate_limit,
        books_daily_limit=books_daily_limit, crm_concurrency=crm_concurrency,
        books_org_ids=[str(20099001 + i) for i in range(max(1, books_orgs))],
    )

    def ready(server) -> None:
        server.emu.set_faults(fault_spec)
        console.print(f"[bold green]Zoho emulators[/] listening on [bold]{server.base_url}[/]")
        console.print(f"  accounts (OAuth): {server.base_url}/oauth/v2/token")
        console.print(f"  CRM:   {server.base_url}/crm/v8    Books: {server.base_url}/books/v3")
        console.print(f"  Books organization id: {', '.join(config.books_org_ids)}")
        console.print(f"  client id: {client_id}  client secret: {client_secret}  "
                      f"refresh token: {refresh_token}")
        console.print(f"  sample data: seed {seed}, {dataclasses.asdict(sizes)}")
        if faults:
            console.print(f"  faults: {dataclasses.asdict(fault_spec)}")
        console.print("Press Ctrl-C to stop.")

    try:
        serve_forever(config, host, port, on_ready=ready)
    except RuntimeError as exc:
        fail(f"{exc}; is port {port} already in use? Try --port 0.")


MODULE_ORDER = ("customers", "vendors", "items")


def _prepare_local_prefect() -> None:
    """Keep Prefect's state under CRMBOOKS_HOME and quiet, unless the user set it up."""
    import os

    from crmbooks.store.engine import crmbooks_home

    os.environ.setdefault("PREFECT_HOME", str(crmbooks_home() / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _flow_of(module: str):
    import importlib

    return getattr(importlib.import_module(f"flows.{module}"), f"sync_{module}")


def run_module(module: str, dry_run: bool, org_id: str | None = None) -> dict:
    """Run one module's flow in this process; returns its run summary (or raises its error).

    A run whose records partly failed ends in a Failed state that carries the summary; any
    other failure re-raises the original exception (a configuration error, a refusal …).
    """
    from crmbooks.sync.lifecycle import RecordsFailed

    state = _flow_of(module)(dry_run=dry_run, org_id=org_id, return_state=True)
    try:
        return state.result()
    except RecordsFailed as exc:
        return exc.summary


def _expected_errors() -> tuple[type[Exception], ...]:
    from crmbooks.connect import PrerequisiteError
    from crmbooks.connectors.errors import AuthError, FatalError
    from crmbooks.metadata import ViewNotFound
    from crmbooks.runtime import NotConnected
    from crmbooks.secrets import SecretMissing
    from crmbooks.settings import SettingsError
    from crmbooks.sync.check import MappingCheckError
    from mappings.schema import MappingError

    return (PrerequisiteError, AuthError, FatalError, ViewNotFound, NotConnected, SecretMissing,
            SettingsError, MappingCheckError, MappingError)


def run_sync(modules: list[str], dry_run: bool = False, json_out: bool = False,
             orgs: list[str] | None = None) -> int:
    """Run modules in dependency order, print the outcome, return the exit code (cli.md).

    `orgs`: the Books organizations to sync, one after the other (default: the primary); an
    extra one syncs CRM → Books only (F4), and its runs carry `org_id` in the JSON.
    """
    import json

    from crmbooks.reporting import run_to_json
    from crmbooks.runtime import open_store
    from crmbooks.sync.lifecycle import RunRefused

    _prepare_local_prefect()
    wanted = list(MODULE_ORDER) if not modules or "all" in modules else modules
    unknown = [m for m in wanted if m not in MODULE_ORDER]
    if unknown:
        fail(f"unknown module {', '.join(unknown)}: use {', '.join(MODULE_ORDER)} or all")
    runs, code = [], EXIT_OK
    for org, module in [(o, m) for o in orgs or [None] for m in MODULE_ORDER if m in wanted]:
        try:
            with _progress(module, dry_run, quiet=json_out):
                summary = run_module(module, dry_run, org)
        except RunRefused as exc:
            fail(str(exc), EXIT_PAUSED)
        except _expected_errors() as exc:
            fail(f"{module}: {exc}", EXIT_CONFIG)
        store = open_store()
        runs.append(run_to_json(store, store.run(summary["run_id"])) | (
            {"org_id": org} if org else {}))
        if summary["state"] != "completed":
            code = EXIT_FAILED_RECORDS
    if json_out:
        print(json.dumps({"runs": runs}, indent=2, default=str))
    else:
        _print_runs(runs)
        if dry_run:
            for run in runs:
                _print_plan(open_store(), run)
    return code


class _progress:
    """A rich progress bar fed by the pipeline's push progress (nothing with --json)."""

    def __init__(self, module: str, dry_run: bool, quiet: bool):
        self.module, self.quiet = module, quiet
        self.label = f"{module}{' (plan only)' if dry_run else ''}"

    def __enter__(self):
        if self.quiet:
            return self
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from tasks import progress

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), console=console, transient=True)
        self.task = self.bar.add_task(f"{self.label}: fetching and planning", total=None)
        self.bar.start()
        self._listener = self._advance
        progress.listeners.append(self._listener)
        return self

    def _advance(self, module: str, done: int, total: int) -> None:
        self.bar.update(self.task, description=f"{self.label}: pushing", completed=done,
                        total=total)

    def __exit__(self, *exc):
        if not self.quiet:
            from tasks import progress

            progress.listeners.remove(self._listener)
            self.bar.stop()
        return False


def _print_runs(runs: list[dict]) -> None:
    from rich.table import Table

    table = Table(title="crmbooks sync")
    for column in ("module", "state", "side", "created", "updated", "skipped", "conflicts",
                   "failed", "API calls"):
        table.add_column(column)
    for run in runs:
        for side in ("books", "crm"):
            c = run["counts"][side]
            table.add_row(run["module"] + (f" ({run['org_id']})" if run.get("org_id") else "")
                          + (" (dry run)" if run.get("dry_run") else ""),
                          run["state"], side, *(str(c[k]) for k in
                                                ("created", "updated", "skipped", "conflicts",
                                                 "failed")),
                          str(run["api_calls"].get(side, 0)))
    console.print(table)
    for run in runs:
        for f in run.get("failures", [])[:20]:
            console.print(f"[red]✗[/] {run['module']} {f['side']} {f['record']}: "
                          f"{f['message']}")


def _print_plan(store, run: dict, limit: int = 40) -> None:
    """B1 in the terminal: what a dry run would create, update, skip, clone or overwrite."""
    from rich.table import Table

    events = store.events(run_id=run["run_id"])
    if events.empty:
        console.print(f"{run['module']}: nothing to do")
        return
    table = Table(title=f"{run['module']}: the plan ({len(events)} change(s))")
    for column in ("record", "name", "would be", "on", "why"):
        table.add_column(column, overflow="fold")
    for e in events.head(limit).to_dict("records"):
        why = e.get("message") or ""
        if e.get("conflicts"):
            why += " conflicts: " + ", ".join(
                f"{c['field']} (crm {c.get('crm')!r} / books {c.get('books')!r} → "
                f"{c.get('winner')})" for c in e["conflicts"])
        table.add_row(e["record_key"], str(e.get("name") or ""), e["action"], e["side"], why)
    console.print(table)
    if len(events) > limit:
        console.print(f"… and {len(events) - limit} more: `crmbooks history --run "
                      f"{run['run_id'][:8]}`")


@app.command()
def sync(
    modules: list[str] = typer.Argument(None, help="customers, vendors, items, or all"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan only: write nothing (B1)."),
    json_out: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
    org: str = typer.Option(None, "--org", help="Sync this Books organization (F4: an extra "
                            "one syncs CRM → Books only)."),
    all_orgs: bool = typer.Option(False, "--all-orgs",
                                  help="Sync the primary, then each extra organization."),
):
    """Sync now, in dependency order (customers, vendors, items).

    Example: crmbooks sync customers --dry-run

    Example: crmbooks sync --all-orgs
    """
    raise typer.Exit(run_sync(modules or ["all"], dry_run, json_out, _orgs(org, all_orgs)))


def _orgs(org: str | None, all_orgs: bool) -> list[str] | None:
    """The organizations `sync` runs: one (--org), all connected ones, or the primary."""
    if org and all_orgs:
        fail("give --org or --all-orgs, not both")
    if not all_orgs:
        return [org.strip()] if org else None
    from crmbooks.runtime import open_store

    row = open_store().connection()
    if row is None or not row.books_org_id:
        fail("crmbooks is not connected yet: run `crmbooks connect` first")
    return [row.books_org_id, *[str(o) for o in row.extra_books_org_ids or []]]


@app.command()
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
    _prepare_local_prefect()
    from emulators.core import EmulatorConfig, Sizes
    from emulators.server import EmulatorServer

    with EmulatorServer(EmulatorConfig(seed=seed, sizes=Sizes(accounts=accounts))) as server:
        connect_demo(server)
        if not json_out:
            console.print(f"[bold]Zoho emulators[/] at {server.base_url}; state in {home}")
        first = run_sync(list(MODULE_ORDER), False, json_out)
        if not json_out:
            console.print("[bold]Again, right away (incremental):[/]")
        second = run_sync(list(MODULE_ORDER), False, json_out)
    raise typer.Exit(max(first, second))


@app.command()
def up(
    host: str = typer.Option("127.0.0.1", help="Address of the Prefect server and UI."),
    port: int = typer.Option(4200, help="Port of the Prefect server (reused if one answers)."),
    emulators: bool = typer.Option(
        None, "--emulators/--no-emulators",
        help="Run the Zoho emulators in-process (default: only when nothing is connected)."),
    emulators_port: int = typer.Option(8900, help="Port of the emulators; 0 picks a free one."),
    seed: int = typer.Option(7, help="Seed of the emulators' sample data."),
    accounts: int = typer.Option(40, help="CRM accounts the emulators seed."),
    retention_days: int = typer.Option(30, help="Days Prefect keeps finished flow runs."),
    keep_schedules: bool = typer.Option(
        False, "--keep-schedules",
        help="Leave the schedules active on exit (under a supervisor that restarts `up`)."),
):
    """One machine: Prefect server, emulators unless connected, every deployment served.

    Prints the Prefect UI address; Ctrl-C (or SIGTERM) stops everything it started and pauses
    the schedules until the next `up` (see README "Running it for real").

    Example: crmbooks up --port 4200
    """
    from crmbooks.app.receiver.server import event_receiver
    from deployments.up import UpError
    from deployments.up import up as run_up

    try:
        code = run_up(host=host, port=port, emulators=emulators, emulators_port=emulators_port,
                      seed=seed, accounts=accounts, retention_days=retention_days,
                      pause_on_shutdown=not keep_schedules, console=console,
                      services=[event_receiver])
    except UpError as exc:
        fail(str(exc), EXIT_CONFIG)
    raise typer.Exit(code)


from crmbooks.cli_admin import register as register_admin  # noqa: E402  (needs `app`)

register_admin(app)

from crmbooks.cli_deals import register as register_deals  # noqa: E402  (needs `app`)

register_deals(app)

from crmbooks.cli_records import register as register_records  # noqa: E402

register_records(app)

from crmbooks.cli_linked import register as register_linked  # noqa: E402

register_linked(app)


def run() -> None:
    """Console entry point with the one-sentence error policy."""
    try:
        app()
    except Exception as exc:  # the last line of defence: no traceback unless --debug
        if CliState.debug or "--debug" in sys.argv:
            raise
        err_console.print(f"[bold red]error:[/] {exc}")
        sys.exit(EXIT_CONFIG)


if __name__ == "__main__":
    run()
