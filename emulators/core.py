"""The emulator core: configuration, OAuth (Zoho Accounts), faults, limits, counters, controls.

One `Emulator` serves Zoho Accounts (`/oauth/v2/...`), Zoho CRM (`/crm/v2..v8/...`) and Zoho Books
(`/books/v3/...` and the legacy `/api/v3/...`) on one base URL; their paths do not collide. The
product routers live in `emulators.crm` and `emulators.books`; this module owns what is shared:
who may call (tokens and scopes), what goes wrong (faults, rate limits) and what was called
(counters and the request log). Test controls live under `/__emulator__/`, a prefix the real APIs
do not have. Contract and sources: ../shared/reference/zoho-api.md (cited as "ref §n").
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import random
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
Product = Literal["crm", "books", "accounts", "control"]

# The scopes the demo refresh token carries: everything crmbooks needs on both products.
DEFAULT_SCOPES = (
    "ZohoCRM.modules.ALL",
    "ZohoCRM.settings.ALL",
    "ZohoCRM.users.READ",
    "ZohoCRM.org.READ",
    "ZohoCRM.coql.READ",
    "ZohoCRM.notifications.ALL",
    "ZohoBooks.fullaccess.all",
)


@dataclass
class Sizes:
    """How much sample data to seed; each field is a `crmbooks emulators` flag."""

    accounts: int = 40
    contacts_per_account: int = 2
    unassociated_contacts: int = 5
    vendors: int = 15
    products: int = 40
    deals: int = 20
    books_customers: int = 15
    books_vendors: int = 5
    books_items: int = 10


@dataclass
class EmulatorConfig:
    """Everything that makes one emulated Zoho installation (defaults: see the README)."""

    seed: int = 7
    sizes: Sizes = field(default_factory=Sizes)
    client_id: str = "crmbooks-demo"
    client_secret: str = "crmbooks-demo-secret"
    refresh_token: str = "crmbooks-demo-refresh"
    token_lifetime_s: int = 3600  # ref §2: access tokens live one hour
    # ref §2: at most 10 access tokens per refresh token per 10 minutes; None = not enforced,
    # because a test session legitimately refreshes far more often than a production run.
    token_refresh_limit_per_10min: int | None = None
    books_org_ids: list[str] = field(default_factory=lambda: ["20099001"])
    books_org_name: str = "Zylker Books Ltd"
    books_org_email: str = "finance@zylker.example"
    books_currency: str = "USD"
    books_country: str = "U.S.A"
    books_rate_limit: int = 100  # ref §4.11: requests per minute per organization
    books_daily_limit: int = 10000  # ref §4.11: per organization, by plan
    crm_concurrency: int = 15  # ref §3.11: Professional edition
    crm_edition: str = "Professional"
    crm_currency: str = "USD"
    crm_multi_currency: bool = False
    crm_org_name: str = "Zylker CRM"


@dataclass
class Faults:
    """Injected faults, reproducible from `seed`. All rates are probabilities per API request."""

    error_rate: float = 0.0  # 5xx answers (product envelope)
    rate_429: float = 0.0  # 429 answers with Retry-After
    drop_rate: float = 0.0  # connection closed without a complete answer
    latency_ms: int = 0  # added to every API request
    expire_tokens_after: int | None = None  # an access token stops working after N requests
    search_lag_s: float = 0.0  # CRM search does not see records written this recently
    seed: int = 0

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Faults:
        """Build from the control endpoint's JSON; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        return cls(**raw)

    @classmethod
    def parse_spec(cls, spec: str) -> Faults:
        """Parse the command-line form `error_rate=0.1,rate_429=0.05,latency_ms=50`."""
        raw: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"fault '{part}' needs the form name=value")
            raw[key.strip()] = float(value) if "." in value else int(value)
        return cls.from_dict(raw)


class ApiError(Exception):
    """An API answer that is not a success; the core renders it with its status and headers."""

    def __init__(self, status: int, body: dict | None, headers: dict | None = None):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


class DroppedConnection(Exception):
    """Raised after the response started, so the server closes the socket mid-answer."""


def crm_error(
    code: str, message: str, details: dict | None = None, status: int = 400
) -> ApiError:
    """A CRM error envelope (ref §3.1): {"code","details","message","status":"error"}."""
    return ApiError(
        status, {"code": code, "details": details or {}, "message": message, "status": "error"}
    )


def books_error(code: int, message: str, status: int = 400) -> ApiError:
    """A Books error envelope (ref §4.10): non-zero code and a message, no status field."""
    return ApiError(status, {"code": code, "message": message})


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON answer with Zoho's content type; Decimals are written as JSON numbers."""
    text = json.dumps(body, default=_json_default, ensure_ascii=False)
    return Response(text, status_code=status, headers=headers, media_type=JSON_CONTENT_TYPE)


def empty_response(status: int) -> Response:
    """204 / 304: no body at all, as Zoho sends them (ref §3.1)."""
    return Response(status_code=status)


def _json_default(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        # A JSON number, never a string: Zoho returns amounts as numbers. Amounts carry at most
        # a few decimals and 16 digits, which a double holds exactly enough to round-trip.
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def product_of(path: str) -> Product:
    """Which emulated product a path belongs to."""
    if path.startswith("/crm/"):
        return "crm"
    if path.startswith(("/books/", "/api/")):
        return "books"
    if path.startswith("/oauth/"):
        return "accounts"
    return "control"


# --------------------------------------------------------------------------------------------
# OAuth: Zoho Accounts
# --------------------------------------------------------------------------------------------


@dataclass
class _AccessToken:
    scopes: tuple[str, ...]
    expires_at: float
    refresh_token: str
    uses: int = 0


def scope_allows(granted: tuple[str, ...], required: str) -> bool:
    """Whether a granted scope list covers `required` (e.g. ZohoCRM.modules.accounts.READ).

    `Service.a.ALL` covers `Service.a.b.READ`; `ZohoBooks.fullaccess.all` covers every Books
    scope (ref §2 treats it as a superset).
    """
    r_parts = required.split(".")
    for scope in granted:
        g_parts = scope.split(".")
        if g_parts[0].lower() != r_parts[0].lower():
            continue
        if [p.lower() for p in g_parts[1:]] == ["fullaccess", "all"]:
            return True
        g_mid, g_op = [p.lower() for p in g_parts[1:-1]], g_parts[-1].upper()
        r_mid, r_op = [p.lower() for p in r_parts[1:-1]], r_parts[-1].upper()
        if r_mid[: len(g_mid)] == g_mid and g_op in ("ALL", r_op):
            return True
    return False


class TokenStore:
    """Refresh tokens, access tokens and authorization codes of the emulated Accounts server."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        self.refresh: dict[str, tuple[str, ...]] = {config.refresh_token: DEFAULT_SCOPES}
        self.revoked: set[str] = set()
        self.access: dict[str, _AccessToken] = {}
        self.codes: dict[str, tuple[str, ...]] = {}
        self.issued: dict[str, collections.deque] = collections.defaultdict(collections.deque)

    def add_refresh_token(self, token: str, scopes: tuple[str, ...]) -> None:
        """Register another refresh token, e.g. one with fewer scopes for a test."""
        self.refresh[token] = scopes
        self.revoked.discard(token)

    def revoke(self, token: str) -> bool:
        """Revoke a refresh token and every access token made from it (or one access token)."""
        if token in self.refresh:
            self.revoked.add(token)
            for access in [a for a, t in self.access.items() if t.refresh_token == token]:
                del self.access[access]
            return True
        return self.access.pop(token, None) is not None

    def expire_all(self) -> None:
        """Make every access token issued so far expired (a mid-run expiry)."""
        for token in self.access.values():
            token.expires_at = 0

    def issue(self, refresh_token: str) -> dict | None:
        """Mint an access token for a live refresh token; None when it is unknown or revoked."""
        if refresh_token not in self.refresh or refresh_token in self.revoked:
            return None
        access = "1000." + secrets.token_hex(24)
        scopes = self.refresh[refresh_token]
        expires_at = time.monotonic() + self.config.token_lifetime_s
        self.access[access] = _AccessToken(scopes, expires_at, refresh_token)
        return {
            "access_token": access,
            "scope": " ".join(scopes),
            "token_type": "Bearer",
            "expires_in": self.config.token_lifetime_s,
        }

    def throttled(self, refresh_token: str) -> bool:
        """ref §2: at most N access tokens per refresh token per 10 minutes (when configured)."""
        limit = self.config.token_refresh_limit_per_10min
        if limit is None:
            return False
        window, now = self.issued[refresh_token], time.monotonic()
        while window and now - window[0] > 600:
            window.popleft()
        if len(window) >= limit:
            return True
        window.append(now)
        return False


def _auth_failure(product: Product, kind: str) -> ApiError:
    """Each product's own 401 envelope (ref §2, §3.10, §4.10)."""
    if product == "crm":
        codes = {
            "missing": ("AUTHENTICATION_FAILURE", "Authentication failed"),
            "invalid": ("INVALID_TOKEN", "invalid oauth token"),
            "scope": ("OAUTH_SCOPE_MISMATCH", "Unauthorized"),
        }
        code, message = codes[kind]
        return crm_error(code, message, status=401)
    if kind == "missing":
        return books_error(14, "The request could not be authenticated.", status=401)
    return books_error(57, "You are not authorized to perform this operation", status=401)


# --------------------------------------------------------------------------------------------
# Limits and counters
# --------------------------------------------------------------------------------------------


class Limits:
    """Books requests per minute and per day per organization; CRM calls in flight."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        self.lock = threading.Lock()
        self.minute: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self.daily: dict[tuple[str, str], int] = collections.Counter()
        self.crm_in_flight = 0

    def books_admit(self, org_id: str) -> ApiError | None:
        """Count one Books request; a 429 (with Retry-After) when over a limit."""
        now, today = time.monotonic(), datetime.now(UTC).date().isoformat()
        with self.lock:
            window = self.minute[org_id]
            while window and now - window[0] >= 60:
                window.popleft()
            if len(window) >= self.config.books_rate_limit:
                retry = max(1, math.ceil(60 - (now - window[0])))
                return _limit_error(
                    "books", retry, 44,
                    "You have made too many requests per minute. Please try again later.",
                )
            if self.daily[(org_id, today)] >= self.config.books_daily_limit:
                midnight = datetime.combine(
                    datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC
                )
                retry = max(1, int((midnight - datetime.now(UTC)).total_seconds()))
                return _limit_error(
                    "books", retry, 45,
                    "You have reached the maximum number of API calls allowed for the day.",
                )
            window.append(now)
            self.daily[(org_id, today)] += 1
        return None

    def crm_enter(self) -> ApiError | None:
        """Take a CRM concurrency slot; a 429 when every slot is busy (ref §3.11)."""
        with self.lock:
            if self.crm_in_flight >= self.config.crm_concurrency:
                return _limit_error("crm", 1, "TOO_MANY_REQUESTS", "too many concurrent requests")
            self.crm_in_flight += 1
        return None

    def crm_leave(self) -> None:
        """Give the CRM concurrency slot back."""
        with self.lock:
            self.crm_in_flight -= 1


def _limit_error(product: Product, retry_after: int, code: Any, message: str) -> ApiError:
    headers = {"Retry-After": str(retry_after)}
    if product == "crm":
        error = crm_error(code, message, status=429)
    else:
        error = books_error(code, message, status=429)
    error.headers = headers
    return error


class Stats:
    """Requests per endpoint and responses per status, plus a bounded log without secrets."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: collections.Counter = collections.Counter()
        self.responses: collections.Counter = collections.Counter()
        self.log: collections.deque = collections.deque(maxlen=5000)

    def record(self, key: str, status: int, method: str, path: str, query: str) -> None:
        """Count one request and remember it (the query is redacted of OAuth secrets)."""
        with self.lock:
            self.requests[key] += 1
            self.responses[str(status)] += 1
            self.log.append(
                {"method": method, "path": path, "query": _redact(query), "status": status,
                 "time": datetime.now(UTC).isoformat()}
            )

    def snapshot(self) -> dict:
        """Counters as plain dicts."""
        with self.lock:
            return {"requests": dict(self.requests), "responses": dict(self.responses)}

    def clear(self) -> None:
        """Zero every counter and the log."""
        with self.lock:
            self.requests.clear()
            self.responses.clear()
            self.log.clear()


_SECRET_PARAMS = {"client_secret", "refresh_token", "code", "token", "access_token"}


def _redact(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "***" if k in _SECRET_PARAMS else v) for k, v in pairs])


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class Emulator:
    """One emulated Zoho installation: Accounts + CRM + Books, with state, faults and limits."""

    def __init__(self, config: EmulatorConfig | None = None):
        from emulators.books import BooksEmulator
        from emulators.crm import CrmEmulator

        self.config = config or EmulatorConfig()
        self.lock = threading.RLock()
        self.base_url = "http://127.0.0.1"
        self.faults = Faults()
        self.tokens = TokenStore(self.config)
        self.limits = Limits(self.config)
        self.stats = Stats()
        self._fault_rng = random.Random(0)
        self._fault_lock = threading.Lock()
        self.crm = CrmEmulator(self)
        self.books = BooksEmulator(self)
        self.reset()

    def now(self) -> datetime:
        """The emulator's clock: UTC, whole seconds (Zoho's timestamps have no fractions)."""
        return datetime.now(UTC).replace(microsecond=0)

    def reset(self, seed: int | None = None, sizes: Sizes | None = None) -> None:
        """Fresh sample data from the seed; tokens stay valid, counters are zeroed."""
        with self.lock:
            if seed is not None:
                self.config.seed = seed
            if sizes is not None:
                self.config.sizes = sizes
            rng = random.Random(self.config.seed)
            self.crm.seed(rng, self.config.sizes)
            self.books.seed(rng, self.config.sizes, crm=self.crm)
            self.stats.clear()

    def set_faults(self, faults: Faults) -> None:
        """Replace the injected faults; their random stream restarts from `faults.seed`."""
        with self._fault_lock:
            self.faults = faults
            self._fault_rng = random.Random(faults.seed)

    def authorize(self, request: Request, product: Product, scope: str) -> None:
        """Check the caller's access token and scope; raise the product's 401 otherwise."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("zoho-oauthtoken", "bearer") or not token.strip():
            raise _auth_failure(product, "missing")
        with self.lock:
            access = self.tokens.access.get(token.strip())
            if access is None or access.expires_at <= time.monotonic():
                raise _auth_failure(product, "invalid")
            limit = self.faults.expire_tokens_after
            access.uses += 1
            if limit is not None and access.uses > limit:
                access.expires_at = 0
                raise _auth_failure(product, "invalid")
            if not scope_allows(access.scopes, scope):
                raise _auth_failure(product, "scope")

    def draw_fault(self) -> str | None:
        """Decide, from the seeded stream, which fault (if any) hits the next API request."""
        with self._fault_lock:
            f, roll = self.faults, self._fault_rng.random()
            for name, rate in (("error", f.error_rate), ("429", f.rate_429),
                               ("drop", f.drop_rate)):
                if roll < rate:
                    if name == "drop":
                        # Half the drops lose the request, half lose the answer after the
                        # write was applied: the case that tests exactly-once writes.
                        return "drop-before" if self._fault_rng.random() < 0.5 else "drop-after"
                    return name
                roll -= rate
        return None

    def app(self) -> FastAPI:
        """The ASGI app serving all three products and the test controls."""
        app = FastAPI(title="Zoho emulator (crmbooks)", docs_url=None, redoc_url=None,
                      openapi_url=None)
        app.include_router(_accounts_router(self))
        app.include_router(self.crm.router())
        app.include_router(self.books.router())
        app.include_router(_control_router(self))
        _install_error_handlers(app)
        return FaultMiddleware(app, self)


# --------------------------------------------------------------------------------------------
# Middleware: counting, faults, limits
# --------------------------------------------------------------------------------------------


class FaultMiddleware:
    """Pure ASGI middleware, so that it can close a connection mid-answer (a dropped connection)."""

    def __init__(self, app: FastAPI, emu: Emulator):
        self.app = app
        self.emu = emu
        self._table: list | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        product = product_of(scope["path"])
        if product == "control":
            return await self.app(scope, receive, send)  # test controls are not counted
        if product == "accounts":
            await self._forward(scope, receive, send)
            return None
        emu = self.emu
        if emu.faults.latency_ms:
            await asyncio.sleep(emu.faults.latency_ms / 1000)
        fault = emu.draw_fault()
        if fault == "drop-before":
            self._count(scope, 0)
            await _drop(send)
        refusal = self._admit(scope, product)
        if refusal is None and fault in ("error", "429"):
            refusal = _injected(product, fault)
            if product == "crm":
                emu.limits.crm_leave()  # the slot taken by _admit is not used after all
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
                emu.limits.crm_leave()
        return None

    def _admit(self, scope, product: Product) -> ApiError | None:
        limits = self.emu.limits
        if product == "crm":
            return limits.crm_enter()
        org = dict(parse_qsl(scope.get("query_string", b"").decode())).get("organization_id")
        return limits.books_admit(org) if org else None

    def _template(self, scope) -> tuple[str, dict]:
        """The route path a request matched (also for requests refused before routing)."""
        route = scope.get("route")
        if route is not None:
            return route.path, scope.get("path_params") or {}
        if self._table is None:
            self._table = _route_table(self.app.router.routes)
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
        self.emu.stats.record(f"{scope['method']} {template}", status, scope["method"],
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
            return _limit_error("crm", 1, "TOO_MANY_REQUESTS", "too many requests")
        return _limit_error("books", 1, 44, "You have made too many requests. Try again later.")
    if product == "crm":
        return crm_error("INTERNAL_ERROR", "Internal Server Error", status=500)
    return books_error(1000, "Internal error", status=500)


async def _send_error(send, error: ApiError) -> None:
    response = json_response(error.body, error.status, error.headers)
    await response({"type": "http"}, None, send)


class _DropFilter(logging.Filter):
    """Keeps injected connection drops out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


logging.getLogger("uvicorn.error").addFilter(_DropFilter())


def _install_error_handlers(app: FastAPI) -> None:
    """Every error, ours or FastAPI's, in the envelope of the product whose path was called."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        if exc.body is None:
            return empty_response(exc.status)
        return json_response(exc.body, exc.status, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        if product_of(request.url.path) == "crm":
            error = crm_error("INVALID_DATA", "invalid data", {"param_name": where})
        else:
            error = books_error(2, f"Invalid value passed for {where}")
        return json_response(error.body, error.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        product = product_of(request.url.path)
        if product == "crm":
            if exc.status_code == 405:
                error = crm_error("INVALID_REQUEST_METHOD", "The http request method type is "
                                  "not a valid one", status=405)
            else:
                error = crm_error("INVALID_URL_PATTERN", "Please check if the URL trying to "
                                  "access is a correct one", status=404)
        elif product == "books":
            if exc.status_code == 405:
                error = books_error(37, "The HTTP method is not allowed for the requested "
                                    "resource", status=405)
            else:
                error = books_error(5, "Invalid URL Passed", status=404)
        else:
            error = ApiError(exc.status_code, {"error": str(exc.detail)})
        return json_response(error.body, error.status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # A bug in an emulator must still answer in the product's envelope, never a traceback.
        logging.getLogger("emulators").exception("unexpected emulator error")
        if product_of(request.url.path) == "crm":
            error = crm_error("INTERNAL_ERROR", "Internal Server Error", status=500)
        else:
            error = books_error(1000, "Internal error", status=500)
        return json_response(error.body, error.status)


# --------------------------------------------------------------------------------------------
# Zoho Accounts routes
# --------------------------------------------------------------------------------------------


async def _params(request: Request) -> dict[str, str]:
    """OAuth parameters from the query string merged with a form body (ref §2: both are used)."""
    params = dict(request.query_params)
    if "form" in request.headers.get("content-type", ""):
        form = await request.form()
        params.update({k: str(v) for k, v in form.items()})
    return params


def _accounts_router(emu: Emulator) -> APIRouter:
    router = APIRouter()

    @router.post("/oauth/v2/token")
    async def token(request: Request):
        params = await _params(request)
        config, store = emu.config, emu.tokens
        if params.get("client_id") != config.client_id or (
            params.get("client_secret") != config.client_secret
        ):
            return json_response({"error": "invalid_client"})
        grant = params.get("grant_type")
        with emu.lock:
            if grant == "refresh_token":
                refresh = params.get("refresh_token", "")
            elif grant == "authorization_code":
                scopes = store.codes.pop(params.get("code", ""), None)
                if scopes is None:
                    return json_response({"error": "invalid_code"})
                refresh = "1000." + secrets.token_hex(24)
                store.add_refresh_token(refresh, scopes)
            else:
                return json_response({"error": "unsupported_grant_type"})
            if store.throttled(refresh):
                return json_response(
                    {"error": "Access Denied", "status": "failure",
                     "error_description": "You have made too many requests continuously. "
                     "Please try again after some time."}, status=400)
            issued = store.issue(refresh)
        if issued is None:
            return json_response({"error": "invalid_code"})
        issued["api_domain"] = emu.base_url
        if grant == "authorization_code":
            issued["refresh_token"] = refresh
        return json_response(issued)

    @router.post("/oauth/v2/token/revoke")
    async def revoke(request: Request):
        params = await _params(request)
        with emu.lock:
            emu.tokens.revoke(params.get("token", ""))
        return json_response({"status": "success"})

    @router.get("/oauth/v2/auth")
    async def authorize(request: Request):
        # A self-approving consent screen: real Zoho asks the user, then redirects the same way.
        params = dict(request.query_params)
        if params.get("client_id") != emu.config.client_id or not params.get("redirect_uri"):
            return json_response({"error": "invalid_client"}, status=400)
        scopes = tuple(s for s in params.get("scope", "").replace(" ", ",").split(",") if s)
        code = "1000." + secrets.token_hex(16)
        with emu.lock:
            emu.tokens.codes[code] = scopes or DEFAULT_SCOPES
        query = urlencode({"code": code, "location": "us", "accounts-server": emu.base_url})
        return RedirectResponse(f"{params['redirect_uri']}?{query}", status_code=302)

    return router


# --------------------------------------------------------------------------------------------
# Test controls under /__emulator__/
# --------------------------------------------------------------------------------------------


def _control_router(emu: Emulator) -> APIRouter:
    router = APIRouter(prefix="/__emulator__")

    @router.get("/stats")
    def stats():
        return json_response({**emu.stats.snapshot(), "books_org": emu.config.books_org_ids[0]})

    @router.post("/stats/clear")
    def clear_stats():
        emu.stats.clear()
        return json_response({"status": "success"})

    @router.get("/log")
    def log(limit: int = 100):
        with emu.stats.lock:
            entries = list(emu.stats.log)[-max(0, limit):]
        return json_response({"requests": entries})

    @router.post("/faults")
    async def faults(request: Request):
        raw = await _json_body(request)
        try:
            emu.set_faults(Faults.from_dict(raw))
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response({"faults": asdict(emu.faults)})

    @router.post("/reset")
    async def reset(request: Request):
        raw = await _json_body(request)
        seed = raw.pop("seed", None)
        try:
            sizes = replace(emu.config.sizes, **raw) if raw else None
        except TypeError as exc:
            return json_response({"error": f"unknown size: {exc}"}, status=400)
        emu.reset(seed=seed, sizes=sizes)
        emu.set_faults(Faults())
        return json_response({"seed": emu.config.seed, "sizes": asdict(emu.config.sizes)})

    @router.post("/limits")
    async def limits(request: Request):
        raw = await _json_body(request)
        allowed = {"books_rate_limit", "books_daily_limit", "crm_concurrency",
                   "token_refresh_limit_per_10min", "token_lifetime_s"}
        unknown = sorted(set(raw) - allowed)
        if unknown:
            return json_response({"error": f"unknown limit(s): {', '.join(unknown)}"}, 400)
        for key, value in raw.items():
            setattr(emu.config, key, value)
        return json_response({k: getattr(emu.config, k) for k in sorted(allowed)})

    @router.post("/tokens")
    async def add_token(request: Request):
        raw = await _json_body(request)
        token = raw.get("refresh_token") or "1000." + secrets.token_hex(16)
        with emu.lock:
            emu.tokens.add_refresh_token(token, tuple(raw.get("scopes") or DEFAULT_SCOPES))
        return json_response({"refresh_token": token})

    @router.post("/tokens/revoke")
    async def revoke_token(request: Request):
        raw = await _json_body(request)
        with emu.lock:
            found = emu.tokens.revoke(raw.get("token", ""))
        return json_response({"revoked": found})

    @router.post("/tokens/expire")
    def expire_tokens():
        with emu.lock:
            emu.tokens.expire_all()
        return json_response({"status": "success"})

    @router.post("/webhooks")
    async def add_webhook(request: Request):
        """Books webhooks of one organization to `url` with `header: secret` (what an operator
        sets up in Books' UI; the event receiver registers itself here)."""
        raw = await _json_body(request)
        missing = [k for k in ("org_id", "url", "secret") if not raw.get(k)]
        if missing:
            return json_response({"error": f"missing: {', '.join(missing)}"}, 400)
        org_id = str(raw["org_id"])
        if org_id not in emu.books.orgs:
            return json_response({"error": f"unknown Books organization {org_id}"}, 404)
        emu.books.register_webhook(org_id, str(raw["url"]), str(raw["secret"]),
                                   str(raw.get("header") or "X-Webhook-Secret"))
        return json_response({"org_id": org_id, "url": raw["url"]})

    @router.delete("/webhooks/{org_id}")
    def remove_webhook(org_id: str):
        emu.books.unregister_webhook(org_id)
        return json_response({"status": "success"})

    return router


async def _json_body(request: Request) -> dict:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        raw = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, {"error": f"malformed JSON: {exc}"}) from exc
    if not isinstance(raw, dict):
        raise ApiError(400, {"error": "expected a JSON object"})
    return raw
