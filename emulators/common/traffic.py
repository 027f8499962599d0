"""Traffic rules every emulated product obeys: the Books request limits per organization, the CRM
limit of calls in flight, injected faults (errors, 429s, latency, dropped connections) and the
counting of every API request, applied by one ASGI middleware in front of the app."""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl

from emulators.common.config import EmulatorConfig
from emulators.common.envelopes import (
    JSON_CONTENT_TYPE,
    ApiError,
    DroppedConnection,
    Product,
    books_error,
    crm_error,
    internal_error,
    json_response,
    product_of,
)
from emulators.common.faults import Faults
from emulators.common.stats import Stats


class Limits:
    """Books requests per minute (a sliding window, `books_rate_window_s`) and per day per
    organization; CRM calls in flight."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        self.lock = threading.Lock()
        self.minute: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self.daily: dict[tuple[str, str], int] = collections.Counter()
        self.crm_in_flight = 0

    def clear(self) -> None:
        """Forget every request counted so far (a reset starts a fresh minute and day)."""
        with self.lock:
            self.minute.clear()
            self.daily.clear()

    def books_admit(self, org_id: str) -> ApiError | None:
        """Count one Books request; a 429 (with Retry-After) when over a limit."""
        now, today = time.monotonic(), datetime.now(UTC).date().isoformat()
        with self.lock:
            window, span = self.minute[org_id], self.config.books_rate_window_s
            while window and now - window[0] >= span:
                window.popleft()
            if len(window) >= self.config.books_rate_limit:
                retry = max(1, math.ceil(span - (now - window[0])))
                return limit_error(
                    "books", retry, 44,
                    "You have made too many requests per minute. Please try again later.",
                )
            if self.daily[(org_id, today)] >= self.config.books_daily_limit:
                midnight = datetime.combine(
                    datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC
                )
                retry = max(1, int((midnight - datetime.now(UTC)).total_seconds()))
                return limit_error(
                    "books", retry, 45,
                    "You have reached the maximum number of API calls allowed for the day.",
                )
            window.append(now)
            self.daily[(org_id, today)] += 1
        return None

    def crm_enter(self) -> ApiError | None:
        """Take a CRM concurrency slot; a 429 when every slot is busy (the CRM limits the
        calls in flight per organization, by edition)."""
        with self.lock:
            if self.crm_in_flight >= self.config.crm_concurrency:
                return limit_error("crm", 1, "TOO_MANY_REQUESTS", "too many concurrent requests")
            self.crm_in_flight += 1
        return None

    def crm_leave(self) -> None:
        """Give the CRM concurrency slot back."""
        with self.lock:
            self.crm_in_flight -= 1


def limit_error(product: Product, retry_after: int, code: Any, message: str) -> ApiError:
    """A 429 in the product's envelope with a Retry-After header."""
    headers = {"Retry-After": str(retry_after)}
    if product == "crm":
        error = crm_error(code, message, status=429)
    else:
        error = books_error(code, message, status=429)
    error.headers = headers
    return error


class Traffic(Protocol):
    """What the middleware needs from the emulator it guards."""

    faults: Faults
    limits: Limits
    stats: Stats

    def draw_fault(self) -> str | None:
        """The fault that hits the next API request, if any."""


class TrafficMiddleware:
    """Pure ASGI middleware, so that it can close a connection mid-answer (a dropped
    connection). Test controls pass straight through and are not counted."""

    def __init__(self, app, traffic: Traffic):
        self.app = app
        self.traffic = traffic
        self._table: list | None = None
        self._table_size = -1

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        product = product_of(scope["path"])
        if product == "control":
            return await self.app(scope, receive, send)  # test controls are not counted
        if product == "accounts":
            await self._forward(scope, receive, send)
            return None
        traffic = self.traffic
        if traffic.faults.latency_ms:
            await asyncio.sleep(traffic.faults.latency_ms / 1000)
        fault = traffic.draw_fault()
        if fault == "drop-before":
            self._count(scope, 0)
            await _drop(send)
        refusal = self._admit(scope, product)
        if refusal is None and fault in ("error", "429"):
            refusal = _injected(product, fault)
            if product == "crm":
                traffic.limits.crm_leave()  # the slot taken by _admit is not used after all
        if refusal is not None:
            self._count(scope, refusal.status)  # before the answer: see _forward
            await _send_error(send, refusal)
            return None
        try:
            if fault == "drop-after":
                await self._forward(scope, receive, _swallow, count=False)
                self._count(scope, 0)
                await _drop(send)
            await self._forward(scope, receive, send)
        finally:
            if product == "crm":
                traffic.limits.crm_leave()
        return None

    def _admit(self, scope, product: Product) -> ApiError | None:
        limits = self.traffic.limits
        if product == "crm":
            return limits.crm_enter()
        org = dict(parse_qsl(scope.get("query_string", b"").decode())).get("organization_id")
        return limits.books_admit(org) if org else None

    def _template(self, scope) -> tuple[str, dict]:
        """The route path a request matched (also for requests refused before routing)."""
        route = scope.get("route")
        if route is not None:
            return route.path, scope.get("path_params") or {}
        routes = self.app.router.routes
        if self._table is None or self._table_size != len(routes):
            # Rebuilt when routes were added at run time (a newly declared document type).
            self._table, self._table_size = _route_table(routes), len(routes)
        found = _match_route(self._table, scope)
        return found if found is not None else (scope["path"], {})

    async def _forward(self, scope, receive, send, count: bool = True) -> int:
        """Run the app; count the request (unless `count` is False) just before the last byte
        of its answer is sent, so a client that has its answer also finds the request in the
        log (tests clear the log right after a write: counted later, it leaked past the
        clear and looked like a write of the code under test)."""
        seen = {"status": 500, "counted": False}

        async def capture(message):
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif (count and message["type"] == "http.response.body"
                  and not message.get("more_body")):
                self._count(scope, seen["status"])
                seen["counted"] = True
            await send(message)

        await self.app(scope, receive, capture)
        if count and not seen["counted"]:
            self._count(scope, seen["status"])
        return seen["status"]

    def _count(self, scope, status: int) -> None:
        template, params = self._template(scope)
        for name, value in params.items():
            if name in ("version", "prefix"):
                template = template.replace("{" + name + "}", str(value))
        query = scope.get("query_string", b"").decode(errors="replace")
        self.traffic.stats.record(f"{scope['method']} {template}", status, scope["method"],
                                  scope["path"], query)


def _route_table(routes) -> list[tuple[Any, str, set]]:
    """(regex, template, methods) for every route, looking inside included routers too.

    FastAPI >= 0.150 keeps included routers as `_IncludedRouter` objects whose effective
    candidates carry the full path; older versions flatten them. Both shapes are walked.
    """
    from starlette.routing import compile_path

    table = []
    for candidate in routes:
        effective = getattr(candidate, "effective_candidates", None)
        if effective is not None:
            table.extend(_route_table(effective()))
            continue
        path = getattr(candidate, "path", None)
        if path is None:
            continue
        original = getattr(candidate, "original_route", candidate)
        regex, _, _ = compile_path(path)
        table.append((regex, path, set(getattr(original, "methods", None) or ())))
    return table


def _match_route(table, scope) -> tuple[str, dict] | None:
    """The template and path parameters of the first route matching path and method."""
    for regex, template, methods in table:
        found = regex.match(scope["path"])
        if found and (not methods or scope["method"] in methods):
            return template, found.groupdict()
    return None


async def _swallow(message) -> None:
    """A `send` that throws the answer away (the client never sees it)."""


async def _drop(send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", JSON_CONTENT_TYPE.encode()),
                            (b"content-length", b"1000")]})
    raise DroppedConnection()


def _injected(product: Product, kind: str) -> ApiError:
    if kind == "429":
        if product == "crm":
            return limit_error("crm", 1, "TOO_MANY_REQUESTS", "too many requests")
        return limit_error("books", 1, 44, "You have made too many requests. Try again later.")
    return internal_error(product)


async def _send_error(send, error: ApiError) -> None:
    response = json_response(error.body, error.status, error.headers)
    await response({"type": "http"}, None, send)


class _DropFilter(logging.Filter):
    """Keeps injected connection drops out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


logging.getLogger("uvicorn.error").addFilter(_DropFilter())
