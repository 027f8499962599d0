"""One access token per connection and one request budget per Books organization, shared by
every process (CLI runs, scheduled and event-driven flow runs, workers on other hosts) through
the state database.

Token. The row is keyed by a fingerprint of the credentials (SHA-256 of Accounts URL, client id
and refresh token: a hash reveals none of them) and holds the access token encrypted with
Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`), under a key derived from the client
secret and the refresh token. Those two stay where they always were (the environment or Prefect
Secret blocks), so the database alone, a dump of it or a log of its rows, holds nothing usable.
A row that does not decrypt (the secret was changed) counts as no token.

Budget. Each Books request takes the next slot of the organization's row: slots are
`60 / (limit * 0.97)` seconds apart, the spacing a single process used before, now across
every process. When slots are very close (a test lifting the limit) a process reserves a few
at once so that the database is not written for every request.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cryptography.fernet import Fernet, InvalidToken

from crmbooks.connectors.config import ZohoConfig
from crmbooks.connectors.pacing import DEFAULT_HEADROOM
from crmbooks.store import Store

#: A process reserves at least this much of an organization's time per database write.
RESERVE_SPAN_S = 0.05


def token_key(config: ZohoConfig) -> str:
    """The fingerprint naming a connection's shared token row (not secret: a one-way hash)."""
    material = "\n".join(("crmbooks-token-row", config.accounts_url, config.client_id,
                          config.refresh_token.get_secret_value()))
    return hashlib.sha256(material.encode()).hexdigest()


def _fernet(config: ZohoConfig) -> Fernet:
    material = "\n".join(("crmbooks-token-key", config.client_secret.get_secret_value(),
                          config.refresh_token.get_secret_value()))
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest()))


class _Slot:
    """The locked row seen through the cipher (connectors.auth.TokenSlot)."""

    def __init__(self, row, share: StoredToken):
        self._row, self._share = row, share

    def token(self) -> tuple[str, float] | None:
        """The decrypted token and its expiry, or None."""
        return self._share.decrypt(self._row.ciphertext, self._row.expires_at)

    def store(self, token: str, expires_at: float) -> None:
        """Encrypt and keep a new token."""
        self._row.store(self._share.cipher.encrypt(token.encode()).decode(), expires_at)


class StoredToken:
    """A connection's access token in the state database (connectors.auth.TokenShare)."""

    def __init__(self, store: Store, config: ZohoConfig):
        self.store = store
        self.key = token_key(config)
        self.cipher = _fernet(config)

    def decrypt(self, ciphertext: str | None, expires_at: float) -> tuple[str, float] | None:
        """The token in clear, or None when there is none or it was kept under other secrets."""
        if not ciphertext:
            return None
        try:
            return self.cipher.decrypt(ciphertext.encode()).decode(), expires_at
        except InvalidToken:
            return None

    def current(self) -> tuple[str, float] | None:
        """The kept token without a lock."""
        ciphertext, expires_at, _ = self.store.shared_token(self.key)
        return self.decrypt(ciphertext, expires_at)

    @contextmanager
    def locked(self) -> Iterator[_Slot]:
        """The kept token under the row's lock (one refreshing process at a time)."""
        with self.store.locked_token(self.key) as row:
            yield _Slot(row, self)

    def refreshes(self) -> int:
        """How many tokens every process of this connection has minted into the row."""
        return self.store.shared_token(self.key)[2]


class SharedLimiter:
    """Even spacing of one Books organization's requests across processes
    (connectors.pacing.Limiter), kept in the state database."""

    def __init__(self, store: Store, key: str, per_minute: float | None, *,
                 headroom: float = DEFAULT_HEADROOM,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.store = store
        self.key = key
        self.per_minute = per_minute
        self.interval = 0.0 if not per_minute else 60.0 / (per_minute * headroom)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._reserved: deque[float] = deque()  # slots this process holds, in order

    def acquire(self) -> float:
        """Block until this process's next slot; returns the seconds waited."""
        if not self.per_minute:
            return 0.0
        with self._lock:
            now = self._clock()
            while self._reserved and self._reserved[0] < now - self.interval:
                self._reserved.popleft()  # a slot left unused long ago: not worth keeping
            if not self._reserved:
                count = max(1, int(RESERVE_SPAN_S / self.interval))
                first = self.store.reserve_requests(self.key, self.interval, count, now)
                self._reserved.extend(first + i * self.interval for i in range(count))
            slot = self._reserved.popleft()
        wait = slot - self._clock()
        if wait > 0:
            self._sleep(wait)
            return wait
        return 0.0

    def pause(self, seconds: float) -> None:
        """Hold every process of the organization for `seconds` (a 429's Retry-After)."""
        until = self._clock() + seconds
        with self._lock:
            self._reserved = deque(s for s in self._reserved if s >= until)
        self.store.hold_requests(self.key, until)


_limiters: dict[tuple, SharedLimiter] = {}
_limiters_lock = threading.Lock()


def budget_key(config: ZohoConfig, org_id: str) -> str:
    """The name of a Books organization's shared budget."""
    return f"books {config.books_url} {org_id}"


def shared_limiter(store: Store, config: ZohoConfig, org_id: str) -> SharedLimiter:
    """This process's handle on an organization's shared budget (one per database and rate)."""
    key = (str(store.engine.url), budget_key(config, org_id), config.books_requests_per_minute)
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = SharedLimiter(store, key[1], config.books_requests_per_minute)
            _limiters[key] = limiter
        return limiter
