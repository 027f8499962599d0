"""CLI: `crmbooks db current` and `crmbooks db upgrade` on a SQLite state database: a fresh
one, one made before migrations, and one a newer crmbooks upgraded (refused, left alone)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.store import migrate
from crmbooks.store.schema import VERSION_TABLE

BEFORE = Path(__file__).parents[1] / "fixtures" / "state_before_migrations.sqlite"


@pytest.fixture
def database(tmp_path, monkeypatch):
    """Point crmbooks at a state database file under tmp_path; returns its path."""
    path = tmp_path / "state.db"
    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMBOOKS_DATABASE_URL", f"sqlite:///{path}")
    return path


def db(*args: str):
    result = CliRunner().invoke(app, ["db", *args])
    assert "Traceback" not in result.output, result.output
    return result


def test_a_fresh_database_is_upgraded_once_and_then_reads_up_to_date(database):
    assert json.loads(db("current", "--json").output)["revision"] is None
    assert not database.exists()  # looking does not create the file

    first = db("upgrade")
    assert first.exit_code == 0 and f"to {migrate.head()}" in first.output
    again = db("upgrade")
    assert again.exit_code == 0 and "Already up to date" in again.output
    shown = json.loads(db("current", "--json").output)
    assert shown["revision"] == shown["head"] == migrate.head() and shown["up_to_date"]


def test_a_database_from_before_migrations_is_upgraded_by_hand(database):
    """It counts as the initial revision, the schema of before migrations."""
    shutil.copy(BEFORE, database)
    before = db("current")
    assert before.exit_code == 0 and "Revision: none" in before.output

    result = db("upgrade", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output) == {
        "database": f"sqlite:///{database}", "from": "0001", "to": migrate.head(),
        "changed": True}


def test_a_database_a_newer_crmbooks_upgraded_is_refused_and_nothing_is_written(database):
    assert db("upgrade").exit_code == 0
    with create_engine(f"sqlite:///{database}").begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    unchanged = database.read_bytes()

    shown = db("current")
    assert shown.exit_code == 2 and "newer than this crmbooks" in shown.output
    refused = db("upgrade")
    assert refused.exit_code == 2
    assert "upgraded by a newer crmbooks (revision 9999)" in refused.output
    assert database.read_bytes() == unchanged
