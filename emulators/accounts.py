"""Zoho Accounts, emulated: the OAuth token, revoke and consent endpoints under `/oauth/v2/`,
the refresh tokens, access tokens and authorization codes they hand out, and the check every
CRM and Books request passes (a live access token carrying the scope the call needs).

Facts of the real service this module mirrors: access tokens live an hour; the token endpoint
takes its parameters from the query string or a form body (Zoho's documents show the one, its
own SDK sends the other); failures of the token endpoint are HTTP 200 with an `error` field,
except throttling, which is HTTP 400; scopes read `Service.scope.OPERATION`.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from emulators.common.config import EmulatorConfig
from emulators.common.envelopes import ApiError, Product, books_error, crm_error, json_response

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
class AccessToken:
    """One access token: what it may do, until when, and which refresh token made it."""

    scopes: tuple[str, ...]
    expires_at: float
    refresh_token: str
    uses: int = 0


def scope_allows(granted: tuple[str, ...], required: str) -> bool:
    """Whether a granted scope list covers `required` (e.g. ZohoCRM.modules.accounts.READ).

    `Service.a.ALL` covers `Service.a.b.READ`; `ZohoBooks.fullaccess.all` covers every Books
    scope (it is not in Zoho's published scope lists, but integrators use it as a superset).
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
        self.access: dict[str, AccessToken] = {}
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
        self.access[access] = AccessToken(scopes, expires_at, refresh_token)
        return {
            "access_token": access,
            "scope": " ".join(scopes),
            "token_type": "Bearer",
            "expires_in": self.config.token_lifetime_s,
        }

    def throttled(self, refresh_token: str) -> bool:
        """Whether this refresh token already made its allowance of access tokens in the last
        10 minutes (only when a limit is configured)."""
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

    def check(self, header: str, product: Product, scope: str,
              expire_after: int | None) -> None:
        """Check an Authorization header (`Zoho-oauthtoken X` or `Bearer X`): a live access
        token that grants `scope`; raise the product's 401 otherwise. `expire_after` makes a
        token stop working after that many uses (an injected fault). The caller holds the
        emulator's lock."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("zoho-oauthtoken", "bearer") or not token.strip():
            raise auth_failure(product, "missing")
        access = self.access.get(token.strip())
        if access is None or access.expires_at <= time.monotonic():
            raise auth_failure(product, "invalid")
        access.uses += 1
        if expire_after is not None and access.uses > expire_after:
            access.expires_at = 0
            raise auth_failure(product, "invalid")
        if not scope_allows(access.scopes, scope):
            raise auth_failure(product, "scope")


def auth_failure(product: Product, kind: str) -> ApiError:
    """Each product's own 401: the CRM names the reason in a code (AUTHENTICATION_FAILURE,
    INVALID_TOKEN, OAUTH_SCOPE_MISMATCH), Books answers code 14 for a missing token and code
    57 for an invalid one or a missing scope."""
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


class AccountsHost(Protocol):
    """What the Accounts routes need from the emulator that serves them."""

    config: EmulatorConfig
    tokens: TokenStore
    lock: threading.RLock
    base_url: str


async def _params(request: Request) -> dict[str, str]:
    """OAuth parameters from the query string merged with a form body (Zoho accepts both)."""
    params = dict(request.query_params)
    if "form" in request.headers.get("content-type", ""):
        form = await request.form()
        params.update({k: str(v) for k, v in form.items()})
    return params


def accounts_router(host: AccountsHost) -> APIRouter:
    """The routes of Zoho Accounts: token, revoke and a self-approving consent screen."""
    router = APIRouter()

    @router.post("/oauth/v2/token")
    async def token(request: Request):
        params = await _params(request)
        config, store = host.config, host.tokens
        if params.get("client_id") != config.client_id or (
            params.get("client_secret") != config.client_secret
        ):
            return json_response({"error": "invalid_client"})
        grant = params.get("grant_type")
        with host.lock:
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
        issued["api_domain"] = host.base_url
        if grant == "authorization_code":
            issued["refresh_token"] = refresh
        return json_response(issued)

    @router.post("/oauth/v2/token/revoke")
    async def revoke(request: Request):
        params = await _params(request)
        with host.lock:
            host.tokens.revoke(params.get("token", ""))
        return json_response({"status": "success"})

    @router.get("/oauth/v2/auth")
    async def authorize(request: Request):
        # A self-approving consent screen: real Zoho asks the user, then redirects the same way.
        params = dict(request.query_params)
        if params.get("client_id") != host.config.client_id or not params.get("redirect_uri"):
            return json_response({"error": "invalid_client"}, status=400)
        scopes = tuple(s for s in params.get("scope", "").replace(" ", ",").split(",") if s)
        code = "1000." + secrets.token_hex(16)
        with host.lock:
            host.tokens.codes[code] = scopes or DEFAULT_SCOPES
        query = urlencode({"code": code, "location": "us", "accounts-server": host.base_url})
        return RedirectResponse(f"{params['redirect_uri']}?{query}", status_code=302)

    return router
