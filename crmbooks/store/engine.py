"""Database engine: a SQLite file under CRMBOOKS_HOME by default, PostgreSQL by URL.

Opening a database brings its schema to the newest revision (see ``schema``): a fresh one is
created by the migrations, an older one upgraded, one from a newer crmbooks refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import create_engine

from crmbooks.store.errors import DatabaseUnavailable
from crmbooks.store.schema import upgrade_engine

#: How long SQLite waits for a lock before "database is locked" (ms); flows write concurrently.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def crmbooks_home() -> Path:
    """Return the folder for all local state: $CRMBOOKS_HOME, default ~/.crmbooks."""
    return Path(os.environ.get("CRMBOOKS_HOME") or Path.home() / ".crmbooks").expanduser()


def database_url(url: str | None = None) -> str:
    """Resolve the database URL: the argument, then CRMBOOKS_DATABASE_URL, then the SQLite file.

    ``postgresql://`` and ``postgres://`` are rewritten to ``postgresql+psycopg://`` so that
    psycopg 3 is used (psycopg2 is not a dependency).
    """
    url = url or os.environ.get("CRMBOOKS_DATABASE_URL") or ""
    if not url:
        home = crmbooks_home()
        url = f"sqlite:///{home / 'crmbooks.db'}"
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unavailable(exc, url) from exc
        return url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    _make_sqlite_folder(url)
    return url


def _make_sqlite_folder(url: str) -> None:
    """A SQLite file URL whose folder does not exist yet: create the folder (SQLite creates
    the file, never its folder); DatabaseUnavailable when it cannot be made."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - reported when the engine is made (DatabaseUnavailable)
        return
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not parsed.database.startswith("file:"):
        try:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unavailable(exc, url) from exc


def unavailable(exc: Exception, url: str | None = None) -> DatabaseUnavailable:
    """The one sentence for a database that cannot be opened: which setting holds its URL and
    what to fix, with the driver's reason (never the URL's password)."""
    reason = str(getattr(exc, "orig", None) or exc).split("(Background on this error")[0]
    reason = " ".join(reason.split()).rstrip(".") or type(exc).__name__
    from_env = os.environ.get("CRMBOOKS_DATABASE_URL")
    for secret in {_password(url), _password(from_env)} - {None, ""}:
        reason = reason.replace(secret, "***")
    if from_env:
        return DatabaseUnavailable(
            f"the state database set by CRMBOOKS_DATABASE_URL cannot be opened ({reason}): set "
            "CRMBOOKS_DATABASE_URL to a reachable database, for example "
            "postgresql://USER:PASSWORD@HOST:5432/crmbooks, or unset it to use the SQLite file "
            "under CRMBOOKS_HOME")
    return DatabaseUnavailable(
        f"the state database {url or database_url()} cannot be opened ({reason}): check that "
        "CRMBOOKS_HOME names a folder you can write to, or set CRMBOOKS_DATABASE_URL to a "
        "PostgreSQL URL")


def _password(url: str | None) -> str | None:
    try:
        return make_url(url).password if url else None
    except Exception:  # noqa: BLE001 - an unparsable URL has no password to hide
        return None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers (CLI, UI) run while a flow writes; busy_timeout avoids lock errors."""
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str | None = None, *, create: bool = True, echo: bool = False) -> Engine:
    """Create the store's engine and (by default) bring its schema to the newest revision.

    Args:
        url: a SQLAlchemy URL; default CRMBOOKS_DATABASE_URL or $CRMBOOKS_HOME/crmbooks.db.
        create: create the tables of a fresh database, or upgrade an older one (idempotent;
            a database already up to date costs one read). False leaves the schema alone.
        echo: log SQL (debugging only).

    Raises:
        DatabaseTooNew: the database was upgraded by a newer crmbooks (nothing is written).
        DatabaseUnavailable: the URL does not parse, names a driver crmbooks lacks, or its
            database cannot be reached (the message names CRMBOOKS_DATABASE_URL).
    """
    from sqlalchemy.exc import ArgumentError, DBAPIError

    resolved = database_url(url)
    try:
        backend = make_url(resolved).get_backend_name()
        if backend == "sqlite":
            engine = create_engine(
                resolved,
                echo=echo,
                connect_args={"check_same_thread": False,
                              "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(resolved, echo=echo, pool_pre_ping=True)
    except (ArgumentError, ImportError, ValueError) as exc:  # unparsable, unknown driver
        raise unavailable(exc, resolved) from exc
    if create:
        try:
            upgrade_engine(engine)
        except DBAPIError as exc:  # the server or file cannot be reached
            engine.dispose()
            raise unavailable(exc, resolved) from exc
        except Exception:
            engine.dispose()
            raise
    return engine
