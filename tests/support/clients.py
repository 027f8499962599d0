"""Connector clients pointed at an emulator server, each with its own pacer and quick backoff."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from crmbooks.connectors.config import ZohoConfig
from crmbooks.connectors.pacing import Pacer
from crmbooks.connectors.zoho_books import BooksClient
from crmbooks.connectors.zoho_crm import CrmClient


def emulator_config(server, **overrides) -> ZohoConfig:
    """A ZohoConfig for the running emulator: one base URL serves Accounts, CRM and Books."""
    emu = server.emu.config
    values = dict(accounts_url=server.base_url, api_url=server.base_url,
                  client_id=emu.client_id, client_secret=SecretStr(emu.client_secret),
                  refresh_token=SecretStr(emu.refresh_token), books_org_id=emu.books_org_ids[0],
                  books_requests_per_minute=100_000, read_timeout_s=20, max_retries=6)
    values.update(overrides)
    return ZohoConfig(**values)


def make_crm(server, **overrides) -> CrmClient:
    """A CrmClient with its own pacer (tests must not share limiter state) and quick backoff."""
    config = emulator_config(server, **overrides)
    client = CrmClient(config, httpx.Client(timeout=config.timeout),
                       pacer=Pacer(config.crm_requests_per_minute, config.crm_max_concurrency))
    client.http.backoff_base_s = 0.05  # the emulator's faults are not load: retry fast
    return client


def make_books(server, **overrides) -> BooksClient:
    """A BooksClient with its own pacer and quick backoff."""
    config = emulator_config(server, **overrides)
    pacer = Pacer(config.books_requests_per_minute, config.books_max_concurrency,
                  daily_limit=config.books_daily_limit)
    client = BooksClient(config, httpx.Client(timeout=config.timeout), pacer=pacer)
    client.http.backoff_base_s = 0.05
    return client
