"""Client-side pacing: an even-spacing rate limiter and a concurrency bound per organization.

Zoho Books counts about 100 requests per rolling minute per organization
(docs/zoho-api-notes.md, "Books rate limits") and the emulator enforces exactly that with a
sliding 60 s window. A token bucket with a burst
would front-load requests and then hit the window; spacing requests evenly (burst of 1) at
slightly under the limit never does. A 429's Retry-After pauses the whole limiter, so every
thread backs off, not only the one that was refused.

Clock and sleep are injected so tests check the arithmetic without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Protocol

from crmbooks.connectors.errors import FatalError

# Spacing at exactly 60/N s leaves no room for network jitter against a sliding window:
# one late request and one early one put N+1 in the same 60 s. 3% below the limit absorbs it.
DEFAULT_HEADROOM = 0.97


class Limiter(Protocol):
    """What a Pacer needs of a rate limiter: this process's `RateLimiter`, or one whose spacing
    every process of an organization shares (crmbooks/sharing.py)."""

    per_minute: float | None

    def acquire(self) -> float:
        """Block until this caller may send; returns the seconds waited."""

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` from now."""


class RateLimiter:
    """Grants at most `per_minute` requests per minute, evenly spaced; thread-safe."""

    def __init__(
        self,
        per_minute: float | None,
        *,
        headroom: float = DEFAULT_HEADROOM,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.per_minute = per_minute
        self.interval = 0.0 if not per_minute else 60.0 / (per_minute * headroom)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0  # the earliest clock time the next request may go
        self._epoch = 0  # bumped by pause(): waiters re-queue behind the pause

    def acquire(self) -> float:
        """Block until this caller may send; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                slot = max(now, self._next)
                self._next = slot + self.interval
                epoch = self._epoch
            if slot > now:
                self._sleep(slot - now)
                waited += slot - now
            with self._lock:
                if epoch == self._epoch:
                    return waited

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` from now (a 429's Retry-After)."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)
            self._epoch += 1


class DailyBudget:
    """Counts requests per UTC day against a cap (Books' per-plan daily limit)."""

    def __init__(self, limit: int | None, today: Callable[[], date] | None = None):
        self.limit = limit
        self._today = today or (lambda: datetime.now(UTC).date())
        self._lock = threading.Lock()
        self._day: date | None = None
        self.used = 0

    def take(self, what: str) -> None:
        """Count one request, or raise FatalError when the day's budget is spent."""
        if self.limit is None:
            return
        with self._lock:
            today = self._today()
            if today != self._day:
                self._day, self.used = today, 0
            if self.used >= self.limit:
                raise FatalError(
                    f"{what}: the daily budget of {self.limit} requests is spent; the sync "
                    "resumes tomorrow, or raise books_daily_limit if your Zoho plan allows more")
            self.used += 1


class Pacer:
    """Rate limiter + concurrency semaphore (+ optional daily budget) for one organization."""

    def __init__(
        self,
        per_minute: float | None,
        max_concurrency: int,
        *,
        daily_limit: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        limiter: Limiter | None = None,
    ):
        self.limiter = limiter or RateLimiter(per_minute, clock=clock, sleep=sleep)
        self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self.budget = DailyBudget(daily_limit)

    @contextmanager
    def slot(self, what: str) -> Iterator[None]:
        """Hold a concurrency slot, then wait for the rate limiter; release when done."""
        self.budget.take(what)
        with self._slots:
            self.limiter.acquire()
            yield

    def pause(self, seconds: float) -> None:
        """Pause every request of this organization (Retry-After)."""
        self.limiter.pause(seconds)

    def before_resend(self) -> None:
        """Pace the replay of a request after a token refresh (the slot is already held)."""
        self.limiter.acquire()


_SHARED: dict[tuple, Pacer] = {}
_SHARED_LOCK = threading.Lock()


def shared_pacer(key: tuple, per_minute: float | None, max_concurrency: int,
                 daily_limit: int | None = None, limiter: Limiter | None = None) -> Pacer:
    """One pacer per (host, organization) per process, so two clients of the same Books
    organization share its budget instead of each taking the full rate; `limiter` (used when
    the pacer is made) spaces the requests of every process instead of this one's."""
    with _SHARED_LOCK:
        pacer = _SHARED.get(key)
        if pacer is None or (pacer.limiter.per_minute, pacer.max_concurrency) != (
            per_minute, max_concurrency
        ):
            pacer = Pacer(per_minute, max_concurrency, daily_limit=daily_limit, limiter=limiter)
            _SHARED[key] = pacer
        return pacer
