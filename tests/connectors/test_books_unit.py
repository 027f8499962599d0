"""BooksClient against a fake Books: organization_id, paging, sorted scan, upsert headers,
record-level errors as data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest

from crmbooks.connectors.errors import FatalError
from support.connector_fakes import FakeZoho, books, json_response


def _query(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}


def test_pages_until_has_more_page_is_false():
    def api(request):
        q = _query(request)
        assert q["organization_id"] == "42" and q["per_page"] == "200"
        page = int(q["page"])
        return json_response(200, {"code": 0, "contacts": [{"contact_id": str(page)}],
                                   "page_context": {"page": page, "has_more_page": page < 3}})

    fake = FakeZoho(api)
    pages = list(books(fake).iter_pages("contacts"))
    assert [p[0]["contact_id"] for p in pages] == ["1", "2", "3"]


def test_contacts_sorted_scan_stops_at_the_cursor():
    stamps = [f"2026-01-0{d}T10:00:00+0000" for d in (9, 8, 7, 6, 5, 4, 3, 2)]

    def api(request):
        q = _query(request)
        assert q["sort_column"] == "last_modified_time" and q["sort_order"] == "D"
        page = int(q["page"])
        rows = [{"contact_id": s, "last_modified_time": s}
                for s in stamps[(page - 1) * 3: page * 3]]
        return json_response(200, {"code": 0, "contacts": rows,
                                   "page_context": {"has_more_page": page * 3 < len(stamps)}})

    fake = FakeZoho(api)
    since = datetime(2026, 1, 5, 10, tzinfo=UTC)
    rows = [r for p in books(fake).iter_modified("contacts", since) for r in p]
    assert len(rows) == 5  # 9th … 5th inclusive
    assert len(fake.api_requests) == 2  # page 3 never fetched


def test_transactions_use_the_last_modified_time_filter_items_a_full_scan():
    fake = FakeZoho(lambda r: json_response(200, {"code": 0, "invoices": [], "items": [],
                                                  "page_context": {"has_more_page": False}}))
    client = books(fake)
    since = datetime(2026, 1, 5, 10, tzinfo=UTC)
    list(client.iter_modified("invoices", since))
    list(client.iter_modified("items", since))
    assert _query(fake.api_requests[0])["last_modified_time"] == "2026-01-05T10:00:00+0000"
    assert "last_modified_time" not in _query(fake.api_requests[1])


def test_upsert_by_custom_field_sends_the_unique_headers():
    def api(request):
        assert request.method == "PUT" and request.url.path == "/books/v3/contacts"
        assert request.headers["X-Unique-Identifier-Key"] == "cf_crm_id"
        assert request.headers["X-Unique-Identifier-Value"] == "77"
        assert request.headers["X-Upsert"] == "true"
        body = json.loads(request.content)
        return json_response(201, {"code": 0, "message": "The contact has been created",
                                   "contact": {"contact_id": "9", **body}})

    fake = FakeZoho(api)
    result = books(fake).upsert_by_custom_field(
        "contacts", "cf_crm_id", "77",
        {"contact_name": "Acme", "contact_persons": [{"first_name": "Ann"}]})
    assert result.ok and result.id == "9" and result.action == "insert"
    assert result.record["contact_persons"] == [{"first_name": "Ann"}]


def test_duplicate_name_comes_back_as_data():
    fake = FakeZoho(lambda r: json_response(400, {"code": 3062, "message":
                                                  'The customer "Acme" already exists.'}))
    result = books(fake).create("contacts", {"contact_name": "Acme"})
    assert not result.ok and result.code == 3062 and "already exists" in result.message


def test_status_actions_are_checked_and_posted():
    fake = FakeZoho(lambda r: json_response(200, {"code": 0, "message":
                                                  "Invoice status has been changed to Void."}))
    client = books(fake)
    result = client.mark("invoices", "5", "void")
    assert result.ok and result.action == "void" and result.id == "5"
    assert fake.api_requests[0].url.path == "/books/v3/invoices/5/status/void"
    with pytest.raises(ValueError):
        client.mark("estimates", "5", "void")


def test_items_are_marked_active_or_inactive_by_their_own_calls():
    fake = FakeZoho(lambda r: json_response(200, {"code": 0, "message":
                                                  "The item has been marked as inactive."}))
    client = books(fake)
    result = client.mark_active("items", "8", False)
    assert result.ok and result.action == "inactive" and result.id == "8"
    assert fake.api_requests[0].method == "POST"
    assert fake.api_requests[0].url.path == "/books/v3/items/8/inactive"
    assert client.mark_active("items", "8", True).action == "active"
    assert fake.api_requests[1].url.path == "/books/v3/items/8/active"
    with pytest.raises(ValueError, match="no active/inactive calls"):
        client.mark_active("invoices", "8", True)


def test_missing_org_id_is_fatal_with_a_hint():
    fake = FakeZoho(lambda r: json_response(200, {}))
    with pytest.raises(FatalError, match="organizations"):
        books(fake, books_org_id=None).organization()


def test_get_returns_none_when_missing():
    fake = FakeZoho(lambda r: json_response(404, {"code": 1002,
                                                  "message": "Invoice does not exist."}))
    assert books(fake).get("invoices", "1") is None
