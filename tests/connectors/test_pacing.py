"""Pacing arithmetic with a fake clock: even spacing, pauses, concurrency, daily budget."""

from __future__ import annotations

from datetime import date

import pytest

from crmbooks.connectors.errors import FatalError
from crmbooks.connectors.pacing import DailyBudget, Pacer, RateLimiter
from support.connector_fakes import FakeClock


def test_requests_are_spaced_evenly_with_headroom():
    clock = FakeClock(0.0)
    limiter = RateLimiter(600, headroom=0.97, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        limiter.acquire()
    interval = 60 / (600 * 0.97)
    assert clock.now == pytest.approx(99 * interval)
    # Any 60 s window holds fewer than 600 requests: the emulator's sliding window is safe.
    assert 60 / interval < 600


def test_no_wait_when_calls_are_slower_than_the_rate():
    clock = FakeClock(0.0)
    limiter = RateLimiter(60, headroom=1.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 5
    assert limiter.acquire() == 0.0


def test_pause_holds_the_next_callers():
    clock = FakeClock(0.0)
    limiter = RateLimiter(600, headroom=1.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.pause(30)
    limiter.acquire()
    assert clock.now == pytest.approx(30)
    limiter.acquire()
    assert clock.now == pytest.approx(30.1)


def test_unlimited_limiter_never_sleeps():
    clock = FakeClock(0.0)
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        limiter.acquire()
    assert clock.sleeps == []


def test_daily_budget_stops_with_a_clear_message_and_resets_next_day():
    today = {"d": date(2026, 1, 1)}
    budget = DailyBudget(2, today=lambda: today["d"])
    budget.take("GET /books/v3/contacts")
    budget.take("GET /books/v3/contacts")
    with pytest.raises(FatalError, match="books_daily_limit"):
        budget.take("GET /books/v3/contacts")
    today["d"] = date(2026, 1, 2)
    budget.take("GET /books/v3/contacts")


def test_pacer_bounds_concurrency():
    pacer = Pacer(None, 2)
    with pacer.slot("x"), pacer.slot("y"):
        assert not pacer._slots.acquire(blocking=False)
    assert pacer._slots.acquire(blocking=False)
