"""The state store of the unit tests: SQLite, and PostgreSQL when configured."""

from __future__ import annotations

import os

import pytest

from crmbooks.store import Store, make_engine, reset_database

PG_URL = os.environ.get("CRMBOOKS_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """A fresh store on a temporary SQLite file, or on the test PostgreSQL database."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL store tests need CRMBOOKS_TEST_POSTGRES_URL "
                        "(e.g. postgresql://postgres@127.0.0.1:5432/crmbooks_test)")
        engine = make_engine(PG_URL, create=False)
        reset_database(engine)
    yield Store(engine, org_id="20099001")
    engine.dispose()
