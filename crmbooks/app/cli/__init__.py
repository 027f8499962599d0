"""`crmbooks`: the operator's front door (the README lists every command).

Each command group lives in its own module and none imports another: what they share is in
`common`. This module builds the typer app from them and holds the console entry point, `run`.

Errors are one sentence saying what is wrong and what to do; `--debug` shows the traceback.
Exit codes: 0 all synced, 1 some records failed, 2 configuration, credentials, arguments or
prerequisites wrong (nothing was written), 3 paused, disabled, or refused because another run
of the same module is in progress, 4 Zoho or the network failed (a storm of 429s, an outage,
a refused connection, a timeout) after the connectors' own retries: try again later.
"""

from __future__ import annotations

import sys

import typer

from crmbooks.app.cli import (
    configure,
    connect,
    control,
    demo,
    emulators,
    history,
    linked,
    pairs,
    records,
    status,
    sync,
    undo,
    up,
    webhook,
)
from crmbooks.app.cli.alerts import alerts_app
from crmbooks.app.cli.common import CliState, Command, Group, debugging, explain, fail
from crmbooks.app.cli.db import db_app
from crmbooks.app.cli.deals import deals_app
from crmbooks.app.cli.deletions import deletions_app
from crmbooks.app.cli.duplicates import duplicates_app
from crmbooks.app.cli.transactions import transactions_app

app = typer.Typer(
    name="crmbooks",
    help="Sync Zoho CRM and Zoho Books: exactly once, with a plan before anything is written.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=Group,
)


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")):
    """crmbooks: a self-hosted sync engine between Zoho CRM and Zoho Books, on Prefect."""
    CliState.debug = debug


# In the order `crmbooks --help` lists them.
for command in (emulators.emulators, sync.sync, demo.demo, up.up, connect.connect,
                configure.configure, status.status, history.history, control.pause,
                control.resume, control.disable, control.enable, webhook.webhook,
                records.retry, records.fetch, records.search, linked.linked,
                pairs.link, pairs.unlink, undo.undo):
    app.command(cls=Command)(command)
app.add_typer(deals_app, name="deals")
app.add_typer(duplicates_app, name="duplicates")
app.add_typer(deletions_app, name="deletions")
app.add_typer(transactions_app, name="transactions")
app.add_typer(db_app, name="db")
app.add_typer(alerts_app, name="alerts")


def run() -> None:
    """Console entry point with the one-sentence error policy (`Group.invoke` applies it to
    every command; this catches what happens around them)."""
    try:
        app()
    except Exception as exc:  # the last line of defence: no traceback unless --debug
        if debugging():
            raise
        code, message = explain(exc)
        try:
            fail(message, code, wrap=True)
        except typer.Exit as done:
            sys.exit(done.exit_code)
