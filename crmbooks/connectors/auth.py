"""OAuth 2.0 for Zoho as an `httpx.Auth`: refresh-token grant, lazy, ahead of expiry, on 401.

Zoho access tokens live one hour and are minted from a long-lived refresh token
(docs/zoho-api-notes.md, "OAuth tokens"). The token request travels through the same
`httpx.Client` (the flow yields it), so tests with `httpx.MockTransport` and the emulators
exercise it like any other request.

httpx advises overriding `sync_auth_flow` when an auth scheme uses locks
(https://www.python-httpx.org/advanced/authentication/ and the `httpx.Auth` docstring), which
this one does: flows call the clients from a few threads and only one of them may refresh.

Zoho limits how many access tokens one refresh token may mint in ten minutes, so processes of
one connection share their token when given a `TokenShare` (the state database, see
crmbooks/sharing.py): a process adopts the shared token while it is valid, and a refresh
happens under the share's lock, so that across processes only one asks Zoho Accounts and the
others find its token. Expiry is wall time (`time.time`), comparable between processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager
from typing import Protocol

import httpx
from pydantic import SecretStr

from crmbooks.connectors.errors import FatalError, RetriableError, parse_json

TOKEN_PATH = "/oauth/v2/token"
TOKEN_ENDPOINT = f"POST {TOKEN_PATH}"

_INVALID_TOKEN_CODES = {"INVALID_TOKEN", "AUTHENTICATION_FAILURE", 57, 14}


class TokenSlot(Protocol):
    """The shared token as read under the share's lock."""

    def token(self) -> tuple[str, float] | None:
        """(access token, expires at) or None when there is none usable."""

    def store(self, token: str, expires_at: float) -> None:
        """Keep a newly minted token for every process of the connection."""


class TokenShare(Protocol):
    """Where the processes of one connection keep their access token."""

    def current(self) -> tuple[str, float] | None:
        """(access token, expires at) as last kept, without a lock; None when there is none."""

    def locked(self) -> AbstractContextManager[TokenSlot]:
        """The token under a lock that no other process holds at the same time."""


class ZohoOAuth(httpx.Auth):
    """Adds `Authorization: Zoho-oauthtoken …`; refreshes lazily, before expiry and on 401."""

    def __init__(
        self,
        accounts_url: str,
        client_id: str,
        client_secret: SecretStr,
        refresh_token: SecretStr,
        *,
        margin_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        on_token_request: Callable[[], None] | None = None,
        before_resend: Callable[[], None] | None = None,
        share: TokenShare | None = None,
    ):
        self._token_url = accounts_url.rstrip("/") + TOKEN_PATH
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._margin = margin_s
        self._clock = clock
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None  # (access token, expires at on clock)
        self._local = threading.local()
        self.on_token_request = on_token_request  # counts calls to Zoho Accounts
        self.before_resend = before_resend  # paces the replay of a request after a 401
        self.share = share
        self.refreshes = 0

    def __repr__(self) -> str:
        state = "token cached" if self._token else "no token yet"
        return f"ZohoOAuth({self._token_url!r}, client_id={self._client_id!r}, {state})"

    @property
    def api_request_sent(self) -> bool:
        """Whether this thread's last flow got as far as sending the API request itself
        (rather than failing on the token request): decides if a write may have landed."""
        return getattr(self._local, "sent", False)

    def invalidate(self) -> None:
        """Forget the cached access token (the next request fetches a new one)."""
        with self._lock:
            self._token = None

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach a fresh token, send, and replay once with a new token after a 401."""
        self._local.sent = False
        token = self._valid_token()
        if token is None:
            token = yield from self._refresh(stale=None)
        request.headers["Authorization"] = f"Zoho-oauthtoken {token}"
        self._local.sent = True
        response = yield request
        if response.status_code != 401 or not self._token_refused(response):
            return
        self._local.sent = False
        token = yield from self._refresh(stale=token)
        if self.before_resend is not None:
            self.before_resend()
        request.headers["Authorization"] = f"Zoho-oauthtoken {token}"
        self._local.sent = True
        yield request

    async def async_auth_flow(self, request):  # pragma: no cover - the clients are sync
        """Not supported: crmbooks uses a sync httpx.Client."""
        raise TypeError("ZohoOAuth works with httpx.Client; crmbooks has no async clients")

    def _valid_token(self) -> str | None:
        current = self._token  # a tuple swap is atomic; no lock needed to read it
        if self._usable(current, stale=None):
            return current[0]
        if self.share is not None:
            # Another process may have refreshed already: one read, no lock.
            shared = self.share.current()
            if self._usable(shared, stale=None):
                self._token = shared
                return shared[0]
        return None

    def _usable(self, token: tuple[str, float] | None, stale: str | None) -> bool:
        return token is not None and token[0] != stale and (
            token[1] - self._margin > self._clock())

    @staticmethod
    def _token_refused(response: httpx.Response) -> bool:
        response.read()
        body = parse_json(response)
        # A scope mismatch is not cured by a new token: let it surface as an AuthError.
        return isinstance(body, dict) and body.get("code") in _INVALID_TOKEN_CODES

    def _refresh(self, stale: str | None) -> Generator[httpx.Request, httpx.Response, str]:
        # Single flight: whoever holds the lock refreshes; the others find the new token.
        with self._lock:
            current = self._token
            if self._usable(current, stale):
                return current[0]
            if self.share is None:
                token, expires_at = yield from self._mint()
                self._token = (token, expires_at)
                return token
            # Across processes: under the share's lock, whoever finds no usable token mints
            # one; the others wait for that commit and take the token it kept.
            with self.share.locked() as slot:
                shared = slot.token()
                if self._usable(shared, stale):
                    self._token = shared
                    return shared[0]
                token, expires_at = yield from self._mint()
                slot.store(token, expires_at)
            self._token = (token, expires_at)
            return token

    def _mint(self) -> Generator[httpx.Request, httpx.Response, tuple[str, float]]:
        """Ask Zoho Accounts for a new access token: (token, expires at)."""
        if self.on_token_request is not None:
            self.on_token_request()
        response = yield self._token_request()
        response.read()
        token, lifetime = self._parse_token(response)
        self.refreshes += 1
        return token, self._clock() + lifetime

    def _token_request(self) -> httpx.Request:
        # A form body keeps the secrets out of the URL, hence out of every access log
        # (Zoho accepts query or form parameters).
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
            "refresh_token": self._refresh_token.get_secret_value(),
        }
        return httpx.Request("POST", self._token_url, data=form)

    def _parse_token(self, response: httpx.Response) -> tuple[str, float]:
        body = parse_json(response)
        if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
            lifetime = body.get("expires_in") or body.get("expires_in_sec") or 3600
            return str(body["access_token"]), float(lifetime)
        raise _token_error(response.status_code, body)


def _token_error(status: int, body: object) -> Exception:
    """Map a failed token answer; the body may echo nothing secret, but we quote only `error`."""
    error = body.get("error") if isinstance(body, dict) else None
    where = TOKEN_ENDPOINT
    if error == "invalid_code":
        return FatalError(
            "the refresh token was rejected by Zoho Accounts (revoked, expired or from another "
            "data centre): create a new one in the Zoho API console and run `crmbooks connect` "
            "again", endpoint=where, status=status, code=error)
    if error == "invalid_client":
        return FatalError(
            "Zoho Accounts rejected the client id or client secret: copy both again from the "
            "Zoho API console (Self Client or server-based app) for this data centre",
            endpoint=where, status=status, code=error)
    if status == 429 or status >= 500 or error == "Access Denied":
        # Zoho throttles token requests with HTTP 400 "Access Denied"; it passes with time.
        return RetriableError(
            "Zoho Accounts is throttling token requests (too many refreshes); retrying later",
            endpoint=where, status=status, code=error, retry_after=60.0 if error else None)
    return FatalError(
        f"Zoho Accounts refused the token request (HTTP {status}, error {error!r}): check "
        "accounts_url (data centre) and the client credentials", endpoint=where,
        status=status, code=error)
