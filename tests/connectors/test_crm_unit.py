"""CrmClient against a fake CRM: escaping, field splitting, page_token, write results."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest

from crmbooks.connectors.zoho_crm import (
    all_of,
    any_of,
    criteria_escape,
    criterion,
    split_fields,
)
from support.connector_fakes import FakeZoho, crm, json_response


def _query(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}


@pytest.mark.parametrize("raw, escaped", [
    ("Acme (UK), Ltd\\", "Acme \\(UK\\)\\, Ltd\\\\"),
    ("plain", "plain"),
    ("a\\(b", "a\\\\\\(b"),
    (True, "true"),
])
def test_criteria_escape(raw, escaped):
    assert criteria_escape(raw) == escaped


def test_criteria_builder():
    name = criterion("Account_Name", "equals", "Acme (UK), Ltd\\")
    assert name == "(Account_Name:equals:Acme \\(UK\\)\\, Ltd\\\\)"
    assert all_of(name, criterion("Rating", "in", ["A,1", "B"])) == (
        f"({name} and (Rating:in:A\\,1,B))")
    assert any_of(name) == name
    with pytest.raises(ValueError):
        criterion("Bad Field", "equals", "x")
    with pytest.raises(ValueError):
        criterion("Name", "contains", "x")


def test_split_fields_keeps_id_in_every_group_and_at_most_50():
    names = [f"F{i}" for i in range(120)]
    first, rest = split_fields(names)
    groups = [first, *rest]
    assert all(len(g) <= 50 and g[0] == "id" for g in groups)
    assert sum(len(g) - 1 for g in groups) == 120
    assert split_fields(["A", "A", "id"]) == (["id", "A"], [])


def test_more_than_50_fields_are_fetched_by_id_and_merged():
    def api(request):
        q = _query(request)
        fields = q["fields"].split(",")
        if "ids" in q:
            data = [{"id": i, **{f: f"{f}-{i}" for f in fields if f != "id"}}
                    for i in q["ids"].split(",")]
        else:
            data = [{"id": str(i), **{f: f"{f}-{i}" for f in fields if f != "id"}}
                    for i in range(1, 4)]
        return json_response(200, {"data": data, "info": {"more_records": False}})

    fake = FakeZoho(api)
    names = [f"F{i}" for i in range(60)]
    [page] = list(crm(fake).iter_records("Accounts", names))
    assert [r["id"] for r in page] == ["1", "2", "3"]
    assert all(r[f] == f"{f}-{r['id']}" for r in page for f in names)
    assert len(fake.api_requests) == 2


def test_page_token_takes_over_after_2000_records():
    total = 2600

    def api(request):
        q = _query(request)
        assert "page" not in q or "page_token" not in q
        start = (int(q["page"]) - 1) * 200 if "page" in q else int(q["page_token"][1:])
        data = [{"id": str(i)} for i in range(start, min(start + 200, total))]
        more = start + 200 < total
        info = {"more_records": more, "next_page_token": f"t{start + 200}" if more else None}
        if "page" in q and int(q["page"]) * 200 > 2000:
            return json_response(400, {"code": "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                                       "details": {"limit": 2000}, "message": "x"})
        return json_response(200, {"data": data, "info": info})

    fake = FakeZoho(api)
    pages = list(crm(fake).iter_records("Accounts", ["Account_Name"]))
    ids = [r["id"] for p in pages for r in p]
    assert ids == [str(i) for i in range(total)]
    queries = [_query(r) for r in fake.api_requests]
    assert [q.get("page") for q in queries[:10]] == [str(i) for i in range(1, 11)]
    assert all("page_token" in q for q in queries[10:])


def test_if_modified_since_and_304_mean_nothing_new():
    seen = []

    def api(request):
        seen.append(request.headers.get("If-Modified-Since"))
        return httpx.Response(304)

    from datetime import UTC, datetime

    fake = FakeZoho(api)
    since = datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC)
    assert list(crm(fake).iter_records("Accounts", ["Account_Name"], modified_since=since)) == []
    assert seen == ["2026-01-02T03:04:05+00:00"]


def test_writes_go_100_per_call_with_per_record_results():
    def api(request):
        import json

        records = json.loads(request.content)["data"]
        items = []
        for r in records:
            if r["Account_Name"].startswith("bad"):
                items.append({"code": "MANDATORY_NOT_FOUND", "status": "error",
                              "message": "required field not found",
                              "details": {"api_name": "Phone", "json_path": "$.data[0].Phone"}})
            else:
                items.append({"code": "SUCCESS", "status": "success", "action": "insert",
                              "message": "record added", "details": {"id": "x" + r["n"]}})
        status = 207 if any(i["status"] == "error" for i in items) else 200
        return json_response(status, {"data": items})

    fake = FakeZoho(api)
    records = [{"Account_Name": ("bad" if i == 150 else "ok") + str(i), "n": str(i)}
               for i in range(250)]
    results = crm(fake).upsert("Accounts", records, duplicate_check_fields=["Account_Name"])
    assert len(fake.api_requests) == 3
    assert [r.index for r in results] == list(range(250))
    bad = results[150]
    assert not bad.ok and bad.code == "MANDATORY_NOT_FOUND" and bad.field == "Phone"
    assert results[0].ok and results[0].id == "x0" and results[0].action == "insert"


def test_a_400_for_the_whole_batch_fails_each_record_as_data():
    fake = FakeZoho(lambda r: json_response(400, {"data": [
        {"code": "INVALID_DATA", "status": "error", "message": "invalid data",
         "details": {"api_name": "Email"}}] * 2}))
    results = crm(fake).create("Contacts", [{"Last_Name": "a"}, {"Last_Name": "b"}])
    assert [(r.ok, r.field) for r in results] == [(False, "Email"), (False, "Email")]


def test_search_needs_exactly_one_mode_and_escapes():
    fake = FakeZoho(lambda r: httpx.Response(204))
    client = crm(fake)
    with pytest.raises(ValueError):
        list(client.search("Accounts"))
    crit = criterion("Account_Name", "equals", "Acme (UK), Ltd\\")
    assert list(client.search("Accounts", criteria=crit)) == []
    assert _query(fake.api_requests[0])["criteria"] == crit


def test_coql_pages_by_limit_offset():
    def api(request):
        import json

        query = json.loads(request.content)["select_query"]
        offset = int(query.rsplit("limit", 1)[1].split(",")[0])
        rows = [{"id": str(i)} for i in range(offset, min(offset + 2000, 4500))]
        return json_response(200, {"data": rows, "info": {"count": len(rows),
                                                          "more_records": offset + 2000 < 4500}})

    fake = FakeZoho(api)
    pages = list(crm(fake).coql("select id from Accounts where id is not null"))
    assert [len(p) for p in pages] == [2000, 2000, 500]


def test_deal_stages_come_from_field_metadata():
    fields = {"fields": [{"api_name": "Stage", "pick_list_values": [
        {"display_value": "Won", "actual_value": "Closed Won", "probability": 100,
         "forecast_type": "Closed Won", "sequence_number": 2},
        {"display_value": "Q", "actual_value": "Qualification", "probability": 10,
         "forecast_type": "Open", "sequence_number": 1}]}]}
    fake = FakeZoho(lambda r: json_response(200, fields))
    assert crm(fake).deal_stages() == [("Qualification", 10, "Open"),
                                       ("Closed Won", 100, "Closed Won")]
