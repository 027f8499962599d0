"""Shared fixtures: one emulator server per test session, reset to small seeded data per test.

Everything runs offline against 127.0.0.1. Local state (the crmbooks database, Prefect's home)
goes to a temporary folder so a test run never touches the user's ~/.crmbooks or ~/.prefect.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack

_TMP_HOME = tempfile.mkdtemp(prefix="crmbooks-tests-")
os.environ.setdefault("CRMBOOKS_HOME", os.path.join(_TMP_HOME, "crmbooks"))
os.environ.setdefault("PREFECT_HOME", os.path.join(_TMP_HOME, "prefect"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
# Prefect's INFO lines (a few per task run) cost CPU to make and capture in every flow test;
# a test about logs sets its loggers' levels itself.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _database_per_worker() -> None:
    """Give each pytest-xdist worker its own PostgreSQL database, made from the configured one's
    name (crmbooks_test -> crmbooks_test_gw0), so parallel tests never reset each other's store.
    Runs before any test module reads CRMBOOKS_TEST_POSTGRES_URL."""
    url = os.environ.get("CRMBOOKS_TEST_POSTGRES_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = f"{parsed.database}_{worker}"
    admin = parsed.set(drivername="postgresql", database=parsed.database)
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["CRMBOOKS_TEST_POSTGRES_URL"] = parsed.set(database=name).render_as_string(
        hide_password=False)


_database_per_worker()


def _one_tls_context_per_argument_set() -> None:
    """Build httpx's TLS context once per set of arguments instead of once per client.

    Every short-lived client (the tests' `httpx.get` calls to the emulator's controls, Prefect's
    client at each flow run) loads the whole CA bundle again: about a tenth of a flow test's CPU.
    crmbooks' own clients already share one context (`shared_tls_context`); this extends it to
    the clients the tests and Prefect make. A context may serve many clients.
    """
    import functools
    import ssl
    import types

    import httpx._transports.default as transports
    import prefect.client.orchestration as prefect_client

    transports.create_ssl_context = functools.cache(transports.create_ssl_context)

    # Prefect's client builds its own context from the CA file at every client it makes (one
    # or more per flow run); the same file gives the same context.
    @functools.cache
    def context_of(cafile: str) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=cafile)

    def create_default_context(*args, **kwargs) -> ssl.SSLContext:
        if not args and set(kwargs) == {"cafile"}:
            return context_of(kwargs["cafile"])
        return ssl.create_default_context(*args, **kwargs)  # a context its caller may change

    shim = types.ModuleType("ssl")
    shim.__dict__.update(vars(ssl))
    shim.create_default_context = create_default_context
    prefect_client.ssl = shim


_one_tls_context_per_argument_set()

import httpx  # noqa: E402
import pytest  # noqa: E402

from emulators import EmulatorServer, Faults, Sizes  # noqa: E402

SMALL = Sizes(
    accounts=12, contacts_per_account=2, unassociated_contacts=2, vendors=5, products=8,
    deals=6, books_customers=5, books_vendors=2, books_items=3,
)


def pytest_collection_modifyitems(config, items):
    """The `slow` tests first (stable otherwise): on parallel workers a long test started
    last is what the whole suite waits for."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def prefect_harness():
    """The one temporary Prefect API (SQLite) of the session, for flow and deployment tests.

    Started only when a test asks for it (it takes about 7 s), with flow
    heartbeats off: otherwise every flow call waits about a second for the heartbeat thread to
    join on exit. Never start a second harness inside it.
    """
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_LOGGING_TO_API_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    # Run logs stay in the test process (pytest shows them on failure); shipping each one to
    # the harness's API cost about a tenth of the suite's CPU. A test about what reaches the
    # API turns it back on (`logs_to_api`).
    # The harness's server keeps no event history and runs no automations (no test reads them):
    # writing a dozen event rows per task run was a large share of the suite's CPU. The
    # variables reach only the server process, through its environment as it starts.
    with ExitStack() as stack:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED", "false")
            env.setenv("PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED", "false")
            # Nor does it record task runs: each task run's three state events cost the server
            # about 20 ms to write, two thirds of its CPU per flow run. Task runs are
            # orchestrated by the client, so flows, caching and retries do not need them; the
            # test that checks what task runs carry reads the events the client sends.
            env.setenv("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")
            stack.enter_context(prefect_test_harness(server_startup_timeout=120))
        stack.enter_context(temporary_settings(updates={
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_LOGGING_TO_API_ENABLED: False}))
        yield


@pytest.fixture
def logs_to_api(prefect_harness):
    """Run logs shipped to the Prefect API, as in production, for the test that asks."""
    from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

    with temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: True}):
        yield


@pytest.fixture(scope="session")
def emulator():
    """A running emulator (CRM + Books + Accounts) on a free loopback port, for the session."""
    with EmulatorServer() as server:
        server.emu.reset(sizes=SMALL)
        yield server


@pytest.fixture
def emu_reset(emulator):
    """Fresh small seeded data, no faults, default limits and zeroed counters for one test."""
    emu = emulator.emu
    emu.config.books_rate_limit = 100_000  # tests are not about pacing unless they say so
    emu.config.books_rate_window_s = 60.0
    emu.config.books_daily_limit = 1_000_000
    emu.config.crm_concurrency = 15
    emu.reset(seed=7, sizes=SMALL)
    emu.set_faults(Faults())
    yield emulator
    emu.set_faults(Faults())


def _access_token(emulator) -> str:
    config = emulator.emu.config
    response = httpx.post(
        f"{emulator.base_url}/oauth/v2/token",
        data={"grant_type": "refresh_token", "client_id": config.client_id,
              "client_secret": config.client_secret, "refresh_token": config.refresh_token},
    )
    return response.json()["access_token"]


def _authorized_client(emulator) -> httpx.Client:
    token = _access_token(emulator)
    return httpx.Client(base_url=emulator.base_url,
                        headers={"Authorization": f"Zoho-oauthtoken {token}"})


@pytest.fixture
def crm_http(emu_reset):
    """An httpx client for the CRM emulator with a valid access token."""
    with _authorized_client(emu_reset) as client:
        yield client


@pytest.fixture
def books_http(emu_reset):
    """An httpx client for the Books emulator with a valid access token."""
    with _authorized_client(emu_reset) as client:
        yield client


@pytest.fixture
def set_faults(emu_reset):
    """Inject faults for one test: set_faults({"error_rate": 0.1, "seed": 3})."""

    def _set(spec: dict) -> None:
        response = httpx.post(f"{emu_reset.base_url}/__emulator__/faults", json=spec)
        response.raise_for_status()

    yield _set
    emu_reset.emu.set_faults(Faults())
