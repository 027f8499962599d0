"""Two Books organizations on one CRM: a test-local emulator serving both, and crmbooks
connected with the second as an extra organization."""

from __future__ import annotations

import pytest

from crmbooks.runtime import reset_runtime_cache
from crmbooks.store import Store
from emulators import EmulatorConfig, EmulatorServer, Sizes
from support.customers import unpaced

SMALL = Sizes(accounts=12, contacts_per_account=2, unassociated_contacts=2, vendors=5,
              products=8, deals=6, books_customers=5, books_vendors=2, books_items=3)

PRIMARY, EXTRA = "20099001", "20099002"


@pytest.fixture(scope="module")
def two_orgs():
    """An emulator with two Books organizations, each seeded from the same CRM."""
    config = EmulatorConfig(books_org_ids=[PRIMARY, EXTRA], books_rate_limit=100_000,
                            books_daily_limit=1_000_000)
    with EmulatorServer(config) as server:
        server.emu.reset(seed=7, sizes=SMALL)
        yield server


@pytest.fixture
def connected_two(two_orgs, monkeypatch, tmp_path):
    """crmbooks connected with EXTRA as an extra organization; the primary org's Store."""
    from crmbooks.connect import store_connection, verify
    from crmbooks.connectors.config import ZohoConfig
    from crmbooks.runtime import open_store

    two_orgs.emu.reset(seed=7, sizes=SMALL)
    config = two_orgs.emu.config
    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMBOOKS_DATABASE_URL", f"sqlite:///{tmp_path / 'crmbooks.db'}")
    monkeypatch.setenv("CRMBOOKS_CLIENT_SECRET", config.client_secret)
    monkeypatch.setenv("CRMBOOKS_REFRESH_TOKEN", config.refresh_token)
    unpaced(monkeypatch)
    zoho = ZohoConfig(accounts_url=two_orgs.base_url, api_url=two_orgs.base_url,
                      client_id=config.client_id, client_secret=config.client_secret,
                      refresh_token=config.refresh_token, books_org_id=PRIMARY)
    reset_runtime_cache()
    store_connection(open_store(), zoho, verify(zoho, [EXTRA]), extra_org_ids=[EXTRA])
    yield Store(open_store().engine, org_id=PRIMARY)
    reset_runtime_cache()
