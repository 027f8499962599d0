"""ZohoHttp: bounded retries with backoff, Retry-After, no blind replay of creates, counting,
exact Decimals both ways."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from crmbooks.connectors.errors import RecordError, RetriableError
from crmbooks.connectors.http import CallCounter, dumps
from support.connector_fakes import FakeClock, FakeZoho, books, crm, json_response

PAGE = {"data": [{"id": "1"}], "info": {"more_records": False}}
ERROR_500 = {"code": "INTERNAL_ERROR", "message": "x", "status": "error", "details": {}}


def _sequence(*answers):
    """An api handler answering from a list (an exception instance is raised)."""
    queue = list(answers)

    def api(request):
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return api


def test_5xx_is_retried_a_bounded_number_of_times_with_growing_backoff():
    clock = FakeClock()
    fake = FakeZoho(_sequence(json_response(500, ERROR_500)))
    client = crm(fake, clock, max_retries=3)
    client.http._rng = lambda: 1.0  # the top of the jitter range, to check the ceilings
    with pytest.raises(RetriableError, match="gave up after 4 attempts"):
        list(client.iter_records("Accounts", ["Account_Name"]))
    assert len(fake.api_requests) == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_retry_after_is_honoured_and_pauses_the_organization():
    clock = FakeClock()
    fake = FakeZoho(_sequence(json_response(429, {"code": 44, "message": "slow down"},
                                            {"Retry-After": "7"}), json_response(200, PAGE)))
    client = crm(fake, clock)
    assert list(client.iter_records("Accounts", ["Account_Name"])) == [[{"id": "1"}]]
    assert 7 in clock.sleeps
    assert client.http.pacer.limiter._next >= 1007


def test_a_dropped_connection_on_a_read_is_retried():
    fake = FakeZoho(_sequence(httpx.RemoteProtocolError("peer closed"),
                              httpx.ReadTimeout("slow"), json_response(200, PAGE)))
    assert list(crm(fake).iter_records("Accounts", ["Account_Name"])) == [[{"id": "1"}]]
    assert len(fake.api_requests) == 3


def test_a_dropped_answer_to_a_create_is_not_replayed():
    fake = FakeZoho(_sequence(httpx.RemoteProtocolError("peer closed")))
    with pytest.raises(RetriableError) as info:
        crm(fake).create("Accounts", [{"Account_Name": "Acme"}])
    assert info.value.maybe_applied
    assert "upsert" in str(info.value)
    assert len(fake.api_requests) == 1


def test_a_create_that_never_connected_is_retried():
    ok = json_response(201, {"data": [{"code": "SUCCESS", "status": "success",
                                       "message": "record added", "details": {"id": "9"}}]})
    fake = FakeZoho(_sequence(httpx.ConnectError("refused"), ok))
    [result] = crm(fake).create("Accounts", [{"Account_Name": "Acme"}])
    assert result.ok and result.id == "9" and result.action == "insert"


def test_a_dropped_answer_to_an_upsert_is_replayed():
    ok = json_response(200, {"data": [{"code": "SUCCESS", "status": "success", "action":
                                       "update", "message": "record updated",
                                       "details": {"id": "9"}}]})
    fake = FakeZoho(_sequence(httpx.ReadError("reset"), ok))
    [result] = crm(fake).upsert("Accounts", [{"Account_Name": "Acme"}],
                                duplicate_check_fields=["Account_Name"])
    assert result.ok and len(fake.api_requests) == 2


def test_a_4xx_is_never_retried():
    fake = FakeZoho(_sequence(json_response(400, {"code": 2, "message": "Invalid value"})))
    result = books(fake).update("invoices", "1", {"date": "never"})
    assert not result.ok and result.code == 2
    assert len(fake.api_requests) == 1
    fake = FakeZoho(_sequence(json_response(400, {"code": "INVALID_DATA", "status": "error",
                                                  "message": "the id given seems to be invalid",
                                                  "details": {"id": "1"}})))
    with pytest.raises(RecordError):
        list(crm(fake).search("Accounts", word="acme"))
    assert len(fake.api_requests) == 1


def test_calls_are_counted_per_endpoint_template_and_system():
    fake = FakeZoho(lambda r: json_response(200, PAGE))
    client = crm(fake)
    before = client.calls.snapshot()
    list(client.iter_records("Accounts", ["Account_Name"]))
    list(client.iter_records("Contacts", ["Last_Name"]))
    diff = CallCounter.diff(client.calls.snapshot(), before)
    assert diff == {"accounts POST /oauth/v2/token": 1, "crm GET /crm/v8/{module}": 2}
    assert client.calls.by_system() == {"accounts": 1, "crm": 2}
    assert client.calls.total == 3


def test_numbers_are_decimals_both_ways():
    seen = {}

    def api(request):
        seen["body"] = request.content
        return json_response(200, {"code": 0, "message": "ok",
                                   "invoice": {"invoice_id": "5", "total": 0.1}})

    fake = FakeZoho(api)
    result = books(fake).update("invoices", "5", {"adjustment": Decimal("0.10")})
    assert result.record["total"] == Decimal("0.1")
    assert seen["body"] == b'{"adjustment":0.10}'
    assert dumps({"a": [Decimal("12345678901234567.89")]}) == '{"a":[12345678901234567.89]}'
