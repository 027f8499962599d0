"""`ZohoHttp`: pace → send → classify → retry → count, for one Zoho system.

Both clients send every request through `ZohoHttp.request`. It wraps one long-lived, injected
`httpx.Client` (https://www.python-httpx.org/advanced/clients/: a client pools connections,
module-level `httpx.get` does not).

Retries. Retriable faults (429, 5xx, timeouts, dropped connections; `errors.classify`) are
retried up to `max_retries` times with full-jitter exponential backoff, or after Retry-After
when Zoho sends one (that pause applies to the whole organization, see pacing.py).

Writes and dropped connections. A request that is not idempotent (a plain create: POST
/crm/v8/{module}, POST /books/v3/{resource}) is retried only when it certainly never reached
Zoho: a connect error or pool timeout (httpx raises `ConnectError`/`ConnectTimeout`/
`PoolTimeout` before a byte is sent, https://www.python-httpx.org/exceptions/), a 429, or a
failure of the token request that precedes it. After a read timeout, a dropped answer or a
5xx, Zoho may have applied the create, so it is surfaced as `RetriableError(maybe_applied=True)`
instead of being replayed into a duplicate. The flows avoid that case altogether by writing
with upserts, which are idempotent and always retried: CRM `POST /{module}/upsert` with
`duplicate_check_fields` on a unique field, Books `PUT /{resource}` with
`X-Unique-Identifier-Key/Value` + `X-Upsert`, so a replayed push never creates twice.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from crmbooks.connectors.auth import TOKEN_ENDPOINT, ZohoOAuth
from crmbooks.connectors.errors import (
    RetriableError,
    ZohoError,
    classify,
    parse_json,
)
from crmbooks.connectors.pacing import Pacer

log = logging.getLogger("crmbooks.connectors")

# Never sent, so always safe to replay (https://www.python-httpx.org/exceptions/).
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_IDEMPOTENT_METHODS = {"GET", "PUT", "DELETE", "HEAD", "PATCH"}


class CallCounter:
    """Requests per system and per 'METHOD /path/{template}'; thread-safe, diff-able."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, system: str, endpoint: str, n: int = 1) -> None:
        """Count `n` requests (attempts, retries included: each one spends Zoho's quota)."""
        with self._lock:
            self._counts[(system, endpoint)] += n

    def snapshot(self) -> dict[str, int]:
        """{'crm GET /crm/v8/{module}': 12, …} at this moment."""
        with self._lock:
            return {f"{s} {e}": n for (s, e), n in sorted(self._counts.items())}

    def by_system(self) -> dict[str, int]:
        """Totals per system ('crm', 'books', 'accounts')."""
        totals: Counter[str] = Counter()
        with self._lock:
            for (system, _), n in self._counts.items():
                totals[system] += n
        return dict(totals)

    @property
    def total(self) -> int:
        """All requests counted so far."""
        with self._lock:
            return sum(self._counts.values())

    @staticmethod
    def diff(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
        """What happened between two snapshots (non-zero entries only)."""
        keys = set(after) | set(before)
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in sorted(keys)}
        return {k: v for k, v in delta.items() if v}


@dataclass(frozen=True)
class Reply:
    """A successful answer: status (200/201/204/207/304…), JSON body (Decimal numbers)."""

    status: int
    body: Any
    headers: httpx.Headers


# json.dumps writes a NUL as the six characters \u0000; text fields never contain NULs.
_MARK = "\\u0000dec\\u0000"


def dumps(value: Any) -> str:
    """JSON text in which `Decimal` stays an exact JSON number (json.dumps would need float)."""
    text = json.dumps(_prepare(value), ensure_ascii=False, separators=(",", ":"))
    return text.replace(f'"{_MARK}', "").replace(f'{_MARK}"', "")


def _prepare(value: Any) -> Any:
    # Decimals become marker strings that dumps() unquotes: exact digits, no float detour.
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a valid JSON number")
        return f"\x00dec\x00{value:f}\x00dec\x00"
    if isinstance(value, dict):
        return {str(k): _prepare(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_prepare(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class ReadWatch:
    """What the server's clock said while a read was under way: `began` is a moment at or
    before the server ran the read's first query (the earliest answer's Date header minus the
    time that request took), or None when no answer carried a Date.

    A record the server stamps with second S before that moment is in the read, so a cursor
    may skip second S once `began` is past its end: a later change gets a later stamp.
    """

    def __init__(self):
        self.began: datetime | None = None

    def saw(self, response: httpx.Response, elapsed_s: float) -> None:
        """Note one answer of the read and how long its request took."""
        try:
            date_header = parsedate_to_datetime(response.headers["date"])
        except (KeyError, TypeError, ValueError):
            return
        moment = date_header - timedelta(seconds=elapsed_s)
        if self.began is None or moment < self.began:
            self.began = moment


class ZohoHttp:
    """Sends requests for one system ('crm' or 'books') with pacing, retries and counting."""

    def __init__(
        self,
        system: str,
        base_url: str,
        client: httpx.Client,
        auth: ZohoOAuth,
        pacer: Pacer,
        counter: CallCounter,
        *,
        max_retries: int = 5,
        max_retry_after_s: float = 300.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ):
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.auth = auth
        self.pacer = pacer
        self.counter = counter
        self.max_retries = max_retries
        self.max_retry_after_s = max_retry_after_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._sleep = sleep
        self._rng = rng
        self._local = threading.local()
        auth.before_resend = self._before_resend
        auth.on_token_request = self.count_token_request

    def __repr__(self) -> str:
        return f"ZohoHttp({self.system!r}, {self.base_url!r})"

    @contextmanager
    def watch(self) -> Iterator[ReadWatch]:
        """Watch the server's clock over the requests this thread sends inside the block."""
        watches = self._local.__dict__.setdefault("watches", [])
        read = ReadWatch()
        watches.append(read)
        try:
            yield read
        finally:
            watches.remove(read)

    def request(
        self,
        method: str,
        template: str,
        *,
        path: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Reply:
        """Send `method template` (e.g. 'GET', '/crm/v8/{module}') until success or a final
        error. Path parameters are URL-quoted; `body` is sent as JSON with exact Decimals."""
        endpoint = f"{method} {template}"
        if idempotent is None:
            idempotent = method in _IDEMPOTENT_METHODS
        url = self.base_url + template.format(**{k: quote(str(v), safe="") for k, v in
                                                 (path or {}).items()})
        content = dumps(body) if body is not None else None
        all_headers = dict(headers or {})
        if content is not None:
            # The official SDK parses by Content-Type; Zoho expects it on bodies.
            all_headers["Content-Type"] = "application/json;charset=UTF-8"
        attempt = 0
        while True:
            error = self._attempt(method, url, endpoint, params, content, all_headers,
                                  idempotent)
            if isinstance(error, Reply):
                return error
            attempt += 1
            self._wait_or_raise(error, endpoint, attempt)

    def _attempt(self, method, url, endpoint, params, content, headers, idempotent):
        request = self.client.build_request(method, url, params=_clean(params),
                                            content=content, headers=headers)
        started = time.monotonic()
        with self.pacer.slot(endpoint):
            self.counter.add(self.system, endpoint)
            self._local.endpoint = endpoint
            sent = time.monotonic()
            try:
                response = self.client.send(request, auth=self.auth)
            except ZohoError as exc:  # raised by the auth flow (token request failed)
                return exc
            except httpx.TransportError as exc:
                return self._transport_error(exc, endpoint, idempotent)
            for read in self._local.__dict__.get("watches", ()):
                read.saw(response, time.monotonic() - sent)
        log.debug("%s -> %s in %.0f ms", endpoint, response.status_code,
                  (time.monotonic() - started) * 1000)
        error = classify(response, endpoint)
        if error is None:
            return Reply(response.status_code, parse_json(response), response.headers)
        if isinstance(error, RetriableError) and not idempotent and response.status_code != 429:
            error.maybe_applied = True
        return error

    def _transport_error(self, exc: httpx.TransportError, endpoint: str,
                         idempotent: bool) -> RetriableError:
        sent = self.auth.api_request_sent and not isinstance(exc, _NOT_SENT)
        kind = type(exc).__name__
        return RetriableError(
            f"{endpoint}: the connection failed ({kind}); Zoho may be unreachable or slow",
            endpoint=endpoint, maybe_applied=sent and not idempotent)

    def _wait_or_raise(self, error: ZohoError, endpoint: str, attempt: int) -> None:
        if not isinstance(error, RetriableError):
            raise error
        if error.maybe_applied:
            raise RetriableError(
                f"{error} — not retried: this create may already be applied at Zoho, and a "
                "replay could duplicate it; write with an upsert (CRM duplicate_check_fields, "
                "Books unique custom field) or look the record up before trying again",
                endpoint=endpoint, status=error.status, code=error.code, maybe_applied=True)
        if attempt > self.max_retries:
            raise RetriableError(f"{error} (gave up after {attempt} attempts)",
                                 endpoint=endpoint, status=error.status, code=error.code,
                                 retry_after=error.retry_after)
        delay = self._delay(error, attempt)
        log.warning("%s: %s; retry %d/%d in %.1f s", endpoint, _short(error), attempt,
                    self.max_retries, delay)
        self._sleep(delay)

    def _delay(self, error: RetriableError, attempt: int) -> float:
        if error.retry_after is not None:
            if error.retry_after > self.max_retry_after_s:
                raise RetriableError(
                    f"{error} (Zoho asks to wait {error.retry_after:.0f} s, longer than "
                    f"max_retry_after_s={self.max_retry_after_s:.0f}: the daily or minute "
                    "budget is spent; run again later)", endpoint=error.endpoint,
                    status=error.status, code=error.code, retry_after=error.retry_after)
            # Pause the whole organization: the other threads would be refused too.
            self.pacer.pause(error.retry_after)
            return error.retry_after
        # Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): spreads the
        # retries of parallel workers instead of synchronising them.
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
        return ceiling * self._rng()

    def _before_resend(self) -> None:
        # The auth flow replays a request after a 401 + refresh: pace and count it too.
        self.pacer.before_resend()
        self.counter.add(self.system, getattr(self._local, "endpoint", "?"))

    def count_token_request(self) -> None:
        """Hook for ZohoOAuth: a call to Zoho Accounts also counts."""
        self.counter.add("accounts", TOKEN_ENDPOINT)


def _short(error: ZohoError) -> str:
    return f"HTTP {error.status} {error.code}" if error.status else str(error).split(";")[0]


def _clean(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Drop None values; booleans as Zoho's lowercase true/false."""
    if not params:
        return None
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return out
