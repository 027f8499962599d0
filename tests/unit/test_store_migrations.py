"""The state store's schema under migrations: a fresh database, the upgrade of a database made
before migrations (on SQLite, and on PostgreSQL when CRMBOOKS_TEST_POSTGRES_URL is set), and
the refusal of a database that a newer crmbooks upgraded.

The database before migrations is a fixture made by that code (tests/fixtures, with the
script that made it): customers and vendors synced once from the emulators, one customer
failed, a settings version of customers, a failed run of a second Books organization and a
failure recorded outside a run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect, select, text
from sqlmodel import SQLModel

from crmbooks.store import DatabaseTooNew, Failure, Store, make_engine, migrate, reset_database
from crmbooks.store.schema import (
    INITIAL_REVISION,
    INITIAL_TABLES,
    VERSION_TABLE,
    alembic_config,
    head,
    locked,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
BEFORE = FIXTURES / "state_before_migrations.sqlite"
BEFORE_POSTGRES_DDL = FIXTURES / "state_before_migrations.postgresql.sql"
PRIMARY, OTHER = "20099001", "20099002"
PG_URL = os.environ.get("CRMBOOKS_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(
    not PG_URL, reason="PostgreSQL migration tests need CRMBOOKS_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, needs_postgres])]


# ------------------------------------------------------------------------------- helpers
def _plain(value):
    """A cell as comparable data: timestamps aware in UTC (SQLite gives them naive)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def table_rows(engine) -> dict[str, list[dict]]:
    """Every row of every table of the initial schema, by table, in id order."""
    found = MetaData()
    found.reflect(engine, only=sorted(INITIAL_TABLES))
    out = {}
    with engine.connect() as conn:
        for name, table in found.tables.items():
            rows = conn.execute(select(table).order_by(table.c.id)).mappings().all()
            out[name] = [{k: _plain(v) for k, v in row.items()} for row in rows]
    return out


def schema_of(engine) -> dict:
    """Tables with their columns (type, nullable), keys, unique constraints and indexes."""
    inspector = inspect(engine)
    out = {}
    for name in sorted(set(inspector.get_table_names()) & INITIAL_TABLES):
        out[name] = {
            "columns": sorted((c["name"], str(c["type"]), c["nullable"])
                              for c in inspector.get_columns(name)),
            "primary key": inspector.get_pk_constraint(name)["constrained_columns"],
            "unique": sorted(tuple(u["column_names"])
                             for u in inspector.get_unique_constraints(name)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in inspector.get_indexes(name)
                              if not i["name"].startswith("sqlite_autoindex")),
        }
    return out


def empty_postgres() -> None:
    """Drop every table of the test PostgreSQL database."""
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        found = MetaData()
        found.reflect(conn)
        found.drop_all(conn)
    engine.dispose()


def postgres_before_migrations() -> str:
    """The test PostgreSQL database as the code before migrations left it: its tables (the
    fixture's DDL) holding the rows of the SQLite fixture. Returns its URL."""
    empty_postgres()
    source, target = create_engine(f"sqlite:///{BEFORE}"), create_engine(PG_URL)
    rows = table_rows(source)
    with target.begin() as conn:
        for statement in BEFORE_POSTGRES_DDL.read_text().split(";\n"):
            if statement.strip():
                conn.exec_driver_sql(statement)
        tables = MetaData()
        tables.reflect(conn)
        for table in tables.sorted_tables:
            if rows[table.name]:
                conn.execute(table.insert(), rows[table.name])
            if table.name != "run":  # serial ids go on after the copied rows
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"
                                  f" (SELECT coalesce(max(id), 0) + 1 FROM {table.name}),"
                                  " false)"))
    source.dispose()
    target.dispose()
    return PG_URL


def sqlite_before_migrations(tmp_path) -> str:
    """A copy of the SQLite fixture; returns its URL."""
    copy = tmp_path / "state.db"
    shutil.copy(BEFORE, copy)
    return f"sqlite:///{copy}"


def database_before_migrations(backend: str, tmp_path) -> str:
    """The fixture on ``backend``; returns its URL."""
    if backend == "sqlite":
        return sqlite_before_migrations(tmp_path)
    return postgres_before_migrations()


# ----------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("replay", [True, False], ids=["replayed", "at-once"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_fresh_database_is_made_by_the_migrations_and_matches_the_tables(backend, replay,
                                                                           tmp_path):
    """Both ways to a fresh database (every revision replayed, or the newest tables at once
    and stamped) end in the tables the code declares."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}" if backend == "sqlite" else PG_URL
    if backend == "postgres":
        empty_postgres()
    assert migrate.current(url) is None
    assert migrate.upgrade(url, replay=replay) == (None, head())
    assert migrate.current(url) == head()
    assert migrate.upgrade(url) == (head(), head())  # nothing left to do
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                          "version_table": VERSION_TABLE})
        assert compare_metadata(context, SQLModel.metadata) == []
    engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_initial_revision_is_the_schema_from_before_migrations(backend, tmp_path):
    if backend == "sqlite":
        before = create_engine(f"sqlite:///{BEFORE}")
        fresh = create_engine(f"sqlite:///{tmp_path / 'initial.db'}")
    else:
        before = fresh = create_engine(postgres_before_migrations())
    expected = schema_of(before)
    if backend == "postgres":
        empty_postgres()
    with locked(fresh) as conn:
        command.upgrade(alembic_config(conn), INITIAL_REVISION)
    assert set(expected) == INITIAL_TABLES
    assert schema_of(fresh) == expected
    before.dispose()
    fresh.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_from_before_migrations_is_upgraded_when_opened_and_keeps_its_state(
        backend, tmp_path):
    url = database_before_migrations(backend, tmp_path)
    plain = create_engine(url)
    before = table_rows(plain)
    assert migrate.current(url) is None

    store = Store.open(url, org_id=PRIMARY)

    assert migrate.current(url) == head()
    after = table_rows(plain)
    after["failure"] = [{k: v for k, v in row.items() if k != "org_id"}
                        for row in after["failure"]]
    # links made before crmbooks marked the CRM records it created are a CRM user's records
    assert {bool(row["crm_created"]) for row in after["link"]} == {False}
    after["link"] = [{k: v for k, v in row.items() if k != "crm_created"}
                     for row in after["link"]]
    # The cursors' new column is empty: settled before fingerprints were kept.
    assert {row.pop("settings_fingerprint") for row in after["cursor"]} == {None}
    assert after == before  # every row of every table, as it was
    with store.session() as s:  # each failure took its run's organization, else the primary
        orgs = {f.record_key: f.org_id for f in s.exec(select(Failure)).scalars()}
    assert orgs == {"crm/Accounts/990001": OTHER, "books/contacts/990002": PRIMARY,
                    next(k for k in orgs if k.startswith("crm/Accounts/57")): PRIMARY}

    # ... and the store reads it as before: links, cursors, history, failures, settings.
    assert len(store.links("customers")) + len(store.links("vendors")) == len(before["link"])
    assert store.cursor("vendors", "crm") == before["cursor"][0]["value"]
    runs = store.list_runs()
    assert {(r.module, r.state) for r in runs} == {
        ("customers", "completed_with_failures"), ("vendors", "completed")}
    assert sum(len(store.events(run_id=r.id)) for r in runs) == len(before["record_event"])
    assert store.active_settings("customers") == (1, {"crm_module": "accounts",
                                                      "scope": "both", "duplicates": "skip"})
    assert store.connection().books_org_id == PRIMARY
    mine = store.failures()
    assert sorted(mine["record_key"]) == sorted(
        k for k, org in orgs.items() if org == PRIMARY)
    other = Store(store.engine, org_id=OTHER)
    assert list(other.failures()["record_key"]) == ["crm/Accounts/990001"]
    assert other.resolve_failures("customers", ["crm/Accounts/990001"]) == 1
    assert len(store.failures()) == len(mine)  # the primary's are untouched

    store.add_failures(None, "items", [{"record_key": "crm/Products/1", "message": "new"}])
    with store.session() as s:
        assert s.exec(select(Failure.org_id).where(
            Failure.record_key == "crm/Products/1")).scalar_one() == PRIMARY
    store.engine.dispose()
    plain.dispose()


#: A process that opens the store at URL (argv[1]) once the file argv[3] exists, after saying
#: it is ready by making the file argv[2]: several of them open the store at the same moment.
OPEN_WHEN_TOLD = """
import sys, time
from pathlib import Path
from crmbooks.store import make_engine
url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.002)
make_engine(url).dispose()
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_processes_opening_an_old_database_at_once_upgrade_it_once(backend, tmp_path):
    url = database_before_migrations(backend, tmp_path)
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(3)]
    children = [subprocess.Popen([sys.executable, "-c", OPEN_WHEN_TOLD, url, str(r), str(go)],
                                 stderr=subprocess.PIPE, text=True) for r in ready]
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    assert migrate.current(url) == head()
    plain = create_engine(url)
    with plain.connect() as conn:  # the back-fill ran once: every failure has its org
        assert conn.execute(select(Failure.org_id).order_by(Failure.id)).scalars().all() == [
            PRIMARY, OTHER, PRIMARY]
    plain.dispose()


def test_a_database_from_before_migrations_missing_a_table_gets_it(tmp_path):
    url = sqlite_before_migrations(tmp_path)
    plain = create_engine(url)
    with plain.begin() as conn:
        conn.exec_driver_sql("DROP TABLE run_lock")
    assert migrate.upgrade(url) == (INITIAL_REVISION, head())
    assert "run_lock" in inspect(plain).get_table_names()
    plain.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_a_newer_crmbooks_upgraded_is_refused_and_left_alone(backend, tmp_path):
    url = f"sqlite:///{tmp_path / 'newer.db'}" if backend == "sqlite" else PG_URL
    engine = make_engine(url, create=False)
    reset_database(engine)
    Store(engine, org_id=PRIMARY).start_run("customers")
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    before = table_rows(engine)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()

    with pytest.raises(DatabaseTooNew) as refused:
        Store.open(url)
    assert str(refused.value) == (
        "the state database was upgraded by a newer crmbooks (revision 9999); upgrade "
        "crmbooks or point CRMBOOKS_DATABASE_URL at another database")
    with pytest.raises(DatabaseTooNew):
        migrate.upgrade(url)

    assert migrate.current(url) == "9999" and migrate.is_newer_than_code(url)
    plain = create_engine(url)
    assert table_rows(plain) == before
    assert set(inspect(plain).get_table_names()) == tables
    plain.dispose()
