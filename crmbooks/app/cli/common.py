"""What the `crmbooks` commands share: the consoles, `fail` and the exit codes, the errors a
command reports in one sentence, the local Prefect set-up, running modules and flows with a
progress display, and the small formatters of the tables.

Exit codes: 0 all synced, 1 some records failed, 2 configuration, credentials, arguments or
prerequisites wrong (nothing was written), 3 paused, disabled, or refused because another run
of the same module is in progress.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from crmbooks.secrets import SECRETS

console = Console()
#: Errors of `sync`, `demo`, `emulators`, `up`, `linked`, `retry`, `fetch` and `search`: folded
#: at the terminal's width, with rich's highlighting.
err_console = Console(stderr=True)
#: Errors of the other commands: one line whatever its length, no highlighting.
err_console_unwrapped = Console(stderr=True, soft_wrap=True)

EXIT_OK, EXIT_FAILED_RECORDS, EXIT_CONFIG, EXIT_PAUSED = 0, 1, 2, 3

#: The record modules `crmbooks sync` runs, in dependency order.
MODULE_ORDER = ("customers", "vendors", "items")
#: The environment variable of each secret (else it lives in a Prefect Secret block).
SECRET_ENV = {name: env for name, (env, _block) in SECRETS.items()}


def fail(message: str, code: int = EXIT_CONFIG, *, wrap: bool = False) -> NoReturn:
    """Print one clear sentence on stderr ("error: …") and exit with `code`.

    `wrap=True` prints it on `err_console` (folded at the terminal's width), as the sync
    commands always have; otherwise on one line, as the settings and deals commands have.
    """
    if wrap:
        err_console.print(f"[bold red]error:[/] {message}")
    else:
        err_console_unwrapped.print(f"[bold red]error:[/] {message}", markup=True,
                                    highlight=False)
    raise typer.Exit(code)


# --------------------------------------------------------------------------- help screens
class _SwitchesAsSwitches:
    """In --help, a flag shows no value type: recent typer versions print `<bool>` beside
    every flag, as if `--dry-run` took a value."""

    def get_params(self, ctx):
        """The command's parameters, each flag with an empty type label in the help."""
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class Command(_SwitchesAsSwitches, TyperCommand):
    """A `crmbooks` command (register with `app.command(cls=Command)`)."""


class Group(_SwitchesAsSwitches, TyperGroup):
    """A `crmbooks` command group (`typer.Typer(cls=Group)`)."""


# ------------------------------------------------------------------------- errors, Prefect
def expected_errors() -> tuple[type[Exception], ...]:
    """The errors a command reports as one sentence with exit code 2 (configuration,
    credentials, prerequisites, settings, mappings), never as a traceback."""
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


def prepare_local_prefect() -> None:
    """Keep Prefect's state under CRMBOOKS_HOME and quiet, unless the user set it up."""
    from crmbooks.store.engine import crmbooks_home

    os.environ.setdefault("PREFECT_HOME", str(crmbooks_home() / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def quiet_connector_logs():
    """Hide the connectors' retry warnings while a command talks to Zoho (its error says it
    all); returns a function that restores the level."""
    logger = logging.getLogger("crmbooks")
    before = logger.level
    logger.setLevel(logging.ERROR)
    return lambda: logger.setLevel(before)


def runtime_or_fail():
    """The connected runtime (clients and store); exit 2 when not connected or a secret is
    missing."""
    from crmbooks.runtime import NotConnected, get_runtime
    from crmbooks.secrets import SecretMissing

    try:
        return get_runtime()
    except (NotConnected, SecretMissing) as exc:
        fail(str(exc))


# ------------------------------------------------------------------------- running modules
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


def run_sync(modules: list[str], dry_run: bool = False, json_out: bool = False,
             orgs: list[str] | None = None) -> int:
    """Run modules in dependency order, print the outcome, return the exit code.

    `orgs`: the Books organizations to sync, one after the other (default: the primary); an
    extra one syncs CRM → Books only, and its runs carry `org_id` in the JSON.
    """
    from crmbooks.reporting import run_to_json
    from crmbooks.runtime import open_store
    from crmbooks.sync.lifecycle import RunRefused

    prepare_local_prefect()
    wanted = list(MODULE_ORDER) if not modules or "all" in modules else modules
    unknown = [m for m in wanted if m not in MODULE_ORDER]
    if unknown:
        fail(f"unknown module {', '.join(unknown)}: use {', '.join(MODULE_ORDER)} or all",
             wrap=True)
    runs, code = [], EXIT_OK
    for org, module in [(o, m) for o in orgs or [None] for m in MODULE_ORDER if m in wanted]:
        try:
            with RunProgress(module, dry_run, quiet=json_out):
                summary = run_module(module, dry_run, org)
        except RunRefused as exc:
            fail(str(exc), EXIT_PAUSED, wrap=True)
        except expected_errors() as exc:
            fail(f"{module}: {exc}", EXIT_CONFIG, wrap=True)
        store = open_store()
        runs.append(run_to_json(store, store.run(summary["run_id"])) | (
            {"org_id": org} if org else {}))
        if summary["state"] != "completed":
            code = EXIT_FAILED_RECORDS
    if json_out:
        print(json.dumps({"runs": runs}, indent=2, default=str))
    else:
        print_runs(runs)
        if dry_run:
            for run in runs:
                print_plan(open_store(), run)
    return code


def run_flow(flow, label: str, json_out: bool, **params) -> None:
    """Run an event-driven flow (transactions, deal triggers) in this process and print its
    run like `crmbooks sync` does; exit 1 when records failed."""
    from crmbooks.reporting import run_to_json
    from crmbooks.sync.lifecycle import RecordsFailed, RunRefused

    prepare_local_prefect()
    runtime_or_fail()
    state = flow(return_state=True, **params)
    try:
        summary = state.result()
    except RecordsFailed as exc:
        summary = exc.summary
    except RunRefused as exc:
        fail(str(exc), EXIT_PAUSED)
    except expected_errors() as exc:
        fail(f"{label}: {exc}")
    if not summary or not summary.get("run_id"):
        console.print(f"{label} are off: configure them first (`crmbooks configure …`).")
        return
    store = runtime_or_fail().store
    report = run_to_json(store, store.run(summary["run_id"]))
    if json_out:
        print(json.dumps(report, indent=2, default=str))
    else:
        books, crm = report["counts"]["books"], report["counts"]["crm"]
        console.print(f"{label} {report['state']}: Books created {books['created']}, updated "
                      f"{books['updated']}, skipped {books['skipped']}, failed "
                      f"{books['failed']}", highlight=False)
        if any(crm.values()):  # transactions also write the CRM side (Books → CRM)
            console.print(f"  CRM created {crm['created']}, updated {crm['updated']}, skipped "
                          f"{crm['skipped']}, failed {crm['failed']}", highlight=False)
        for f in report["failures"]:
            console.print(f"  [red]failed[/] {f['record']}: {f['message']}", highlight=False)
    if report["state"] != "completed":
        raise typer.Exit(EXIT_FAILED_RECORDS)


class RunProgress:
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


def print_runs(runs: list[dict]) -> None:
    """Runs (JSON run objects) as the `crmbooks sync` table, then their first failures."""
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


def print_plan(store, run: dict, limit: int = 40) -> None:
    """What a dry run would create, update, skip, clone or overwrite, as a table."""
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


# ------------------------------------------------------------------------------ formatters
def normalised(module: str, settings: dict) -> dict:
    """Stored settings with every default filled in (as JSON), or as stored if no longer valid."""
    from crmbooks.settings import SettingsError, parse_module_settings

    try:
        return parse_module_settings(module, settings).model_dump(mode="json")
    except SettingsError:
        return dict(settings)


def map_key(m: dict) -> str:
    """An extra map's identity: its Books field (and, for transactions, its type)."""
    return f"{m['section']}:{m['books']}" if m.get("section") else m["books"]


def show(value: Any) -> str:
    """A setting value for the terminal (maps as BOOKS=CRM)."""
    if value is None:
        return "—"
    if isinstance(value, list):
        if value and isinstance(value[0], dict) and "books" in value[0]:
            return ", ".join(f"{map_key(m)}={m['crm']}" for m in value)
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def counts_text(counts: dict) -> str:
    """+created ~updated -deleted, skipped, conflicts, failed."""
    return (f"+{counts['created']} ~{counts['updated']} -{counts['deleted']} "
            f"skip {counts['skipped']} conf {counts['conflicts']} fail {counts['failed']}")


def when(moment) -> str | None:
    """A stored timestamp as 'YYYY-MM-DD HH:MM:SS UTC'."""
    from crmbooks.store import as_utc

    moment = as_utc(moment)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else None
