"""One access token per connection and one request budget per Books organization, shared by
every process through the state database, shown against the emulators' Zoho limits: the
access-token refresh limit per refresh token, and Books' requests per organization in a
sliding window."""

from __future__ import annotations

import secrets
from datetime import datetime

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import Session, select

from crmbooks.runtime import get_runtime, reset_runtime_cache
from crmbooks.sharing import StoredToken
from crmbooks.store.tables import SharedToken
from flows.customers import sync_customers
from support.customers import clear_stats, unpaced
from support.sharing import emulator_stats, go, set_limits, start_children

TOKEN_PATH = "/oauth/v2/token"


@pytest.fixture
def own_refresh_token(connected, emu_reset, monkeypatch):
    """A refresh token of this test alone (Zoho's limit counts per refresh token), allowed
    two access tokens in ten minutes; the limit is lifted afterwards."""
    token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
    httpx.post(f"{emu_reset.base_url}/__emulator__/tokens",
               json={"refresh_token": token}).raise_for_status()
    monkeypatch.setenv("CRMBOOKS_REFRESH_TOKEN", token)
    reset_runtime_cache()
    set_limits(emu_reset, token_refresh_limit_per_10min=2)
    clear_stats(emu_reset)
    try:
        yield token
    finally:
        set_limits(emu_reset, token_refresh_limit_per_10min=None)
        emu_reset.emu.tokens.revoke(token)


def _token_answers(server) -> list[int]:
    log = httpx.get(f"{server.base_url}/__emulator__/log", params={"limit": 5000}).json()
    return [e["status"] for e in log["requests"] if e["path"] == TOKEN_PATH]


def test_twenty_runs_in_a_row_mint_one_token(own_refresh_token, connected, emu_reset,
                                             monkeypatch):
    unpaced(monkeypatch)  # about tokens: Books pacing would only add 0.6 s a run
    # Nineteen runs in a row, each as a new process builds it (a fresh runtime: nothing cached
    # in memory), each reading both sides, then a full customers sync: the first mints, the
    # others reuse its token.
    for _ in range(19):
        reset_runtime_cache()
        runtime = get_runtime()
        assert runtime.crm.org() and runtime.books.organization()
    reset_runtime_cache()
    state = sync_customers(return_state=True)
    assert state.is_completed(), state.message
    assert _token_answers(emu_reset) == [200]  # one token, no refusal
    assert StoredToken(connected, get_runtime().config).refreshes() == 1


def _books_times(server) -> list[float]:
    """When the emulator took each Books request, in seconds, oldest first."""
    log = httpx.get(f"{server.base_url}/__emulator__/log", params={"limit": 5000}).json()
    return sorted(datetime.fromisoformat(e["time"]).timestamp() for e in log["requests"]
                  if e["path"].startswith("/books/"))


def test_the_shared_token_is_kept_encrypted_and_other_secrets_cannot_read_it(
        connected, emu_reset):
    runtime = get_runtime()
    runtime.crm.org()
    token, _ = StoredToken(connected, runtime.config).current()
    with Session(connected.engine) as session:
        row = session.exec(select(SharedToken)).one()
    assert token not in str(row.model_dump())
    assert runtime.config.refresh_token.get_secret_value() not in str(row.model_dump())
    # A connection whose client secret changed finds no usable token (it mints its own)
    # instead of failing on a row it cannot decrypt.
    other = runtime.config.model_copy(update={"client_secret": SecretStr("x" * 42)})
    share = StoredToken(connected, other)
    share.key = StoredToken(connected, runtime.config).key
    assert share.current() is None


def test_three_processes_at_once_share_one_token_and_the_organizations_budget(
        own_refresh_token, connected, emu_reset, capsys):
    """A customers run, an items run and a burst of transaction reads, each in its own
    process, all starting with an expired token: one refresh among them, no 429."""
    # Books' 100 requests per sliding minute, three times faster: 100 per 20 s.
    limit, window, seconds = 100, 20.0, 8.0
    set_limits(emu_reset, books_rate_limit=limit, books_rate_window_s=window)
    get_runtime().crm.org()  # the first token (of the two this refresh token may mint)
    httpx.post(f"{emu_reset.base_url}/__emulator__/tokens/expire").raise_for_status()
    children = start_children(["customers", "items", "transactions"],
                              books_per_minute=limit * 60 / window)
    clear_stats(emu_reset)
    reports = go(children, seconds=seconds)

    # One refresh among the three, under the lock; the refresh limit is never reached.
    assert sum(r["minted"] for r in reports) == 1, reports
    assert _token_answers(emu_reset) == [200]
    assert StoredToken(connected, get_runtime().config).refreshes() == 2
    # The organization's budget: no 429, and at least 90 % of it used by the three together.
    responses = emulator_stats(emu_reset)["responses"]
    assert responses.get("429", 0) == 0 and responses.get("400", 0) == 0, responses
    assert all(r["books"] > 0 for r in reports), reports
    # Paced alone, each process would send 97 % of the limit: three times the budget, and
    # 429s within 7 s. Shared, they send at the organization's rate together.
    times = _books_times(emu_reset)
    rate = (len(times) - 1) / (times[-1] - times[0])
    use = rate / (limit / window)
    assert use >= 0.9, (len(times), times[-1] - times[0])
    with capsys.disabled():
        print(f"\nshared budget: {len(times)} Books requests in {times[-1] - times[0]:.1f} s, "
              f"{use:.0%} of {limit} per {window:.0f} s; 429s: 0; token refreshes: 1 among "
              f"{len(reports)} processes")
