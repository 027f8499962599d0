"""CRM emulator contract: search (criteria grammar, email/phone/word, limits, index lag) and
COQL."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from emulators import Sizes

V8 = "/crm/v8"


def _search(http, module: str, **params):
    return http.get(f"{V8}/{module}/search", params=params)


def _names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["Account_Name"] for r in response.json()["data"]]


def test_equals_is_contains_on_text_and_escaping(crm_http):
    names = _names(_search(crm_http, "Accounts", criteria="(Account_Name:equals:acme)",
                           fields="Account_Name"))
    assert set(names) == {"Acme Ltd", "ACME Limited", "Acme (UK), Ltd\\"}
    escaped = "(Account_Name:equals:Acme \\(UK\\)\\, Ltd\\\\)"
    assert _names(_search(crm_http, "Accounts", criteria=escaped,
                          fields="Account_Name")) == ["Acme (UK), Ltd\\"]
    # the documented percent-encoded form decodes to the same criteria
    url = f"{V8}/Accounts/search?fields=Account_Name&criteria=" + quote(escaped, safe="")
    assert _names(crm_http.get(url)) == ["Acme (UK), Ltd\\"]


def test_unicode_values(crm_http):
    assert _names(_search(crm_http, "Accounts", criteria="(Account_Name:starts_with:株式会社)",
                          fields="Account_Name")) == ["株式会社山田製作所"]
    assert _names(_search(crm_http, "Accounts", criteria="(Account_Name:equals:النور)",
                          fields="Account_Name")) == ["شركة النور للتجارة"]


def test_operators_on_types(crm_http, emu_reset):
    accounts = emu_reset.emu.crm.records("Accounts").values()
    response = _search(crm_http, "Accounts", criteria="(Industry:equals:Technology)",
                       fields="Industry")
    assert len(response.json()["data"]) == sum(a["Industry"] == "Technology" for a in accounts)
    response = _search(crm_http, "Accounts", criteria="(Industry:in:Technology,Retail)",
                       fields="Industry")
    assert {r["Industry"] for r in response.json()["data"]} <= {"Technology", "Retail"}
    response = _search(crm_http, "Accounts", criteria="(Employees:greater_than:5000)",
                       fields="Employees")
    assert all(r["Employees"] > 5000 for r in response.json().get("data", []))
    response = _search(crm_http, "Deals", criteria="(Amount:between:1000,200000)",
                       fields="Amount")
    if response.status_code == 200:
        assert all(1000 <= r["Amount"] <= 200000 for r in response.json()["data"])
    response = _search(crm_http, "Accounts", criteria="(Industry:not_equal:Technology)",
                       fields="Industry")
    assert all(r["Industry"] != "Technology" for r in response.json()["data"])
    response = _search(crm_http, "Deals", criteria="(Closing_Date:greater_equal:2025-01-01)",
                       fields="Closing_Date")
    assert all(r["Closing_Date"] >= "2025-01-01" for r in response.json()["data"])


def test_and_or_nesting_and_lookup_by_id(crm_http, emu_reset):
    criteria = "((Account_Name:starts_with:Acme) and ((Account_Name:equals:UK) or " \
               "(Account_Name:equals:Limited)))"
    assert set(_names(_search(crm_http, "Accounts", criteria=criteria,
                              fields="Account_Name"))) == {"ACME Limited", "Acme (UK), Ltd\\"}
    contact = next(c for c in emu_reset.emu.crm.records("Contacts").values()
                   if c.get("Account_Name"))
    response = _search(crm_http, "Contacts",
                       criteria=f"(Account_Name:equals:{contact['Account_Name']})",
                       fields="Account_Name")
    assert contact["id"] in {r["id"] for r in response.json()["data"]}


@pytest.mark.parametrize("criteria", [
    "Account_Name:equals:x", "(Account_Name:equals:x", "(Account_Name:equals:x))",
    "(Nope:equals:x)", "(Account_Name:like:x)", "(Employees:greater_than:many)",
    "(Industry:starts_with:Tech)", "((Account_Name:equals:a) xor (Phone:equals:1))", "",
])
def test_bad_criteria_is_invalid_query(crm_http, criteria):
    response = _search(crm_http, "Accounts", criteria=criteria)
    assert response.status_code == 400, criteria
    assert response.json()["code"] == "INVALID_QUERY"


def test_criteria_limits(crm_http):
    many = " and ".join(["(Account_Name:equals:a)"] * 16)
    response = _search(crm_http, "Accounts", criteria=f"({many})")
    assert response.status_code == 400
    assert response.json()["code"] == "CRITERIA_LIMIT_EXCEEDED"
    values = ",".join(str(i) for i in range(101))
    response = _search(crm_http, "Accounts", criteria=f"(Account_Name:in:{values})")
    assert response.status_code == 400
    assert response.json()["message"] == 'Only 100 values are allowed in "IN" criteria'


def test_email_phone_word_and_missing_param(crm_http, emu_reset):
    contact = next(c for c in emu_reset.emu.crm.records("Contacts").values() if c.get("Phone"))
    response = _search(crm_http, "Contacts", email=contact["Email"].upper())
    assert contact["id"] in {r["id"] for r in response.json()["data"]}
    digits = "".join(ch for ch in contact["Phone"] if ch.isdigit())[-7:]
    response = _search(crm_http, "Contacts", phone=digits)
    assert contact["id"] in {r["id"] for r in response.json()["data"]}
    response = _search(crm_http, "Accounts", word="Söhne")
    assert [r["Account_Name"] for r in response.json()["data"]] == ["Müller & Söhne GmbH"]
    assert _search(crm_http, "Accounts", word="x").status_code == 400
    response = _search(crm_http, "Accounts")
    assert response.status_code == 400
    assert response.json()["code"] == "EXPECTED_PARAM_MISSING"
    assert response.json()["details"]["param_names"] == ["criteria", "email", "phone", "word"]


def test_no_match_is_204_and_limit_reached(crm_http):
    response = _search(crm_http, "Accounts", criteria="(Account_Name:equals:zzzzzz)")
    assert response.status_code == 204 and response.content == b""
    response = _search(crm_http, "Accounts", criteria="(Account_Name:starts_with:A)", page=11)
    assert response.status_code == 400
    assert response.json() == {"code": "LIMIT_REACHED", "details": {"limit": "2000"},
                               "message": "maximum response iteration limit reached",
                               "status": "error"}


def test_search_info_and_cvid(crm_http):
    views = crm_http.get(f"{V8}/settings/custom_views", params={"module": "Accounts"}).json()
    key = next(v["id"] for v in views["custom_views"] if v["name"] == "Key Accounts")
    body = _search(crm_http, "Accounts", criteria="(Account_Name:not_equal:zzz)", cvid=key,
                   fields="Industry", per_page=2).json()
    assert body["data"] and all(r["Industry"] == "Technology" for r in body["data"])
    assert set(body["info"]) == {"per_page", "count", "page", "more_records", "sort_by",
                                 "sort_order"}


def test_search_index_lag_and_coql_read_after_write(crm_http, set_faults):
    set_faults({"search_lag_s": 30})
    created = crm_http.post(f"{V8}/Accounts", json={"data": [{"Account_Name": "Laggard Inc"}]})
    rec_id = created.json()["data"][0]["details"]["id"]
    response = _search(crm_http, "Accounts", criteria="(Account_Name:equals:Laggard)")
    assert response.status_code == 204
    body = crm_http.post(f"{V8}/coql", json={
        "select_query": "select Account_Name from Accounts where Account_Name = 'Laggard Inc'"})
    assert body.json()["data"] == [{"Account_Name": "Laggard Inc", "id": rec_id}]


def test_search_2000_hits_limit(emu_reset, crm_http):
    emu_reset.emu.reset(sizes=Sizes(accounts=2050, contacts_per_account=0,
                                    unassociated_contacts=0, vendors=0, products=0, deals=0,
                                    books_customers=0, books_vendors=0, books_items=0))
    body = _search(crm_http, "Accounts", word="a", per_page=200, page=10)
    assert body.status_code == 400  # "a" is too short for word search
    response = _search(crm_http, "Accounts", criteria="(Account_Name:not_equal:zzz)", page=10)
    assert response.status_code == 200 and response.json()["info"]["more_records"] is True
    response = _search(crm_http, "Accounts", criteria="(Account_Name:not_equal:zzz)", page=11)
    assert response.json()["code"] == "LIMIT_REACHED"


# --------------------------------------------------------------------------------- COQL


def _coql(http, query: str, **extra):
    return http.post(f"{V8}/coql", json={"select_query": query, **extra})


def test_coql_select_where_order_limit(crm_http, emu_reset):
    accounts = emu_reset.emu.crm.records("Accounts").values()
    tech = sorted(a["Account_Name"] for a in accounts if a["Industry"] == "Technology")
    body = _coql(crm_http, "select Account_Name, Owner, Industry from Accounts "
                           "where Industry = 'Technology' order by Account_Name asc "
                           "limit 0, 2").json()
    assert [r["Account_Name"] for r in body["data"]] == tech[:2]
    assert set(body["data"][0]["Owner"]) == {"id"}
    assert body["info"] == {"count": 2, "more_records": len(tech) > 2}
    body = _coql(crm_http, "select Account_Name from Accounts where Industry = 'Technology' "
                           "order by Account_Name asc limit 2 offset 2").json()
    assert [r["Account_Name"] for r in body.get("data", [])] == tech[2:4]


def test_coql_operators(crm_http):
    like = _coql(crm_http, "select Account_Name from Accounts where Account_Name like '%acme%'")
    assert len(like.json()["data"]) == 3
    in_ = _coql(crm_http, "select Industry from Accounts where Industry in "
                          "('Technology', 'Retail') and (Employees > 10 or Employees is null)")
    assert {r["Industry"] for r in in_.json()["data"]} <= {"Technology", "Retail"}
    null = _coql(crm_http, "select Account_Name from Contacts where Account_Name is null")
    assert null.status_code == 200 and len(null.json()["data"]) == 2
    dotted = _coql(crm_http, "select Last_Name, Account_Name.Account_Name from Contacts "
                             "where Account_Name.Account_Name = 'Acme Ltd'")
    rows = dotted.json()["data"]
    assert rows and all(r["Account_Name.Account_Name"] == "Acme Ltd" for r in rows)
    when = _coql(crm_http, "select id from Accounts where Modified_Time >= "
                           "'2025-01-01T00:00:00+00:00' and Modified_Time < "
                           "'2099-01-01T00:00:00Z'")
    assert when.json()["info"]["count"] == 12
    none = _coql(crm_http, "select id from Accounts where Account_Name = 'nope'")
    assert none.status_code == 204 and none.content == b""


@pytest.mark.parametrize(("query", "code"), [
    ("select from where", "SYNTAX_ERROR"),
    ("select Account_Name Accounts", "SYNTAX_ERROR"),
    ("select Account_Name from Accounts where Account_Name = ", "SYNTAX_ERROR"),
    ("select Nope from Accounts", "INVALID_QUERY"),
    ("select Account_Name from Nowhere", "INVALID_QUERY"),
    ("select Account_Name from Accounts limit 2001", "INVALID_QUERY"),
    ("select Account_Name from Accounts where Employees like '%1'", "INVALID_QUERY"),
    ("select Account_Name from Accounts where Employees > 'many'", "INVALID_QUERY"),
    ("select Account_Name, Account_Name from Accounts", "DUPLICATE_DATA"),
    ("select " + ", ".join(["Account_Name"] + [f"Billing_City{i}" for i in range(50)])
     + " from Accounts", "LIMIT_EXCEEDED"),
])
def test_coql_errors(crm_http, query, code):
    response = _coql(crm_http, query)
    assert response.status_code == 400, query
    body = response.json()
    assert body["code"] == code and body["status"] == "error", body


def test_coql_missing_query_and_meta(crm_http):
    response = crm_http.post(f"{V8}/coql", json={})
    assert response.status_code == 400 and response.json()["code"] == "MANDATORY_NOT_FOUND"
    body = _coql(crm_http, "select Account_Name, Industry from Accounts limit 1",
                 include_meta=["fields"]).json()
    assert body["fields"]["Industry"]["data_type"] == "picklist"
