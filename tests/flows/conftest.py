"""Flow tests: every one runs against the session's Prefect test harness (`prefect_harness`
in tests/conftest.py, shared with tests/deployments), and connects to the session emulator.
"""

from __future__ import annotations

import pytest
from connect_support import connect_to


@pytest.fixture(autouse=True)
def _harness(prefect_harness):
    yield


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    """The state database of one test: a SQLite file, or (when configured) PostgreSQL."""
    import os

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crmbooks.db'}"
        return
    url = os.environ.get("CRMBOOKS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL flow tests need CRMBOOKS_TEST_POSTGRES_URL")
    from crmbooks.store import make_engine, reset_database

    engine = make_engine(url, create=False)
    reset_database(engine)  # every test starts from an empty store
    engine.dispose()
    yield url


@pytest.fixture
def sqlite_only(tmp_path):
    """For tests that need not run on both databases."""
    return f"sqlite:///{tmp_path / 'crmbooks.db'}"


@pytest.fixture
def connected(emu_reset, monkeypatch, tmp_path, sqlite_only):
    """crmbooks connected to freshly seeded emulators, state in a SQLite file; the Store."""
    from crmbooks.runtime import reset_runtime_cache

    store = connect_to(emu_reset, monkeypatch, tmp_path, sqlite_only)
    yield store
    reset_runtime_cache()


@pytest.fixture
def connected_any_db(emu_reset, monkeypatch, tmp_path, database_url):
    """Like `connected`, once on SQLite and once on PostgreSQL (when configured)."""
    from crmbooks.runtime import reset_runtime_cache

    store = connect_to(emu_reset, monkeypatch, tmp_path, database_url)
    yield store
    reset_runtime_cache()
