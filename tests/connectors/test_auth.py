"""ZohoOAuth: lazy token, refresh ahead of expiry and once on 401, fatal refresh failures,
single-flight refresh across threads, and no secret in any repr, message or log line."""

from __future__ import annotations

import logging
import threading

import httpx
import pytest

from crmbooks.connectors.errors import AuthError, FatalError
from support.connector_fakes import ACCESS, REFRESH, SECRET, FakeClock, FakeZoho, crm, json_response

OK_PAGE = {"data": [{"id": "1"}], "info": {"more_records": False}}


def test_token_is_fetched_lazily_and_reused():
    fake = FakeZoho(lambda r: json_response(200, OK_PAGE))
    client = crm(fake)
    assert fake.token_requests == 0  # building the client costs nothing
    list(client.iter_records("Accounts", ["Account_Name"]))
    list(client.iter_records("Accounts", ["Account_Name"]))
    assert fake.token_requests == 1
    assert fake.api_requests[0].headers["Authorization"] == f"Zoho-oauthtoken {ACCESS}"


def test_token_request_sends_secrets_in_the_form_body_not_the_url():
    fake = FakeZoho(lambda r: json_response(200, OK_PAGE))
    list(crm(fake).iter_records("Accounts", ["Account_Name"]))
    token_request = fake.requests[0]
    assert SECRET not in str(token_request.url) and REFRESH not in str(token_request.url)
    assert b"grant_type=refresh_token" in token_request.content


def test_token_is_refreshed_ahead_of_expiry():
    clock = FakeClock()
    fake = FakeZoho(lambda r: json_response(200, OK_PAGE))
    client = crm(fake, clock)
    client.http.auth._clock = clock
    list(client.iter_records("Accounts", ["Account_Name"]))
    clock.now += 3600 - 301  # just outside the 300 s margin
    list(client.iter_records("Accounts", ["Account_Name"]))
    assert fake.token_requests == 1
    clock.now += 2  # inside the margin: refresh before Zoho would refuse it
    list(client.iter_records("Accounts", ["Account_Name"]))
    assert fake.token_requests == 2


def test_a_401_refreshes_once_and_replays():
    calls = {"n": 0}

    def api(request):
        calls["n"] += 1
        if calls["n"] == 1:
            return json_response(401, {"code": "INVALID_TOKEN", "message": "invalid oauth token",
                                       "status": "error", "details": {}})
        return json_response(200, OK_PAGE)

    fake = FakeZoho(api)
    client = crm(fake)
    pages = list(client.iter_records("Accounts", ["Account_Name"]))
    assert pages == [[{"id": "1"}]]
    assert fake.token_requests == 2
    assert client.calls.snapshot() == {"accounts POST /oauth/v2/token": 2,
                                       "crm GET /crm/v8/{module}": 2}


def test_a_second_401_is_an_auth_error_not_a_loop():
    fake = FakeZoho(lambda r: json_response(401, {"code": "INVALID_TOKEN", "details": {},
                                                  "message": "invalid oauth token",
                                                  "status": "error"}))
    with pytest.raises(AuthError) as info:
        list(crm(fake).iter_records("Accounts", ["Account_Name"]))
    assert fake.token_requests == 2 and len(fake.api_requests) == 2
    assert "crmbooks connect" in str(info.value)


def test_scope_mismatch_is_not_refreshed():
    fake = FakeZoho(lambda r: json_response(401, {"code": "OAUTH_SCOPE_MISMATCH",
                                                  "message": "Unauthorized",
                                                  "status": "error", "details": {}}))
    with pytest.raises(AuthError, match="ZohoCRM.modules.ALL"):
        list(crm(fake).iter_records("Accounts", ["Account_Name"]))
    assert fake.token_requests == 1


@pytest.mark.parametrize("error, hint", [
    ("invalid_code", "create a new one in the Zoho API console"),
    ("invalid_client", "client id or client secret"),
])
def test_rejected_refresh_is_fatal_and_says_what_to_fix(error, hint, caplog):
    fake = FakeZoho(lambda r: json_response(200, OK_PAGE), token_body={"error": error})
    client = crm(fake)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FatalError) as info:
        list(client.iter_records("Accounts", ["Account_Name"]))
    assert hint in str(info.value)
    assert fake.token_requests == 1 and not fake.api_requests  # never retried
    _assert_no_secret(str(info.value), repr(info.value), caplog.text, repr(client),
                      repr(client.http.auth), repr(client.config))


def test_no_secret_in_logs_reprs_or_errors_after_use(caplog):
    fake = FakeZoho(lambda r: json_response(500, {"code": "INTERNAL_ERROR",
                                                  "message": "boom", "status": "error"}))
    client = crm(fake)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception) as info:
        list(client.iter_records("Accounts", ["Account_Name"]))
    _assert_no_secret(str(info.value), repr(info.value), caplog.text, repr(client),
                      repr(client.http.auth), repr(client.config), str(client.config))


def test_concurrent_callers_share_one_refresh():
    fake = FakeZoho(lambda r: json_response(200, OK_PAGE))
    client = crm(fake)
    client.http.pacer._slots = threading.BoundedSemaphore(8)
    barrier = threading.Barrier(8)

    def read():
        barrier.wait()
        list(client.iter_records("Accounts", ["Account_Name"]))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.token_requests == 1
    assert len(fake.api_requests) == 8


def test_throttled_token_endpoint_is_retried():
    answers = iter([{"error": "Access Denied", "status": "failure",
                     "error_description": "too many requests"},
                    {"access_token": ACCESS, "expires_in": 3600}])
    fake = FakeZoho(lambda r: json_response(200, OK_PAGE), token_body=lambda: next(answers))
    pages = list(crm(fake).iter_records("Accounts", ["Account_Name"]))
    assert pages == [[{"id": "1"}]] and fake.token_requests == 2


def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (SECRET, REFRESH, ACCESS, "Zoho-oauthtoken"):
            assert secret not in text


def test_mock_transport_is_real_httpx():
    # Guard: the helpers must exercise httpx's own auth machinery, not a stub.
    assert issubclass(httpx.MockTransport, httpx.BaseTransport)
