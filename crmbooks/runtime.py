"""What a running sync needs, built once per process: the store and the two Zoho clients.

Tasks ask for `get_runtime()` instead of receiving clients as parameters, because Prefect
parameters must be JSON (they show in the UI, and a secret must never be one). The connection's
non-secret settings come from the store; the secrets from `crmbooks.secrets`. Tests and the demo
connect to the emulators through the same path, so nothing here is test-only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from crmbooks.connectors.config import ZohoConfig
from crmbooks.connectors.pacing import shared_pacer
from crmbooks.connectors.zoho_books import BooksClient
from crmbooks.connectors.zoho_crm import CrmClient
from crmbooks.secrets import install_redaction, load_secret
from crmbooks.sharing import StoredToken, shared_limiter
from crmbooks.store import Store


class NotConnected(RuntimeError):
    """No connection is stored yet."""


@dataclass
class Runtime:
    """The store and both clients for one Books organization."""

    store: Store
    config: ZohoConfig
    crm: CrmClient
    books: BooksClient
    #: CRM user id that owns every record crmbooks creates in the CRM (`connect --crm-owner`);
    #: None: Zoho makes the grant's user, the one who connected, the owner.
    crm_owner_id: str | None = None

    def owned(self, body: dict) -> dict:
        """A CRM create body with the chosen owner (unchanged when none was chosen)."""
        return {**body, "Owner": {"id": self.crm_owner_id}} if self.crm_owner_id else body

    @property
    def org_id(self) -> str:
        """The Books organization this runtime syncs."""
        return self.config.books_org_id or ""

    def api_calls(self) -> dict[str, int]:
        """Requests sent so far per system, e.g. {"crm": 3, "books": 2}."""
        return {"crm": sum(self.crm.calls.snapshot().values()),
                "books": sum(self.books.calls.snapshot().values())}

    def close(self) -> None:
        """Close both HTTP clients."""
        for client in (self.crm, self.books):
            close = getattr(client, "close", None)
            if close is not None:
                close()


_cache: dict[tuple, Runtime] = {}
_lock = threading.Lock()


def config_from_store(store: Store, org_id: str | None = None,
                      connection: str = "default") -> ZohoConfig:
    """The stored connection with its secrets, for one Books organization (default: primary)."""
    row = store.connection(connection)
    if row is None:
        raise NotConnected("crmbooks is not connected yet: run `crmbooks connect` first")
    return ZohoConfig(
        accounts_url=row.accounts_url, api_url=row.api_url, crm_api_url=row.crm_api_url,
        books_api_url=row.books_api_url, client_id=row.client_id,
        client_secret=load_secret("client_secret", connection),
        refresh_token=load_secret("refresh_token", connection),
        books_org_id=org_id or row.books_org_id,
        # Emulators started with another Books limit say so at connect; real Zoho: 100.
        books_requests_per_minute=(row.books_org or {}).get("requests_per_minute") or 100,
    )


def get_runtime(org_id: str | None = None, connection: str = "default") -> Runtime:
    """The process-wide runtime for a Books organization, built on first use."""
    install_redaction()
    base = open_store()
    row = base.connection(connection)
    org = org_id or (row.books_org_id if row else None) or ""
    key = (str(base.engine.url), connection, org, row.updated_at if row else None)
    with _lock:
        runtime = _cache.get(key)
        if runtime is None:
            config = config_from_store(base, org, connection)
            store = Store(base.engine, org_id=org)
            owner = ((row.crm_org or {}).get("owner") or {}).get("id") if row else None
            runtime = Runtime(store, config, *shared_clients(store, config),
                              crm_owner_id=owner)
            _cache[key] = runtime
        return runtime


#: The runtime each recent run started with, by (run id, organization, connection).
_by_run: dict[tuple[str, str | None, str], Runtime] = {}
RUNS_REMEMBERED = 64


def runtime_of_run(run_id: str, org_id: str | None = None,
                   connection: str = "default") -> Runtime:
    """The runtime a run started with, looked up once per run.

    A run's steps ask for their runtime many times; `get_runtime` reads the stored connection
    each time (a query) to notice a `crmbooks connect` made meanwhile, which matters to a
    long-lived process between runs, not within one run.
    """
    key = (run_id, org_id, connection)
    runtime = _by_run.get(key)
    if runtime is None:
        runtime = get_runtime(org_id, connection)
        with _lock:
            _by_run[key] = runtime
            while len(_by_run) > RUNS_REMEMBERED:  # oldest first: dicts keep their order
                _by_run.pop(next(iter(_by_run)))
    return runtime


def shared_clients(store: Store, config: ZohoConfig) -> tuple[CrmClient, BooksClient]:
    """The CRM and Books clients of a connection as every process builds them: one access
    token for both and for every other process (kept in the state database, encrypted), and
    the Books organization's requests spaced across every process by its shared budget."""
    token = StoredToken(store, config)
    org = config.books_org_id or ""
    limiter = shared_limiter(store, config, org)
    pacer = shared_pacer(("books", config.books_url, org, str(store.engine.url)),
                         config.books_requests_per_minute, config.books_max_concurrency,
                         config.books_daily_limit, limiter=limiter)
    return (CrmClient(config, token_share=token),
            BooksClient(config, pacer=pacer, token_share=token))


_stores: dict[str, Store] = {}


def open_store() -> Store:
    """The process-wide store (one engine per database URL)."""
    from crmbooks.store.engine import database_url

    url = database_url()
    with _lock:
        if url not in _stores:
            _stores[url] = Store.open(url)
        return _stores[url]


def reset_runtime_cache() -> None:
    """Forget built runtimes (after `crmbooks connect` changed the connection)."""
    with _lock:
        for runtime in _cache.values():
            runtime.close()
        _cache.clear()
        _stores.clear()
        _by_run.clear()
