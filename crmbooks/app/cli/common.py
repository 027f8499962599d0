"""What the `crmbooks` commands share: the consoles, `fail` and the exit codes, the errors a
command reports in one sentence, the local Prefect set-up, running modules and flows with a
progress display, and the small formatters of the tables.

Exit codes: 0 all synced, 1 some records failed, 2 configuration, credentials, arguments or
prerequisites wrong (nothing was written), 3 paused, disabled, or refused because another run
of the same module is in progress, 4 the provider or the network failed (a storm of 429s, an
outage, a refused connection, a timeout) after the connectors' own retries: try again later.

No command shows a traceback for these outcomes: `Group.invoke` turns any error a command
lets through into one sentence and its exit code (`--debug` shows the traceback), and
`quiet_prefect_console` keeps Prefect's run logs (which carry tracebacks) off the terminal;
they still reach the Prefect API and its UI.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from crmbooks.secrets import SECRETS
from crmbooks.sync.registry import MODULE_ORDER as REGISTRY_ORDER

console = Console()
#: Errors of `sync`, `demo`, `emulators`, `up`, `linked`, `retry`, `fetch` and `search`: folded
#: at the terminal's width, with rich's highlighting.
err_console = Console(stderr=True)
#: Errors of the other commands: one line whatever its length, no highlighting.
err_console_unwrapped = Console(stderr=True, soft_wrap=True)

EXIT_OK, EXIT_FAILED_RECORDS, EXIT_CONFIG, EXIT_PAUSED, EXIT_PROVIDER = 0, 1, 2, 3, 4



class CliState:
    """Options shared by every command (set by the root callback)."""

    debug: bool = False


def debugging() -> bool:
    """True when `--debug` asked for tracebacks."""
    return CliState.debug or "--debug" in sys.argv


#: The modules `crmbooks sync` runs, in dependency order: customers, vendors, items,
#: transactions, deals (the deal triggers).
MODULE_ORDER = REGISTRY_ORDER
#: The environment variable of each secret (else it lives in a Prefect Secret block).
SECRET_ENV = {name: env for name, (env, _block) in SECRETS.items()}


def fail(message: str, code: int = EXIT_CONFIG, *, wrap: bool = False) -> NoReturn:
    """Print one clear sentence on stderr ("error: …") and exit with `code`.

    `wrap=True` prints it on `err_console` (folded at the terminal's width), as the sync
    commands always have; otherwise on one line, as the settings and deals commands have.
    """
    message = " ".join(str(message).split())  # one sentence on one line, whatever it quotes
    if wrap:
        err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
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
    """A `crmbooks` command group (`typer.Typer(cls=Group)`).

    The last line of defence of the one-sentence policy: an error a command lets through is
    printed as one sentence with its exit code (`explain`), never as a traceback, unless
    `--debug` asks for it.
    """

    def invoke(self, ctx):
        """Run the command; an error it lets through becomes one sentence and an exit code."""
        import click

        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.ClickException,
                click.Abort):
            raise
        except Exception as exc:
            if debugging():
                raise
            code, message = explain(exc)
            fail(message, code, wrap=True)


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


def provider_errors() -> tuple[type[Exception], ...]:
    """The errors that mean Zoho or the network failed after the connectors' own retries (a
    storm of 429s, 5xx, a refused connection, a timeout): exit code 4, try again later."""
    import httpx

    from crmbooks.connectors.errors import RetriableError

    return (RetriableError, httpx.TransportError)


def explain(exc: Exception) -> tuple[int, str]:
    """(exit code, one sentence) for an error a command did not handle itself."""
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from crmbooks.connect import ConnectError
    from crmbooks.store import RunLockHeld
    from crmbooks.store.engine import unavailable
    from crmbooks.store.errors import DatabaseTooNew, DatabaseUnavailable
    from crmbooks.sync.lifecycle import RunRefused

    if isinstance(exc, (ArgumentError, DBAPIError)):  # the state database, not Zoho
        exc = unavailable(exc)
    if isinstance(exc, provider_errors()) or getattr(exc, "retriable", False):
        return EXIT_PROVIDER, provider_sentence(exc)
    if isinstance(exc, (RunRefused, RunLockHeld)):
        return EXIT_PAUSED, str(exc)
    if isinstance(exc, (*expected_errors(), DatabaseUnavailable, DatabaseTooNew,
                        ConnectError)):
        return EXIT_CONFIG, str(exc)
    return EXIT_CONFIG, (f"{exc or type(exc).__name__} (an unexpected {type(exc).__name__}; "
                         "`crmbooks --debug …` shows where it came from)")


def provider_sentence(exc: Exception) -> str:
    """What a provider or network failure means for the operator, in one sentence."""
    import httpx

    said = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TransportError):
        said = f"the network failed ({type(exc).__name__}: {said})"
    return (f"Zoho or the network did not answer normally: {said}; nothing is lost: try "
            "again in a few minutes (the same command)")


class _TerminalLogFilter(logging.Filter):
    """On the terminal's log handler while a command runs flows: Prefect's flow and task run
    logs and crmbooks' own (the connectors' retries) stay off, since the command prints the
    outcome itself (the run logs still reach the Prefect API and its UI); nothing below
    WARNING shows, and no record brings a traceback."""

    RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.engine",
                   "prefect.flow_engine", "prefect.task_engine", "crmbooks")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name.startswith(self.RUN_LOGGERS):
            return False
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def quiet_prefect_console() -> None:
    """Keep the terminal to the command's own output: Prefect's console handler shows
    WARNING and above, without run logs or tracebacks (`--debug` leaves it as it is)."""
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    ensure_logging_setup()  # Prefect's handlers exist from here on (later set-ups keep them)
    if debugging():
        return

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
                isinstance(f, _TerminalLogFilter) for f in handler.filters):
            handler.setLevel(logging.WARNING)
            handler.addFilter(_TerminalLogFilter())


def prepare_local_prefect() -> None:
    """Keep Prefect's state under CRMBOOKS_HOME and quiet, unless the user set it up."""
    from pathlib import Path

    from crmbooks.store.engine import crmbooks_home

    os.environ.setdefault("PREFECT_HOME", str(crmbooks_home() / "prefect"))
    # Made here: Prefect makes only the last folder of the path, and warns when it cannot.
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    quiet_prefect_console()


_PREFECT_SETTINGS: list = []  # the settings that point this process at its Prefect server


def use_prefect_server() -> str:
    """Point this process at a Prefect server that is already running, before a flow runs;
    returns its API address.

    The configured one (`PREFECT_API_URL`), else `crmbooks up`'s or the background server
    crmbooks started for its Prefect home, else that background server is started now (once:
    later commands reuse it). Never Prefect's ephemeral server, which a command would start
    and wait for on every call. A server that cannot start is one sentence and exit 2.
    """
    from pathlib import Path

    from deployments.prefect_server import ServerError, api_url

    prepare_local_prefect()
    try:
        url, how = api_url(Path(os.environ["PREFECT_HOME"]))
    except ServerError as exc:
        fail(str(exc), EXIT_CONFIG, wrap=True)
    if how != "configured":
        os.environ["PREFECT_API_URL"] = url
        # Prefect read its settings when it was imported: this process needs the address now.
        # No flow heartbeats either: the engine joins their thread as a flow ends, which cost
        # up to a second per run, and a command's runs are watched by the command itself (a
        # killed one's run lock is taken over by the next run).
        from prefect.context import SettingsContext
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
            temporary_settings,
        )

        if SettingsContext.get().settings.api.url != url:
            # Kept for the process's life: a collected context manager would reset it.
            _PREFECT_SETTINGS.append(temporary_settings(updates={
                PREFECT_API_URL: url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))
            _PREFECT_SETTINGS[-1].__enter__()  # noqa: PLC2801
    if how == "started":  # on stderr: `--json` output stays clean
        err_console.print(f"Started a local Prefect server for {os.environ['PREFECT_HOME']} "
                          f"at {url.removesuffix('/api')} (kept running for later commands)",
                          highlight=False)
    return url


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

    prepare_local_prefect()  # a secret kept as a Prefect Secret block is read from there
    try:
        return get_runtime()
    except (NotConnected, SecretMissing) as exc:
        fail(str(exc))


def primary_store():
    """The store scoped to the connected primary Books organization (exit 2 when crmbooks is
    not connected yet)."""
    from crmbooks.runtime import open_store
    from crmbooks.store import Store

    base = open_store()
    row = base.connection()
    if row is None or not row.books_org_id:
        fail("crmbooks is not connected yet: run `crmbooks connect` first")
    return Store(base.engine, org_id=row.books_org_id)


def check_before_running(orgs: list[str] | None = None) -> None:
    """Refuse what a run would refuse, from the state store and before any Prefect server
    starts: not connected or a Books organization never connected (exit 2), paused or
    disabled (exit 3). The run checks again when it starts."""
    from crmbooks.runtime import open_store

    row = open_store().connection()
    if row is None or not row.books_org_id:
        fail("crmbooks is not connected yet: run `crmbooks connect` first", wrap=True)
    connected = [str(row.books_org_id), *(str(o) for o in row.extra_books_org_ids or [])]
    for org in orgs or []:
        if org and org not in connected:
            fail(f"Books organization {org} is not connected (connected: "
                 f"{', '.join(connected)}): add it with `crmbooks connect ... "
                 f"--extra-books-org {org}`", wrap=True)
    if row.disabled:
        fail("the integration is disabled: run `crmbooks enable` to sync again", EXIT_PAUSED,
             wrap=True)
    if row.paused:
        fail("syncing is paused: run `crmbooks resume` to sync again", EXIT_PAUSED, wrap=True)


# ------------------------------------------------------------------------- running modules
def _flow_of(module: str):
    from flows.operations import module_flow

    return module_flow(module)


def run_module(module: str, dry_run: bool, org_id: str | None = None,
               full: bool = False) -> dict:
    """Run one module's flow in this process; returns its run summary (or raises its error).
    `full` (record modules): read every record, not only the changed ones.

    A run whose records partly failed ends in a Failed state that carries the summary; any
    other failure re-raises the original exception (a configuration error, a refusal …). A
    module turned off returns `{"state": "off", "run_id": None, "reason": …}`.
    """
    from crmbooks.sync.lifecycle import RecordsFailed

    use_prefect_server()
    state = _flow_of(module)(dry_run=dry_run, org_id=org_id, return_state=True,
                             **({"full": True} if full else {}))
    try:
        summary = state.result()
    except RecordsFailed as exc:
        return exc.summary
    if summary.get("state") == "off":  # the module's off message says what turns it on
        return {**summary, "reason": state.message}
    return summary


def run_sync(modules: list[str], dry_run: bool = False, json_out: bool = False,
             orgs: list[str] | None = None, into: list[dict] | None = None,
             full: bool = False) -> int:
    """Run modules in dependency order, print the outcome, return the exit code.

    `orgs`: the Books organizations to sync, one after the other (default: the primary); an
    extra one syncs CRM → Books only, and its runs carry `org_id` in the JSON. `into`, when
    given, receives the run objects printed (the demo tells them in words).
    """
    from crmbooks.reporting import run_to_json, skipped_to_json
    from crmbooks.runtime import open_store
    from crmbooks.sync.lifecycle import RunRefused
    from crmbooks.sync.registry import modules_to_sync

    try:
        wanted = modules_to_sync(modules)
    except ValueError as exc:
        fail(str(exc), wrap=True)
    check_before_running(orgs)
    prepare_local_prefect()
    runs, code = [], EXIT_OK
    for org, module in [(o, m) for o in orgs or [None] for m in wanted]:
        reason = off_reason(module, org)
        try:
            if reason:  # no flow run for a module that would do nothing
                summary = {"state": "off", "run_id": None, "reason": reason}
            else:
                with RunProgress(module, dry_run, quiet=json_out):
                    summary = run_module(module, dry_run, org, full)
        except RunRefused as exc:
            fail(str(exc), EXIT_PAUSED, wrap=True)
        except expected_errors() as exc:
            fail(f"{module}: {exc}", EXIT_CONFIG, wrap=True)
        if summary.get("state") == "off":  # turned off: said with its reason, no failure
            runs.append(skipped_to_json(module, summary.get("reason") or "turned off",
                                        dry_run) | ({"org_id": org} if org else {}))
            continue
        store = open_store()
        row = store.run(summary["run_id"])
        runs.append(run_to_json(store, row) | ({"org_id": org} if org else {})
                    | _held(row.message))
        if summary["state"] != "completed":
            code = EXIT_FAILED_RECORDS
    if into is not None:
        into.extend(runs)
    if json_out:
        print(json.dumps({"runs": runs}, indent=2, default=str))
    else:
        print_runs(runs)
        if dry_run:
            for run in runs:
                if run["run_id"]:
                    print_plan(open_store(), run)
    return code


def off_reason(module: str, org: str | None = None) -> str | None:
    """Why `module` is turned off in the active settings of this Books organization (the
    primary when None), as its run would say it, or None when it would run.

    Read from the state store, so that `sync` starts no flow run (nor a Prefect server) for a
    module that would do nothing; the run checks again when it starts.
    """
    from crmbooks.runtime import open_store
    from tasks.run import off_reason as module_off

    return module_off(open_store(), module, org)


def _held(message: str | None) -> dict:
    """`held` (the run's message) for a run whose deletions the brake held, else nothing."""
    from crmbooks.sync.deletions import HELD_WORDS

    return {"held": message} if message and HELD_WORDS in message else {}


def run_flow(flow, label: str, json_out: bool, **params) -> None:
    """Run an event-driven flow (transactions, deal triggers) in this process and print its
    run like `crmbooks sync` does; exit 1 when records failed."""
    from crmbooks.reporting import run_to_json
    from crmbooks.sync.lifecycle import RecordsFailed, RunRefused

    check_before_running()
    prepare_local_prefect()
    runtime_or_fail()
    use_prefect_server()
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
    """Runs (JSON run objects) as the `crmbooks sync` table, then their first failures.

    One row per run: its state whole, and each side's counts in a cell that wraps, so the
    table reads at 80 columns."""
    from rich.table import Table

    table = Table(title="crmbooks sync")
    for column in ("module", "state", "Books", "CRM", "API calls"):
        table.add_column(column)
    for run in runs:
        label = run["module"] + (f"\n{run['org_id']}" if run.get("org_id") else "") + (
            "\n(dry run)" if run.get("dry_run") else "")
        if run["state"] == "skipped":  # turned off: its reason is said under the table
            table.add_row(label, "skipped", "—", "—", "—")
            continue
        table.add_row(label, run["state"], counts_text(run["counts"]["books"]),
                      counts_text(run["counts"]["crm"]),
                      f"CRM {run['api_calls'].get('crm', 0)}, Books "
                      f"{run['api_calls'].get('books', 0)}")
    print_table(table)
    for run in runs:
        if run["state"] == "skipped":
            console.print(f"[dim]-[/] {run['module']} skipped: {run['reason']}",
                          highlight=False)
        if run.get("held"):  # the brake: nothing deleted until a person approves
            console.print(f"[yellow]![/] {run['module']}: {run['held']}", highlight=False)
        for f in run.get("failures", [])[:20]:
            console.print(f"[red]✗[/] {run['module']} {f['side']} {f['record']}: "
                          f"{f['message']}", highlight=False)


def _widths(cell, target: Console) -> tuple[int, int]:
    """(widest word, widest line) of a table cell: the narrowest a column can be without
    cutting a word, and the width it takes unwrapped."""
    from rich.cells import cell_len
    from rich.text import Text

    text = cell if isinstance(cell, Text) else target.render_str(str(cell))
    words = max((cell_len(word) for word in text.plain.split()), default=0)
    return words, max((cell_len(line) for line in text.plain.splitlines()), default=0)


def fit_table(table, width: int, target: Console | None = None) -> bool:
    """Size `table`'s columns so that none is narrower than its widest word (rich would
    otherwise cut words: a record key, an id, a state), sharing what is left by need; False
    when that cannot fit in `width`."""
    target = target or console
    sizes = [[_widths(cell, target) for cell in [column.header, *column.cells]]
             for column in table.columns]
    narrowest = [max(w for w, _ in column) for column in sizes]
    widest = [max(line for _, line in column) for column in sizes]
    room = width - 3 * len(table.columns) - 1  # padding of one space each side, the box
    if sum(narrowest) > room:
        return False
    if sum(widest) > room:  # rich would shrink columns by its own rule: give each its share
        spare, need = room - sum(narrowest), [w - n for w, n in zip(widest, narrowest,
                                                                      strict=True)]
        for column, low, more in zip(table.columns, narrowest, need, strict=True):
            column.width = low + spare * more // max(sum(need), 1)
    return True


def print_table(table, target: Console | None = None) -> None:
    """A table as it is when it fits the terminal uncut; otherwise stacked: each row as a
    block of "column  value" lines, values wrapping at words (a long key or id folds onto the
    next line, never cut)."""
    from rich.table import Table

    target = target or console
    if fit_table(table, target.width, target):
        target.print(table)
        return
    if table.title:
        target.print(table.title, style="bold", highlight=False)
    headers = [str(column.header) for column in table.columns]
    for row in zip(*(list(column.cells) for column in table.columns), strict=True):
        block = Table.grid(padding=(0, 2))
        block.add_column(style="bold", no_wrap=True)
        block.add_column(overflow="fold")
        for header, cell in zip(headers, row, strict=True):
            block.add_row(header, cell)
        target.print(block)
        target.print()


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
    print_table(table)
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
    """A setting value for the terminal (maps as BOOKS=CRM, value maps as FIELD: CRM=BOOKS)."""
    if value is None:
        return "—"
    if isinstance(value, list):
        if value and isinstance(value[0], dict) and "books" in value[0]:
            return ", ".join(f"{map_key(m)}={m['crm']}" for m in value)
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, dict):  # value maps: field: CRM=Books, …
        return "; ".join(
            f"{field.removeprefix('custom_fields.')}: "
            + ", ".join(f"{k}={v}" for k, v in entries.items())
            for field, entries in value.items()) or "—"
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
