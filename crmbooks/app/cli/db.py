"""`crmbooks db`: where the state database's schema stands, and upgrading it by hand.

crmbooks upgrades the database by itself whenever it opens it; these commands are for
operators who prefer to do it explicitly (before starting workers, say) or want to check.
"""

from __future__ import annotations

import json

import typer
from sqlalchemy.engine import make_url

from crmbooks.app.cli.common import EXIT_CONFIG, EXIT_OK, Command, Group, console, fail

db_app = typer.Typer(help="The state database's schema: see its revision, upgrade it.",
                     no_args_is_help=True, cls=Group)


def _where() -> str:
    """The database URL in use, without its password."""
    from crmbooks.store.engine import database_url

    return make_url(database_url()).render_as_string(hide_password=True)


@db_app.command("current", cls=Command)
def current(json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts.")):
    """Show the state database's schema revision and whether it needs an upgrade.

    Reads only. Exit code: 0 up to date or upgradable, 2 upgraded by a newer crmbooks.

    Example: crmbooks db current
    """
    from crmbooks.store import migrate

    revision, newest = migrate.current(), migrate.head()
    too_new = not migrate.known(revision)
    if too_new:
        state = "newer than this crmbooks"
    elif revision is None:
        state = "empty or made before migrations: crmbooks upgrades it when it opens it"
    elif revision == newest:
        state = "up to date"
    else:
        state = "behind: crmbooks upgrades it when it opens it, or run `crmbooks db upgrade`"
    if json_out:
        typer.echo(json.dumps({"database": _where(), "revision": revision, "head": newest,
                               "up_to_date": revision == newest}))
    else:
        console.print(f"Database: {_where()}\nRevision: {revision or 'none'} "
                      f"(this crmbooks knows up to {newest})\nState:    {state}")
    raise typer.Exit(EXIT_CONFIG if too_new else EXIT_OK)


@db_app.command("upgrade", cls=Command)
def upgrade(json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts.")):
    """Bring the state database to the newest schema this crmbooks knows.

    Safe to run again: an up-to-date database is left alone. A database upgraded by a newer
    crmbooks is refused and nothing is written. Exit code: 0 done, 2 refused.

    Example: crmbooks db upgrade
    """
    from crmbooks.store import migrate

    try:
        before, after = migrate.upgrade()
    except migrate.DatabaseTooNew as exc:
        fail(f"{exc}.")
    if json_out:
        typer.echo(json.dumps({"database": _where(), "from": before, "to": after,
                               "changed": before != after}))
    elif before == after:
        console.print(f"Already up to date at revision {after} ({_where()}).")
    else:
        console.print(f"Upgraded {_where()} from revision {before or 'none'} to {after}.")
