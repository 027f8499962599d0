"""Helpers for the connector unit tests: a fake Zoho behind httpx.MockTransport, a fake clock."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
from pydantic import SecretStr

from crmbooks.connectors.config import ZohoConfig
from crmbooks.connectors.pacing import Pacer
from crmbooks.connectors.zoho_books import BooksClient
from crmbooks.connectors.zoho_crm import CrmClient

SECRET = "s3cr3t-client-secret"
REFRESH = "1000.refresh-token-value"
ACCESS = "1000.access-token-value"


def config(**overrides) -> ZohoConfig:
    """A config pointing at fake hosts (never contacted: MockTransport answers)."""
    values = dict(accounts_url="https://accounts.test", api_url="https://api.test",
                  client_id="cid", client_secret=SecretStr(SECRET),
                  refresh_token=SecretStr(REFRESH), books_org_id="42", max_retries=3)
    values.update(overrides)
    return ZohoConfig(**values)


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def json_response(status: int, body, headers: dict | None = None) -> httpx.Response:
    """A JSON answer as Zoho sends it."""
    return httpx.Response(status, content=json.dumps(body).encode(), headers={
        "Content-Type": "application/json;charset=UTF-8", **(headers or {})})


class FakeZoho:
    """Routes requests: the token endpoint answers by itself, `api` handles the rest."""

    def __init__(self, api: Callable[[httpx.Request], httpx.Response], token_body=None):
        self.api = api
        self.requests: list[httpx.Request] = []
        self.token_requests = 0
        self.token_body = token_body or {"access_token": ACCESS, "expires_in": 3600,
                                         "token_type": "Bearer", "api_domain": "https://api.test"}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/oauth/v2/token":
            self.token_requests += 1
            body = self.token_body() if callable(self.token_body) else self.token_body
            return json_response(200, body)
        return self.api(request)

    @property
    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path != "/oauth/v2/token"]


def crm(fake: FakeZoho, clock: FakeClock | None = None, **overrides) -> CrmClient:
    """A CrmClient over MockTransport with no rate limit and a fake sleeper."""
    clock = clock or FakeClock()
    client = httpx.Client(transport=httpx.MockTransport(fake))
    return CrmClient(config(**overrides), client, pacer=Pacer(None, 4, clock=clock,
                                                               sleep=clock.sleep),
                     sleep=clock.sleep)


def books(fake: FakeZoho, clock: FakeClock | None = None, **overrides) -> BooksClient:
    """A BooksClient over MockTransport with no rate limit and a fake sleeper."""
    clock = clock or FakeClock()
    client = httpx.Client(transport=httpx.MockTransport(fake))
    return BooksClient(config(**overrides), client, pacer=Pacer(None, 4, clock=clock,
                                                                 sleep=clock.sleep),
                       sleep=clock.sleep)
