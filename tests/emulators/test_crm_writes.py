"""CRM emulator contract: create, update, upsert, delete, validation errors and bad input."""

from __future__ import annotations

import pytest

V8 = "/crm/v8"


def _items(response, status: int) -> list[dict]:
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    return response.json()["data"]


def _first_id(http, module: str) -> str:
    body = http.get(f"{V8}/{module}", params={"fields": "id", "per_page": 1}).json()
    return body["data"][0]["id"]


def test_create_201_details_and_read_back(crm_http):
    account = _first_id(crm_http, "Accounts")
    [item] = _items(crm_http.post(f"{V8}/Contacts", json={"data": [{
        "First_Name": "Zoë", "Last_Name": "Ångström", "Email": "zoe@example.com",
        "Account_Name": {"id": account}}]}), 201)
    assert item["code"] == "SUCCESS" and item["message"] == "record added"
    details = item["details"]
    assert set(details) >= {"id", "Created_Time", "Modified_Time", "Created_By", "Modified_By"}
    assert details["$approval_state"] == "approved"
    rec = crm_http.get(f"{V8}/Contacts/{details['id']}").json()["data"][0]
    assert rec["Full_Name"] == "Zoë Ångström"
    assert rec["Account_Name"]["id"] == account and rec["Account_Name"]["name"]
    assert rec["Owner"]["id"] == details["Created_By"]["id"]


def test_mixed_results_207_and_all_failed_400(crm_http):
    items = _items(crm_http.post(f"{V8}/Vendors", json={"data": [
        {"Vendor_Name": "Good Vendor"}, {"Email": "no-name@example.com"}]}), 207)
    assert [i["status"] for i in items] == ["success", "error"]
    assert items[1] == {"code": "MANDATORY_NOT_FOUND", "details": {
        "api_name": "Vendor_Name", "json_path": "$.data[1].Vendor_Name"},
        "message": "required field not found", "status": "error"}
    items = _items(crm_http.post(f"{V8}/Vendors", json={"data": [{"Phone": "1"}]}), 400)
    assert items[0]["code"] == "MANDATORY_NOT_FOUND"


@pytest.mark.parametrize(("field", "value", "detail"), [
    ("Employees", "many", {"expected_data_type": "integer"}),
    ("Employees", 1.5, {"expected_data_type": "integer"}),
    ("Annual_Revenue", "lots", {"expected_data_type": "double"}),
    ("Annual_Revenue", 12345678901234567.5, {"maximum_length": 16}),
    ("Account_Name", "x" * 201, {"maximum_length": 200}),
    ("Description", "y" * 32001, {"maximum_length": 32000}),
    ("Industry", "Space Mining", None),
    ("Website", {"url": "x"}, {"expected_data_type": "website"}),
    ("Parent_Account", {"id": "999"}, {}),
    ("Owner", {"id": "123"}, {}),
])
def test_invalid_data_details(crm_http, field, value, detail):
    body = {"Account_Name": "Valid Name", field: value}
    [item] = _items(crm_http.post(f"{V8}/Accounts", json={"data": [body]}), 400)
    assert item["code"] == "INVALID_DATA" and item["status"] == "error"
    assert item["details"]["api_name"] == field
    assert item["details"]["json_path"] == f"$.data[0].{field}"
    if detail is None:
        assert "Technology" in item["details"]["supported_values"]
    else:
        for key, expected in detail.items():
            assert item["details"][key] == expected


def test_email_boolean_date_validation(crm_http):
    cases = [({"Email": "not-an-email"}, "Email"), ({"Email_Opt_Out": "yes"}, "Email_Opt_Out"),
             ({"Date_of_Birth": "31/12/1990"}, "Date_of_Birth")]
    for extra, name in cases:
        [item] = _items(crm_http.post(f"{V8}/Contacts", json={"data": [
            {"Last_Name": "Doe", **extra}]}), 400)
        assert item["code"] == "INVALID_DATA" and item["details"]["api_name"] == name


def test_read_only_fields_are_ignored_unknown_fields_rejected(crm_http):
    [item] = _items(crm_http.post(f"{V8}/Accounts", json={"data": [{
        "Account_Name": "Ignore Extras", "Created_Time": "2001-01-01T00:00:00Z",
        "$state": "save"}]}), 201)
    rec = crm_http.get(f"{V8}/Accounts/{item['details']['id']}").json()["data"][0]
    assert not rec["Created_Time"].startswith("2001")
    [item] = _items(crm_http.post(f"{V8}/Accounts", json={"data": [{
        "Account_Name": "Extras", "Not_A_Field": 1}]}), 400)
    assert item == {"code": "INVALID_DATA", "details": {
        "api_name": "Not_A_Field", "json_path": "$.data[0].Not_A_Field"},
        "message": "the field api name given seems to be invalid", "status": "error"}
    # Currency does not exist in an org without multi-currency
    [item] = _items(crm_http.post(f"{V8}/Accounts", json={"data": [{
        "Account_Name": "Extras", "Currency": "EUR"}]}), 400)
    assert item["details"]["api_name"] == "Currency"


def test_unique_field_duplicate_data(crm_http):
    assert _items(crm_http.post(f"{V8}/Products", json={"data": [
        {"Product_Name": "P1", "Books_Id__c": "ITEM-1"}]}), 201)
    [item] = _items(crm_http.post(f"{V8}/Products", json={"data": [
        {"Product_Name": "P2", "Books_Id__c": "item-1"}]}), 400)
    assert item["code"] == "DUPLICATE_DATA" and item["message"] == "duplicate data"
    details = item["details"]
    assert details["api_name"] == "Books_Id__c" and details["more_records"] is False
    assert details["duplicate_record"]["id"] == details["id"]
    assert details["duplicate_record"]["module"]["api_name"] == "Products"


def test_write_body_limits_and_malformed_bodies(crm_http):
    body = {"data": [{"Account_Name": f"A{i}"} for i in range(101)]}
    response = crm_http.post(f"{V8}/Accounts", json=body)
    assert response.status_code == 400
    assert response.json()["data"][0]["code"] == "LIMIT_EXCEEDED"
    for raw in (b"{not json", b"[]", b"", b"\xff\xfe", b'"text"'):
        response = crm_http.post(f"{V8}/Accounts", content=raw,
                                 headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and response.json() == {
            "code": "INVALID_DATA", "details": {},
            "message": "either the request body or parameters is in wrong format",
            "status": "error"}, raw
    for body in ({}, {"data": []}, {"data": {"Account_Name": "x"}}):
        response = crm_http.post(f"{V8}/Accounts", json=body)
        assert response.status_code == 400, body
        assert response.json()["code"] in ("MANDATORY_NOT_FOUND", "INVALID_DATA")
    [item] = _items(crm_http.post(f"{V8}/Accounts", json={"data": ["just a string"]}), 400)
    assert item["code"] == "INVALID_DATA"


def test_update_bulk_and_single(crm_http):
    rec_id = _first_id(crm_http, "Accounts")
    items = _items(crm_http.put(f"{V8}/Accounts", json={"data": [
        {"id": rec_id, "Phone": "+44 20 7946 0000"}, {"Phone": "1"}, {"id": "77", "Phone": "1"}]}),
        207)
    assert items[0]["message"] == "record updated"
    assert items[1]["code"] == "MANDATORY_NOT_FOUND" and items[1]["details"]["api_name"] == "id"
    assert items[2]["code"] == "INVALID_DATA"
    [item] = _items(crm_http.put(f"{V8}/Accounts/{rec_id}", json={"data": [
        {"Account_Name": ""}]}), 400)
    assert item["code"] == "MANDATORY_NOT_FOUND"
    [item] = _items(crm_http.put(f"{V8}/Accounts/{rec_id}", json={"data": [
        {"Website": "https://renamed.example"}]}), 200)
    rec = crm_http.get(f"{V8}/Accounts/{rec_id}", params={"fields": "Website,Phone"}).json()
    assert rec["data"][0] == {"id": rec_id, "Website": "https://renamed.example",
                              "Phone": "+44 20 7946 0000"}


def test_stage_change_sets_probability(crm_http):
    fields = crm_http.get(f"{V8}/settings/fields", params={"module": "Deals"}).json()["fields"]
    stage = next(f for f in fields if f["api_name"] == "Stage")
    mapping = {v["actual_value"]: v["probability"] for v in stage["pick_list_values"]
               if "probability" in v}
    rec_id = _first_id(crm_http, "Deals")
    for name in ("Negotiation/Review", "Closed Won", "Closed Lost"):
        _items(crm_http.put(f"{V8}/Deals/{rec_id}", json={"data": [{"Stage": name}]}), 200)
        deal = crm_http.get(f"{V8}/Deals/{rec_id}", params={"fields": "Stage,Probability"}).json()
        assert deal["data"][0]["Probability"] == mapping[name]
    _items(crm_http.put(f"{V8}/Deals/{rec_id}", json={"data": [
        {"Stage": "Qualification", "Probability": 33}]}), 200)
    deal = crm_http.get(f"{V8}/Deals/{rec_id}", params={"fields": "Probability"}).json()
    assert deal["data"][0]["Probability"] == 33


def test_upsert_by_unique_field_and_system_field(crm_http):
    body = {"data": [{"Account_Name": "Upsert Co", "Books_Id__c": "BK-9"}],
            "duplicate_check_fields": ["Books_Id__c"]}
    [first] = _items(crm_http.post(f"{V8}/Accounts/upsert", json=body), 200)
    assert first["action"] == "insert" and first["message"] == "record added"
    body["data"][0]["Phone"] = "+1 212 555 0100"
    [second] = _items(crm_http.post(f"{V8}/Accounts/upsert", json=body), 200)
    assert second["action"] == "update" and second["duplicate_field"] == "Books_Id__c"
    assert second["details"]["id"] == first["details"]["id"]
    # Without duplicate_check_fields the system field (Account_Name) is checked first.
    [third] = _items(crm_http.post(f"{V8}/Accounts/upsert", json={"data": [
        {"Account_Name": "acme ltd", "Phone": "1"}]}), 200)
    assert third["action"] == "update" and third["duplicate_field"] == "Account_Name"
    response = crm_http.post(f"{V8}/Accounts/upsert", json={
        "data": [{"Account_Name": "x"}], "duplicate_check_fields": ["Nope"]})
    assert response.status_code == 400 and response.json()["code"] == "INVALID_DATA"


def test_delete_bulk_single_and_missing_ids(crm_http, emu_reset):
    ids = list(emu_reset.emu.crm.records("Deals"))[:2]
    items = _items(crm_http.delete(f"{V8}/Deals", params={"ids": f"{ids[0]},123"}), 207)
    assert items[0] == {"code": "SUCCESS", "details": {"id": ids[0]},
                        "message": "record deleted", "status": "success"}
    assert items[1]["code"] == "INVALID_DATA"
    _items(crm_http.delete(f"{V8}/Deals/{ids[1]}"), 200)
    assert crm_http.get(f"{V8}/Deals/{ids[1]}").status_code == 400
    again = crm_http.delete(f"{V8}/Deals/{ids[1]}")
    assert again.status_code == 400 and again.json()["message"] == "invalid record id"
    [item] = _items(crm_http.delete(f"{V8}/Deals", params={"ids": "abc"}), 400)
    assert item["message"] == "either the request body or parameters is in wrong format"
    response = crm_http.delete(f"{V8}/Deals")
    assert response.status_code == 400
    assert response.json()["code"] == "REQUIRED_PARAM_MISSING"


def test_line_items_and_totals(crm_http, emu_reset):
    crm = emu_reset.emu.crm
    product = next(iter(crm.records("Products").values()))
    account = next(iter(crm.records("Accounts")))
    [item] = _items(crm_http.post(f"{V8}/Quotes", json={"data": [{
        "Subject": "Q-1", "Account_Name": {"id": account},
        "Quoted_Items": [{"Product_Name": {"id": product["id"]}, "Quantity": 3},
                         {"Product_Name": {"id": product["id"]}, "Quantity": 1,
                          "List_Price": 10.5, "Discount": 0.5}]}]}), 201)
    quote = crm_http.get(f"{V8}/Quotes/{item['details']['id']}").json()["data"][0]
    rows = quote["Quoted_Items"]
    assert rows[0]["List_Price"] == product["Unit_Price"]
    assert rows[0]["Total"] == round(3 * product["Unit_Price"], 2)
    assert rows[1]["Total"] == 10.0
    assert quote["Sub_Total"] == round(rows[0]["Total"] + 10.0, 2)
    assert rows[0]["Product_Name"]["name"] == product["Product_Name"]
    [bad] = _items(crm_http.post(f"{V8}/Quotes", json={"data": [{
        "Subject": "Q-2", "Account_Name": {"id": account},
        "Quoted_Items": [{"Quantity": 1}]}]}), 400)
    assert bad["code"] == "MANDATORY_NOT_FOUND"
    assert bad["details"]["json_path"] == "$.data[0].Quoted_Items[0].Product_Name"


def test_bad_input_never_500(crm_http):
    """A sweep of odd requests: always a Zoho envelope, never a 5xx or a traceback."""
    rec_id = _first_id(crm_http, "Accounts")
    calls = [
        ("GET", f"{V8}/Accounts", {"params": {"fields": ",,,"}}),
        ("GET", f"{V8}/Accounts", {"params": {"fields": "id", "page": "-1"}}),
        ("GET", f"{V8}/Accounts", {"params": {"fields": "id", "page_token": "zzz"}}),
        ("GET", f"{V8}/Accounts/search", {"params": {"criteria": "((("}}),
        ("GET", f"{V8}/Accounts/search", {"params": {"criteria": "(Account_Name:equals:a"}}),
        ("GET", f"{V8}/Accounts/search", {"params": {"criteria": "(Employees:greater_than:x)"}}),
        ("POST", f"{V8}/coql", {"json": {"select_query": 42}}),
        ("POST", f"{V8}/coql", {"content": b"nope"}),
        ("PUT", f"{V8}/Accounts/{rec_id}", {"json": {"data": [{"Owner": "abc"}]}}),
        ("PUT", f"{V8}/Accounts/{rec_id}", {"json": {"data": [{"Parent_Account": []}]}}),
        ("POST", f"{V8}/Quotes", {"json": {"data": [{"Quoted_Items": "x"}]}}),
        ("POST", f"{V8}/Quotes", {"json": {"data": [{"Quoted_Items": [{"id": "1"}]}]}}),
        ("POST", f"{V8}/Accounts/upsert", {"json": {"data": [{}],
                                                    "duplicate_check_fields": "x"}}),
        ("POST", f"{V8}/actions/watch", {"json": {"watch": [{"channel_id": "x"}]}}),
        ("DELETE", f"{V8}/actions/watch", {}),
        ("GET", f"{V8}/settings/fields", {}),
        ("GET", f"{V8}/settings/custom_views/1", {"params": {"module": "Accounts"}}),
        ("GET", f"{V8}/users", {"params": {"type": "Martians"}}),
        ("PATCH", f"{V8}/Accounts", {}),
    ]
    for method, url, kwargs in calls:
        response = crm_http.request(method, url, **kwargs)
        assert 400 <= response.status_code < 500, (method, url, response.text)
        assert "Traceback" not in response.text
        body = response.json()
        assert body.get("status") == "error" or "data" in body or "watch" in body, body


def test_if_unmodified_since_guards_updates(crm_http):
    rec_id = _first_id(crm_http, "Accounts")
    stamp = crm_http.get(f"{V8}/Accounts/{rec_id}", params={"fields": "Modified_Time"}).json()
    seen = stamp["data"][0]["Modified_Time"]
    ok = crm_http.put(f"{V8}/Accounts", headers={"If-Unmodified-Since": seen},
                      json={"data": [{"id": rec_id, "Phone": "1"}]})
    assert ok.status_code == 200
    stale = crm_http.put(f"{V8}/Accounts", headers={"If-Unmodified-Since": seen},
                         json={"data": [{"id": rec_id, "Phone": "2"}]})
    assert stale.status_code == 412  # the seed's Modified_Time is long before "now"
    [item] = stale.json()["data"]
    assert item["code"] == "ALREADY_MODIFIED" and item["details"]["id"] == rec_id


def _minimal_value(http, field: dict, emu):
    """A valid value for a mandatory field, from its metadata only."""
    kind = field["data_type"]
    if kind == "lookup":
        target = field["lookup"]["module"]["api_name"]
        return {"id": next(iter(emu.crm.records(target)))}
    if kind == "picklist":
        return field["pick_list_values"][1]["actual_value"]
    if kind == "subform":
        product = next(iter(emu.crm.records("Products")))
        return [{"Product_Name": {"id": product}, "Quantity": 2}]
    return "Minimal"


@pytest.mark.parametrize("module", ["Accounts", "Contacts", "Vendors", "Products", "Deals",
                                    "Quotes", "Sales_Orders", "Invoices", "Purchase_Orders"])
def test_every_module_accepts_its_mandatory_fields_only(crm_http, emu_reset, module):
    fields = crm_http.get(f"{V8}/settings/fields", params={"module": module}).json()["fields"]
    mandatory = [f for f in fields if f["system_mandatory"]]
    record = {f["api_name"]: _minimal_value(crm_http, f, emu_reset.emu) for f in mandatory}
    [item] = _items(crm_http.post(f"{V8}/{module}", json={"data": [record]}), 201)
    for name in record:
        partial = {k: v for k, v in record.items() if k != name}
        [error] = _items(crm_http.post(f"{V8}/{module}", json={"data": [partial]}), 400)
        assert error["code"] == "MANDATORY_NOT_FOUND" and error["details"]["api_name"] == name
    assert crm_http.get(f"{V8}/{module}/{item['details']['id']}").status_code == 200
