"""Error classes of the Zoho connectors and `classify`, the one place that decides them.

Four kinds, decided where the response is read:

* `RetriableError` – 429, 5xx, timeouts, dropped connections: retried with backoff by
  `ZohoHttp`; raised only when the retries are spent or a retry could duplicate a write.
* `AuthError`      – 401 that survived one token refresh: scopes or a revoked grant.
* `RecordError`    – a 4xx about one record (validation, duplicate, not found): the write
  methods turn it into `WriteResult` data, reads raise it.
* `FatalError`     – configuration and prerequisites (unknown module or field, bad org id,
  rejected refresh token): the run must stop and a person must fix something.

Messages say what to fix and never contain a token, secret or Authorization header: they are
built only from the request's method + path template and the provider's code and message.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx


class ZohoError(Exception):
    """Base of every connector error: `endpoint`, HTTP `status`, provider `code` and body."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        status: int | None = None,
        code: Any = None,
        body: Any = None,
    ):
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.body = body  # the provider's JSON answer (never a token response)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, status={self.status}, code={self.code!r})"


class RetriableError(ZohoError):
    """A transient fault. `maybe_applied` is True when a write may have reached Zoho."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 maybe_applied: bool = False, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied


class AuthError(ZohoError):
    """The access token was refused even after a refresh (scope missing, grant revoked)."""


class RecordError(ZohoError):
    """The provider rejected the data of a record (or the record does not exist)."""


class FatalError(ZohoError):
    """Configuration or prerequisite problem: stop the run, the message says what to fix."""


# CRM 4xx codes that are about the request, not about one record (docs/zoho-api-notes.md,
# "CRM error codes"): a bug or a configuration problem, never fixed by editing a record.
_CRM_FATAL_CODES = {
    "INVALID_MODULE", "REQUIRED_PARAM_MISSING", "EXPECTED_PARAM_MISSING", "LIMIT_EXCEEDED",
    "LIMIT_REACHED", "INVALID_URL_PATTERN", "INVALID_REQUEST_METHOD", "NO_PERMISSION",
    "DISCRETE_PAGINATION_LIMIT_EXCEEDED", "PAGINATION_LIMIT_EXCEEDED", "EXPIRED_VALUE",
    "TOKEN_BOUND_DATA_MISMATCH", "SYNTAX_ERROR", "INVALID_QUERY", "INVALID_ALIAS",
    "DUPLICATE_ALIAS", "CRITERIA_LIMIT_EXCEEDED", "FEATURE_NOT_SUPPORTED", "FEATURE_NOT_ENABLED",
    "API_NOT_SUPPORTED", "NOT_SUPPORTED",
}


def parse_json(response: httpx.Response) -> Any:
    """The body as JSON with numbers as `Decimal` (money never passes through float)."""
    if not response.content:
        return None
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return None


def endpoint_of(response: httpx.Response) -> str:
    """'METHOD /path' of the request (no query string: it may carry ids, never secrets)."""
    request = response.request
    return f"{request.method} {request.url.path}"


def classify(response: httpx.Response, endpoint: str | None = None) -> ZohoError | None:
    """None for a success (2xx, 304), otherwise the error (not raised) for this response."""
    status = response.status_code
    if status < 300 or status == 304:
        return None
    body = parse_json(response)
    where = endpoint or endpoint_of(response)
    code, text = _code_and_message(body)
    info = dict(endpoint=where, status=status, code=code, body=body)
    said = f"Zoho said: {code} {text}".strip() if (code or text) else f"HTTP {status}"
    if status == 429:
        wait = retry_after_seconds(response)
        return RetriableError(f"{where} was rate limited (429); {said}", retry_after=wait, **info)
    if status >= 500:
        return RetriableError(f"{where} failed on Zoho's side ({status}); {said}", **info)
    if status == 401:
        return AuthError(_auth_message(where, code, said), **info)
    if _is_fatal(status, code, body, text):
        return FatalError(_fatal_message(where, status, code, body, said), **info)
    return RecordError(f"{where} rejected the record; {said}", **info)


def _code_and_message(body: Any) -> tuple[Any, str]:
    if not isinstance(body, dict):
        return None, ""
    if body.get("code") is None and isinstance(body.get("data"), list) and body["data"]:
        first = body["data"][0]
        if isinstance(first, dict):
            return first.get("code"), str(first.get("message", ""))
    return body.get("code"), str(body.get("message", ""))


def _is_fatal(status: int, code: Any, body: Any, text: str) -> bool:
    if status in (403, 405, 413) or code in _CRM_FATAL_CODES:
        return True
    details = body.get("details") if isinstance(body, dict) else None
    # CRM INVALID_DATA about a query parameter (fields, cvid, …) is a request problem.
    if isinstance(details, dict) and "param_name" in details and "data" not in body:
        return True
    if isinstance(code, int):
        # Books: 5 = invalid URL, 37 = method not allowed, 6041 = the user is not in that
        # organization ("not associated with the CompanyID"; "Books error codes").
        return code in (5, 37, 6041) or _names_org(text)
    return False


def _names_org(text: str) -> bool:
    lowered = text.lower()
    return "organization" in lowered or "companyid" in lowered


def _auth_message(where: str, code: Any, said: str) -> str:
    if code == "OAUTH_SCOPE_MISMATCH":
        hint = ("the OAuth grant lacks a scope this call needs; create a new grant with "
                "ZohoCRM.modules.ALL, ZohoCRM.settings.ALL, ZohoCRM.users.READ, "
                "ZohoCRM.org.READ, ZohoCRM.coql.READ and the ZohoBooks scopes")
    else:
        hint = ("the access token was refused even after a refresh: check that the grant "
                "covers this product and its scopes, or run `crmbooks connect` again")
    return f"{where}: {hint}; {said}"


def _fatal_message(where: str, status: int, code: Any, body: Any, said: str) -> str:
    details = body.get("details") if isinstance(body, dict) else None
    if isinstance(details, dict) and details.get("param_name"):
        value = f" ({details['api_name']})" if details.get("api_name") else ""
        return (f"{where}: the parameter '{details['param_name']}'{value} was refused; check "
                f"the module, field names and view ids in the settings; {said}")
    if isinstance(code, int) and (code == 6041 or _names_org(said)):
        return (f"{where}: the Books organization was refused; set books_org_id to one of "
                f"the ids listed by `organizations()`; {said}")
    if status == 403:
        return f"{where}: the Zoho user lacks a permission for this call; {said}"
    return f"{where}: the request was refused ({status}); {said}"


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (delta-seconds or an HTTP date), None if absent."""
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
