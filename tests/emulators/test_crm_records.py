"""CRM emulator contract: listing, pagination, If-Modified-Since, get one, deleted records, count.

Over real loopback HTTP with the `crm_http` fixture (small seeded data, reset per test).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from emulators import Sizes

V8 = "/crm/v8"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["status"] == "error", body
    assert "Traceback" not in response.text
    return body


def test_list_requires_fields(crm_http):
    body = _error(crm_http.get(f"{V8}/Accounts"), 400, "REQUIRED_PARAM_MISSING")
    assert body["details"] == {"param_name": "fields"}


def test_more_than_50_fields_is_limit_exceeded(crm_http):
    fields = ",".join(["Account_Name"] * 51)
    body = _error(crm_http.get(f"{V8}/Accounts", params={"fields": fields}), 400,
                  "LIMIT_EXCEEDED")
    assert body["details"] == {"limit": 50, "param_name": "fields"}


def test_unknown_field_unknown_module_unknown_version(crm_http):
    body = _error(crm_http.get(f"{V8}/Accounts", params={"fields": "Nope"}), 400, "INVALID_DATA")
    assert body["details"]["param_name"] == "fields"
    body = _error(crm_http.get(f"{V8}/Leadz", params={"fields": "id"}), 400, "INVALID_MODULE")
    assert body["message"] == "the module name given seems to be invalid"
    _error(crm_http.get("/crm/v9/Accounts", params={"fields": "id"}), 404, "INVALID_URL_PATTERN")


def test_list_shape_lookups_owner_and_datetimes(crm_http):
    response = crm_http.get(f"{V8}/Contacts", params={
        "fields": "Last_Name,Account_Name,Owner,Modified_Time", "per_page": 5})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    body = response.json()
    assert len(body["data"]) == 5
    for rec in body["data"]:
        assert set(rec) == {"id", "Last_Name", "Account_Name", "Owner", "Modified_Time"}
        assert rec["id"].isdigit() and len(rec["id"]) == 19
        assert set(rec["Owner"]) == {"name", "id", "email"}
        assert ISO.match(rec["Modified_Time"])
    linked = [r["Account_Name"] for r in body["data"] if r["Account_Name"]]
    assert linked and all(set(a) == {"name", "id"} and a["name"] for a in linked)
    info = body["info"]
    assert info["per_page"] == 5 and info["count"] == 5 and info["more_records"] is True
    assert info["next_page_token"] and info["page"] == 1
    assert info["sort_by"] == "id" and info["sort_order"] == "desc"


def test_older_versions_answer_the_same(crm_http):
    for version in ("v2", "v2.1", "v5", "v7"):
        response = crm_http.get(f"/crm/{version}/Accounts", params={"fields": "Account_Name"})
        assert response.status_code == 200, version


def test_sorting_and_bad_sort_params(crm_http):
    asc = crm_http.get(f"{V8}/Accounts", params={"fields": "Modified_Time",
                                                 "sort_by": "Modified_Time",
                                                 "sort_order": "asc"}).json()["data"]
    times = [r["Modified_Time"] for r in asc]
    assert times == sorted(times)
    by_id = crm_http.get(f"{V8}/Accounts", params={"fields": "id", "sort_order": "asc"}).json()
    ids = [int(r["id"]) for r in by_id["data"]]
    assert ids == sorted(ids)
    body = _error(crm_http.get(f"{V8}/Accounts", params={"fields": "id", "sort_by": "Phone"}),
                  400, "INVALID_DATA")
    assert body["details"]["supported_values"] == ["id", "Created_Time", "Modified_Time"]
    _error(crm_http.get(f"{V8}/Accounts", params={"fields": "id", "sort_order": "up"}), 400,
           "INVALID_DATA")


def test_per_page_bounds(crm_http):
    for bad in ("0", "201", "x"):
        body = _error(crm_http.get(f"{V8}/Accounts", params={"fields": "id", "per_page": bad}),
                      400, "INVALID_DATA")
        assert body["details"]["param_name"] == "per_page"


def test_discrete_pagination_stops_at_2000(crm_http):
    body = _error(crm_http.get(f"{V8}/Accounts", params={"fields": "id", "page": 11}), 400,
                  "DISCRETE_PAGINATION_LIMIT_EXCEEDED")
    assert body["details"] == {"limit": 2000}
    # page 10 of 200 is still allowed (records 1801-2000); beyond the data it is just empty
    response = crm_http.get(f"{V8}/Accounts", params={"fields": "id", "page": 10})
    assert response.status_code == 204 and response.content == b""


def test_page_token_beyond_2000_and_its_binding(emu_reset, crm_http):
    emu_reset.emu.reset(sizes=Sizes(accounts=2105, contacts_per_account=0,
                                    unassociated_contacts=0, vendors=0, products=0, deals=0,
                                    books_customers=0, books_vendors=0, books_items=0))
    params = {"fields": "Account_Name", "sort_order": "asc"}
    seen, page, token = [], 1, None
    while True:
        query = {**params, "page_token": token} if token else {**params, "page": page}
        body = crm_http.get(f"{V8}/Accounts", params=query).json()
        seen += [r["id"] for r in body["data"]]
        if not body["info"]["more_records"]:
            break
        token = body["info"]["next_page_token"]
        assert body["info"]["page_token_expiry"]
    assert len(seen) == len(set(seen)) == 2105
    assert seen == sorted(seen)
    first = crm_http.get(f"{V8}/Accounts", params=params).json()["info"]["next_page_token"]
    body = _error(crm_http.get(f"{V8}/Accounts", params={"fields": "Phone", "page_token": first,
                                                         "sort_order": "asc"}),
                  400, "TOKEN_BOUND_DATA_MISMATCH")
    assert body["details"] == {"param_name": "page_token"}
    emu_reset.emu.crm.page_tokens[first]["expiry"] -= timedelta(days=2)
    body = _error(crm_http.get(f"{V8}/Accounts", params={**params, "page_token": first}), 400,
                  "EXPIRED_VALUE")
    assert body["details"]["api_name"] == "page_token"


def test_if_modified_since_is_inclusive_and_304_when_nothing(crm_http):
    future = "2099-01-01T00:00:00+00:00"
    response = crm_http.get(f"{V8}/Accounts", params={"fields": "id"},
                            headers={"If-Modified-Since": future})
    assert response.status_code == 304 and response.content == b""
    first = crm_http.get(f"{V8}/Accounts", params={"fields": "id", "per_page": 1}).json()
    rec_id = first["data"][0]["id"]
    updated = crm_http.put(f"{V8}/Accounts/{rec_id}", json={"data": [{"Phone": "+1 555 0199"}]})
    stamp = updated.json()["data"][0]["details"]["Modified_Time"]
    body = crm_http.get(f"{V8}/Accounts", params={"fields": "Phone", "sort_by": "Modified_Time"},
                        headers={"If-Modified-Since": stamp}).json()
    assert [r["id"] for r in body["data"]] == [rec_id]
    assert body["data"][0]["Phone"] == "+1 555 0199"
    _error(crm_http.get(f"{V8}/Accounts", params={"fields": "id"},
                        headers={"If-Modified-Since": "yesterday"}), 400, "INVALID_DATA")


def test_ids_filter_and_empty_is_204(crm_http):
    ids = [r["id"] for r in crm_http.get(f"{V8}/Vendors", params={"fields": "id"}).json()["data"]]
    body = crm_http.get(f"{V8}/Vendors", params={"fields": "id", "ids": ",".join(ids[:2])}).json()
    assert {r["id"] for r in body["data"]} == set(ids[:2])
    response = crm_http.get(f"{V8}/Vendors", params={"fields": "id", "ids": "1"})
    assert response.status_code == 204 and response.content == b""


def test_cvid_filters_and_unknown_cvid(crm_http):
    views = crm_http.get(f"{V8}/settings/custom_views", params={"module": "Accounts"}).json()
    key = next(v for v in views["custom_views"] if v["name"] == "Key Accounts")
    body = crm_http.get(f"{V8}/Accounts", params={"fields": "Industry", "cvid": key["id"]}).json()
    assert body["data"] and all(r["Industry"] == "Technology" for r in body["data"])
    recent = next(v for v in views["custom_views"] if v["system_name"] == "RecentlyCreated")
    response = crm_http.get(f"{V8}/Accounts", params={"fields": "id", "cvid": recent["id"]})
    assert response.status_code == 204  # the seed was created long ago
    body = _error(crm_http.get(f"{V8}/Accounts", params={"fields": "id", "cvid": "123"}), 400,
                  "INVALID_DATA")
    assert body["details"] == {"param_name": "cvid"}


def test_get_one_and_unknown_id(crm_http):
    rec_id = crm_http.get(f"{V8}/Deals", params={"fields": "id"}).json()["data"][0]["id"]
    body = crm_http.get(f"{V8}/Deals/{rec_id}").json()
    [deal] = body["data"]
    assert deal["id"] == rec_id and "Stage" in deal and "Probability" in deal
    only = crm_http.get(f"{V8}/Deals/{rec_id}", params={"fields": "Deal_Name"}).json()["data"][0]
    assert set(only) == {"id", "Deal_Name"}
    body = _error(crm_http.get(f"{V8}/Deals/42"), 400, "INVALID_DATA")
    assert body["message"] == "the id given seems to be invalid"


def test_deleted_records_list(crm_http):
    body = crm_http.get(f"{V8}/Products/deleted").json()
    assert {d["type"] for d in body["data"]} == {"permanent"}  # purged long ago
    assert all(d["display_name"] is None and d["deleted_by"] is None for d in body["data"])
    assert crm_http.get(f"{V8}/Products/deleted", params={"type": "recycle"}).status_code == 204
    ids = [r["id"] for r in crm_http.get(f"{V8}/Products", params={"fields": "id"}).json()["data"]]
    assert crm_http.delete(f"{V8}/Products", params={"ids": ",".join(ids[:2])}).status_code == 200
    body = crm_http.get(f"{V8}/Products/deleted", params={"type": "recycle"}).json()
    assert {d["id"] for d in body["data"]} == set(ids[:2])
    item = body["data"][0]
    assert item["type"] == "recycle" and item["display_name"]
    assert set(item["deleted_by"]) == {"name", "id"} and ISO.match(item["deleted_time"])
    assert body["info"]["count"] == 2 and body["info"]["more_records"] is False
    body = crm_http.get(f"{V8}/Products/deleted", params={"type": "permanent"}).json()
    assert body["info"]["count"] == 2
    response = crm_http.get(f"{V8}/Products/deleted",
                            headers={"If-Modified-Since": "2099-01-01T00:00:00+00:00"})
    assert response.status_code == 304
    response = crm_http.get(f"{V8}/Products/deleted", params={"type": "gone"})
    assert response.status_code == 400
    assert response.json()["data"][0]["code"] == "PATTERN_NOT_MATCHED"


def test_count(crm_http, emu_reset):
    body = crm_http.get(f"{V8}/Accounts/actions/count").json()
    assert body == {"count": len(emu_reset.emu.crm.records("Accounts"))}


@pytest.mark.parametrize("path", ["/crm/v8/Accounts/actions/count", "/crm/v8/settings/fields",
                                  "/crm/v8/users"])
def test_missing_or_bad_token_is_401(emulator, path):
    import httpx

    response = httpx.get(emulator.base_url + path, params={"module": "Accounts"})
    assert response.status_code == 401
    assert response.json()["code"] == "AUTHENTICATION_FAILURE"
    response = httpx.get(emulator.base_url + path, params={"module": "Accounts"},
                         headers={"Authorization": "Zoho-oauthtoken nope"})
    assert response.status_code == 401 and response.json()["code"] == "INVALID_TOKEN"


def test_scope_mismatch(emu_reset):
    import httpx

    base = emu_reset.base_url
    config = emu_reset.emu.config
    refresh = httpx.post(f"{base}/__emulator__/tokens", json={
        "scopes": ["ZohoCRM.modules.contacts.READ"]}).json()["refresh_token"]
    token = httpx.post(f"{base}/oauth/v2/token", data={
        "grant_type": "refresh_token", "client_id": config.client_id,
        "client_secret": config.client_secret, "refresh_token": refresh}).json()["access_token"]
    headers = {"Authorization": f"Zoho-oauthtoken {token}"}
    ok = httpx.get(f"{base}{V8}/Contacts", params={"fields": "id"}, headers=headers)
    assert ok.status_code == 200
    denied = httpx.get(f"{base}{V8}/Accounts", params={"fields": "id"}, headers=headers)
    assert denied.status_code == 401 and denied.json()["code"] == "OAUTH_SCOPE_MISMATCH"
    write = httpx.post(f"{base}{V8}/Contacts", json={"data": [{"Last_Name": "x"}]},
                       headers=headers)
    assert write.status_code == 401


def test_unserved_settings_paths_are_unknown_urls(crm_http):
    response = crm_http.get(f"{V8}/settings/layouts", params={"module": "Accounts"})
    _error(response, 404, "INVALID_URL_PATTERN")


def _related_ids(response) -> set[str]:
    if response.status_code == 204:  # a related list with no records
        return set()
    assert response.status_code == 200, response.text
    return {r["id"] for r in response.json()["data"]}


def test_a_deals_related_list_holds_the_quotes_whose_deal_lookup_names_it(crm_http, emu_reset):
    crm = emu_reset.emu.crm
    account_id = sorted(crm.records("Accounts"))[0]
    product_id = sorted(crm.records("Products"))[0]
    [deal] = crm_http.post(f"{V8}/Deals", json={"data": [{
        "Deal_Name": "Related", "Stage": "Qualification"}]}).json()["data"]
    deal_id = deal["details"]["id"]
    url, fields = f"{V8}/Deals/{deal_id}/Quotes", {"fields": "Subject,Deal_Name,Books_URL__c"}
    assert crm_http.get(url, params=fields).status_code == 204
    made = crm_http.post(f"{V8}/Quotes", json={"data": [{
        "Subject": "Q-rel", "Account_Name": {"id": account_id}, "Deal_Name": {"id": deal_id},
        "Books_URL__c": "https://books.zoho.eu/app/1#/quotes/9",
        "Quoted_Items": [{"Product_Name": {"id": product_id}, "Quantity": 1}]}]})
    quote_id = made.json()["data"][0]["details"]["id"]
    [row] = crm_http.get(url, params=fields).json()["data"]
    assert row["id"] == quote_id and row["Deal_Name"]["id"] == deal_id
    assert row["Books_URL__c"].endswith("#/quotes/9")
    assert quote_id in _related_ids(crm_http.get(f"{V8}/Accounts/{account_id}/Quotes",
                                                 params=fields))
    # Taken off the deal: out of its related list.
    crm_http.put(f"{V8}/Quotes/{quote_id}", json={"data": [{"Deal_Name": None}]})
    assert crm_http.get(url, params=fields).status_code == 204
    # A module with no lookup to deals, an unknown list, an unknown record: refused.
    _error(crm_http.get(f"{V8}/Deals/{deal_id}/Vendors"), 400, "INVALID_DATA")
    _error(crm_http.get(f"{V8}/Deals/{deal_id}/Nope"), 400, "INVALID_DATA")
    _error(crm_http.get(f"{V8}/Deals/123/Quotes"), 400, "INVALID_DATA")
