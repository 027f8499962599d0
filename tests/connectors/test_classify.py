"""errors.classify: the one place a response becomes retriable / auth / record / fatal."""

from __future__ import annotations

import httpx
import pytest

from crmbooks.connectors.errors import (
    AuthError,
    FatalError,
    RecordError,
    RetriableError,
    classify,
    retry_after_seconds,
)
from support.connector_fakes import json_response


def _classify(status, body=None, headers=None):
    response = json_response(status, body, headers) if body is not None else httpx.Response(
        status, headers=headers)
    response.request = httpx.Request("GET", "https://api.test/crm/v8/Accounts")
    return classify(response, "GET /crm/v8/{module}")


@pytest.mark.parametrize("status, body, kind", [
    (200, {"data": []}, None),
    (204, None, None),
    (304, None, None),
    (207, {"data": [{"status": "error"}]}, None),  # per-record errors are parsed by writers
    (429, {"code": "TOO_MANY_REQUESTS", "message": "x", "status": "error"}, RetriableError),
    (500, {"code": "INTERNAL_ERROR", "message": "x", "status": "error"}, RetriableError),
    (503, None, RetriableError),
    (401, {"code": "INVALID_TOKEN", "message": "invalid oauth token"}, AuthError),
    (401, {"code": 57, "message": "You are not authorized"}, AuthError),
    (400, {"data": [{"code": "DUPLICATE_DATA", "status": "error"}]}, RecordError),
    (400, {"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "Last_Name"},
           "message": "required field not found", "status": "error"}, RecordError),
    (400, {"code": "INVALID_DATA", "details": {"param_name": "fields"},
           "message": "invalid data", "status": "error"}, FatalError),
    (400, {"code": "INVALID_MODULE", "details": {}, "message": "x"}, FatalError),
    (400, {"code": "LIMIT_REACHED", "details": {"limit": "2000"}, "message": "x"}, FatalError),
    (404, {"code": "INVALID_URL_PATTERN", "message": "x"}, FatalError),
    (403, {"code": "NO_PERMISSION", "message": "permission denied"}, FatalError),
    (400, {"code": 3062, "message": 'The customer "X" already exists.'}, RecordError),
    (404, {"code": 1002, "message": "Invoice does not exist."}, RecordError),
    (400, {"code": 6041, "message": "This organization is not available"}, FatalError),
    (404, {"code": 5, "message": "Invalid URL Passed"}, FatalError),
])
def test_classification(status, body, kind):
    error = _classify(status, body)
    if kind is None:
        assert error is None
    else:
        assert type(error) is kind
        assert error.status == status


def test_messages_name_the_endpoint_and_what_zoho_said():
    error = _classify(400, {"code": "INVALID_DATA", "details": {"param_name": "cvid"},
                            "message": "invalid data", "status": "error"})
    assert "GET /crm/v8/{module}" in str(error) and "'cvid'" in str(error)
    books = _classify(400, {"code": 6041, "message": "This organization is not available"})
    assert "books_org_id" in str(books)


def test_retry_after_is_read_as_seconds_or_date():
    assert _classify(429, {"code": 44}, {"Retry-After": "7"}).retry_after == 7
    assert retry_after_seconds(httpx.Response(429)) is None
    when = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_seconds(when) == 0.0  # in the past: no wait
