"""The state store's schema under Alembic: the revision a database is at, its upgrade when it
is opened, and its reset to an empty store.

The revisions live in ``migrations/versions``. A database's revision is recorded in the table
``crmbooks_alembic_version``. Three kinds of database reach :func:`upgrade_engine`:

- a fresh one: the migrations create every table;
- one made before migrations existed (tables, no revision record): it is stamped at the
  initial revision, whose tables it already has, then upgraded;
- one a newer crmbooks upgraded (a revision this code does not know): refused with
  :class:`DatabaseTooNew` before anything is written.

Upgrades take a lock first, so that two processes opening an old database at once (workers,
the CLI, a flow) upgrade it once: PostgreSQL's transaction-scoped advisory lock, SQLite's
write lock (``BEGIN IMMEDIATE``). PostgreSQL and SQLite both roll back DDL with the
transaction, so an upgrade that fails half way leaves the database as it was.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from crmbooks.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from crmbooks.store.errors import DatabaseTooNew

MIGRATIONS = Path(__file__).parent / "migrations"
#: Where the revision is recorded: not Alembic's default ``alembic_version``, which Prefect's
#: own server keeps in its database, so both can share one PostgreSQL database.
VERSION_TABLE = "crmbooks_alembic_version"
#: The revision of the schema crmbooks had before migrations, and its tables.
INITIAL_REVISION = "0001"
INITIAL_TABLES = frozenset({"connection", "cursor", "failure", "link", "record_event", "run",
                            "run_lock", "settings_version"})
#: The key of the PostgreSQL advisory lock an upgrade holds (any number no other code uses).
ADVISORY_LOCK_KEY = 0x63726D626F6F6B  # "crmbook" in ASCII
#: How long an upgrade on SQLite waits for the write lock (another process's upgrade or a
#: flow's write) before "database is locked".
SQLITE_LOCK_TIMEOUT_S = 60
#: Alembic keeps the migration being run in module-level state, so two threads of one
#: process must not run migrations at once, even on different databases.
_ONE_MIGRATION_AT_A_TIME = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the store's migrations, run on ``connection`` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    """The revisions this code knows (read once per process)."""
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision this code knows."""
    return _scripts().get_current_head()


def known(revision: str | None) -> bool:
    """True for no revision (an empty or pre-migration database) or one this code knows."""
    if revision is None:
        return True
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def revision_on(connection: Connection) -> str | None:
    """The revision recorded in the database of ``connection`` (None when there is none)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def revision_of(engine: Engine) -> str | None:
    """The revision recorded in the database of ``engine``; reads only."""
    with engine.connect() as connection:
        return revision_on(connection)


def upgrade_engine(engine: Engine, *, replay: bool = False) -> tuple[str | None, str]:
    """Bring the database of ``engine`` to the newest revision; return (from, to).

    ``from`` is None for a fresh database and the initial revision for one made before
    migrations. Raises :class:`DatabaseTooNew` for a revision this code does not know.
    A database already at the newest revision costs a read of its revision record and
    takes no lock. A fresh (empty) database gets the newest tables at once and is stamped
    with the newest revision, as Alembic advises ("Building an Up to Date Database from
    Scratch", https://alembic.sqlalchemy.org/en/latest/cookbook.html): replaying every
    revision costs several times more and ends in the same tables (a test checks both
    ways agree); ``replay`` replays them anyway.
    """
    target = head()
    before = revision_of(engine)
    if before == target:
        return before, target
    if not known(before):
        raise DatabaseTooNew(before)
    with _ONE_MIGRATION_AT_A_TIME, locked(engine) as connection:
        before = revision_on(connection)  # another process may have upgraded meanwhile
        if not known(before):
            raise DatabaseTooNew(before)
        if before is None:
            present = INITIAL_TABLES & set(inspect(connection).get_table_names())
            if not present and not replay:
                SQLModel.metadata.create_all(connection)
                MigrationContext.configure(connection, opts={
                    "version_table": VERSION_TABLE}).stamp(_scripts(), "head")
                return before, target
            if present == INITIAL_TABLES:
                command.stamp(alembic_config(connection), INITIAL_REVISION)
            if present:  # made before migrations; missing tables are created by 0001
                before = INITIAL_REVISION
        if before != target:
            command.upgrade(alembic_config(connection), "head")
    return before, target


@contextmanager
def locked(engine: Engine) -> Iterator[Connection]:
    """A transaction on the database of ``engine`` that no other upgrade runs beside.

    SQLite: on a connection of its own that begins with ``BEGIN IMMEDIATE`` (the Python
    driver would otherwise run each DDL statement in a transaction of its own, unlocked).
    """
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        own = create_engine(url, poolclass=NullPool,
                            connect_args={"timeout": SQLITE_LOCK_TIMEOUT_S})
        event.listen(own, "connect", _driver_leaves_transactions_to_us)
        event.listen(own, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        try:
            with own.begin() as connection:
                yield connection
        finally:
            own.dispose()
        return
    with engine.begin() as connection:
        if url.get_backend_name() == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": ADVISORY_LOCK_KEY})
        yield connection


def _driver_leaves_transactions_to_us(dbapi_connection, _record) -> None:
    """Stop the sqlite3 driver from beginning and committing transactions on its own."""
    dbapi_connection.isolation_level = None


def reset_database(engine: Engine) -> None:
    """Drop every table of the state store and its revision record, then migrate: an empty
    store at the newest revision. Tests start from it; it deletes everything the store holds.
    """
    with locked(engine) as connection:
        ours = INITIAL_TABLES | set(SQLModel.metadata.tables) | {VERSION_TABLE}
        found = MetaData()
        found.reflect(connection, only=lambda name, _meta: name in ours)
        found.drop_all(connection)
    upgrade_engine(engine)
