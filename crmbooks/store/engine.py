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
        home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{home / 'crmbooks.db'}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


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
    """
    resolved = database_url(url)
    backend = make_url(resolved).get_backend_name()
    if backend == "sqlite":
        engine = create_engine(
            resolved,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(resolved, echo=echo, pool_pre_ping=True)
    if create:
        try:
            upgrade_engine(engine)
        except Exception:
            engine.dispose()
            raise
    return engine
