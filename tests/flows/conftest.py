"""Flow tests: every one runs against the session's Prefect test harness (`prefect_harness`
in tests/conftest.py, shared with tests/deployments), and connects to the session emulator.

A module says what its world holds with markers, read by the `store` fixtures:
`pytest.mark.books_customers(12)` reseeds Books with that many customers, and
`pytest.mark.settings(transactions={...})` saves module settings before the test runs.
"""

from __future__ import annotations

import pytest

from support.connect import connect_to
from support.customers import reseed, unpaced
from support.orgs import connected_two, two_orgs  # noqa: F401  (fixtures for these tests)
from support.transactions import linked  # noqa: F401  (a fixture for these tests)


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


def _prepare(request, store, server, monkeypatch):
    """Lift Books pacing and apply the module's markers (reseeded Books, saved settings)."""
    from crmbooks.runtime import reset_runtime_cache

    unpaced(monkeypatch)
    reset_runtime_cache()
    marker = request.node.get_closest_marker("books_customers")
    if marker is not None:
        reseed(server, books_customers=marker.args[0])
    marker = request.node.get_closest_marker("settings")
    for module, settings in (marker.kwargs if marker is not None else {}).items():
        store.save_settings(module, settings)
    return store


@pytest.fixture
def store(request, connected, emu_reset, monkeypatch):
    """Connected to freshly seeded emulators, Books unpaced, the module's markers applied."""
    return _prepare(request, connected, emu_reset, monkeypatch)


@pytest.fixture
def store_any_db(request, connected_any_db, emu_reset, monkeypatch):
    """Like `store`, on SQLite and (when configured) PostgreSQL."""
    return _prepare(request, connected_any_db, emu_reset, monkeypatch)
