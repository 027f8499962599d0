"""Document types declared at run time: a Books resource and its CRM module, served by one
declaration (`POST /__emulator__/document-types` or `Emulator.add_document_type`).

The example is a retainer invoice, a Books document the emulator does not serve by itself:
Books `retainerinvoices` (customer party, statuses draft/open/void here, upsert by the unique
custom field cf_crm_id) and the CRM custom module `Retainer_Invoices` with the line-item
subform `Retainer_Items`. Each test module gets its own emulator, so the session's shared
emulator never sees the declared type.
"""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from fastapi.testclient import TestClient

from emulators import DocumentType, Emulator, EmulatorConfig, EmulatorServer, Sizes
from emulators.crm.fields import MODULES

SMALL = Sizes(accounts=6, contacts_per_account=1, unassociated_contacts=1, vendors=3,
              products=5, deals=3, books_customers=4, books_vendors=2, books_items=3)
RETAINER_INVOICES = {
    "resource": "retainerinvoices", "label": "Retainer Invoice", "party": "customer",
    "number_prefix": "RET-", "statuses": ["draft", "open", "void"],
    "crm_module": "Retainer_Invoices", "crm_subform": "Retainer_Items",
}
V8 = "/crm/v8"


@pytest.fixture(scope="module")
def server():
    """An emulator of this module's own, with retainer invoices declared over HTTP."""
    with EmulatorServer(EmulatorConfig(sizes=SMALL)) as running:
        answer = httpx.post(f"{running.base_url}/__emulator__/document-types",
                            json=RETAINER_INVOICES)
        assert answer.status_code == 201, answer.text
        yield running


@pytest.fixture
def http(server):
    """A client with a valid access token, on freshly reset sample data."""
    httpx.post(f"{server.base_url}/__emulator__/reset", json={}).raise_for_status()
    config = server.emu.config
    token = httpx.post(f"{server.base_url}/oauth/v2/token", data={
        "grant_type": "refresh_token", "client_id": config.client_id,
        "client_secret": config.client_secret,
        "refresh_token": config.refresh_token}).json()["access_token"]
    with httpx.Client(base_url=server.base_url,
                      headers={"Authorization": f"Zoho-oauthtoken {token}"}) as client:
        yield client


@pytest.fixture
def org(server) -> str:
    return server.emu.config.books_org_ids[0]


def _party_and_item(http, org) -> tuple[str, str]:
    params = {"organization_id": org}
    customer = next(c for c in http.get("/books/v3/contacts", params=params).json()["contacts"]
                    if c["contact_type"] == "customer")
    item = http.get("/books/v3/items", params=params).json()["items"][0]
    return customer["contact_id"], item["item_id"]


def _retainer_invoice(http, org, **extra) -> dict:
    customer, item = _party_and_item(http, org)
    body = {"customer_id": customer, "line_items": [
        {"item_id": item, "quantity": 2, "rate": 10.5, "discount": "10%"}], **extra}
    made = http.post("/books/v3/retainerinvoices", params={"organization_id": org}, json=body)
    assert made.status_code == 201, made.text
    return made.json()["retainerinvoice"]


# ------------------------------------------------------------------------------ declaring


def test_the_control_lists_what_was_declared_with_zoho_naming(server):
    listed = httpx.get(f"{server.base_url}/__emulator__/document-types").json()
    [doc] = listed["document_types"]
    assert (doc["key"], doc["id_field"], doc["number_field"]) == (
        "retainerinvoice", "retainerinvoice_id", "retainerinvoice_number")
    assert doc["crm_statuses"] == ["Draft", "Open", "Void"] and doc["crm_custom"] is True
    assert doc["actions"]["void"]["from"] == ["draft", "open"]


@pytest.mark.parametrize("body, words", [
    ({**RETAINER_INVOICES, "colour": "red"}, "unknown document type setting"),
    ({k: v for k, v in RETAINER_INVOICES.items() if k != "crm_subform"}, "needs: crm_subform"),
    ({**RETAINER_INVOICES, "resource": "estimates", "crm_module": "Estimates_Too"}, "already"),
    ({**RETAINER_INVOICES, "resource": "refunds", "crm_module": "Accounts"}, "already"),
    ({**RETAINER_INVOICES, "resource": "contacts", "crm_module": "Contacts_Too"}, "already"),
    ({**RETAINER_INVOICES, "party": "supplier", "resource": "debitnotes",
      "crm_module": "Debit_Notes"}, "party must be one of"),
    ({**RETAINER_INVOICES, "crm_subform": "Retainer Items"}, "not a CRM API name"),
    ({**RETAINER_INVOICES, "label": "Other"}, "already declared"),
])
def test_bad_or_clashing_declarations_are_refused_and_leave_no_trace(server, body, words):
    answer = httpx.post(f"{server.base_url}/__emulator__/document-types", json=body)
    assert answer.status_code == 400 and words in answer.json()["error"]
    assert [d.resource for d in server.emu.document_types] == ["retainerinvoices"]
    assert "Debit_Notes" not in server.emu.crm.catalogue.modules


def test_declaring_the_same_type_again_changes_nothing(server):
    again = httpx.post(f"{server.base_url}/__emulator__/document-types", json=RETAINER_INVOICES)
    assert again.status_code == 201
    assert len(server.emu.document_types) == 1
    assert len(server.emu.books.resources) == 9


def test_another_emulator_does_not_see_the_type():
    other = Emulator(EmulatorConfig(sizes=SMALL))
    assert "Retainer_Invoices" not in other.crm.catalogue.modules
    assert "retainerinvoices" not in {r.plural for r in other.books.resources}


# ------------------------------------------------------------------------------ Books


def test_books_create_get_update_and_totals(http, org):
    note = _retainer_invoice(http, org, reference_number="R-1", adjustment=1.25)
    assert note["retainerinvoice_number"] == "RET-00001" and note["status"] == "draft"
    [line] = note["line_items"]
    assert (line["quantity"], line["rate"], line["discount"]) == (2, 10.5, "10%")
    assert (note["sub_total"], note["total"]) == (18.9, 20.15)
    got = http.get(f"/books/v3/retainerinvoices/{note['retainerinvoice_id']}",
                   params={"organization_id": org})
    assert got.status_code == 200 and got.json()["retainerinvoice"]["reference_number"] == "R-1"
    changed = http.put(f"/books/v3/retainerinvoices/{note['retainerinvoice_id']}",
                       params={"organization_id": org}, json={"notes": "returned goods"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["message"] == "The retainer invoice has been updated."
    # a key the declaration does not name is ignored, as Books ignores undocumented keys
    unknown = http.put(f"/books/v3/retainerinvoices/{note['retainerinvoice_id']}",
                       params={"organization_id": org}, json={"salesperson_name": "x"})
    assert unknown.status_code == 200
    assert "salesperson_name" not in unknown.json()["retainerinvoice"]
    missing = http.get("/books/v3/retainerinvoices/460000000999999",
                       params={"organization_id": org})
    assert missing.status_code == 404 and missing.json()["message"] == (
        "Retainer Invoice does not exist.")


def test_books_upsert_by_the_unique_crm_id(http, org):
    customer, item = _party_and_item(http, org)
    body = {"customer_id": customer, "line_items": [{"item_id": item, "quantity": 1}]}
    headers = {"X-Unique-Identifier-Key": "cf_crm_id",
               "X-Unique-Identifier-Value": "5725767000009990001", "X-Upsert": "true"}
    params = {"organization_id": org}
    made = http.put("/books/v3/retainerinvoices", params=params, json=body, headers=headers)
    assert made.status_code == 201, made.text
    note = made.json()["retainerinvoice"]
    assert note["custom_field_hash"]["cf_crm_id"] == "5725767000009990001"
    again = http.put("/books/v3/retainerinvoices", params=params, headers=headers,
                     json={"reference_number": "second"})
    assert again.status_code == 200
    assert again.json()["retainerinvoice"]["retainerinvoice_id"] == note["retainerinvoice_id"]
    listed = http.get("/books/v3/retainerinvoices", params=params).json()["retainerinvoices"]
    assert [r["retainerinvoice_id"] for r in listed] == [note["retainerinvoice_id"]]


def test_books_sorted_scan_by_last_modified_time_and_filters(http, org):
    first = _retainer_invoice(http, org)
    time.sleep(1.1)  # Books timestamps have whole seconds
    second = _retainer_invoice(http, org)
    params = {"organization_id": org, "sort_column": "last_modified_time", "sort_order": "D"}
    answer = http.get("/books/v3/retainerinvoices", params=params).json()
    assert [r["retainerinvoice_id"] for r in answer["retainerinvoices"]] == [
        second["retainerinvoice_id"], first["retainerinvoice_id"]]
    assert answer["page_context"]["sort_column"] == "last_modified_time"
    assert set(answer["retainerinvoices"][0]) >= {
        "retainerinvoice_number", "customer_name", "total", "status", "last_modified_time"}
    since = http.get("/books/v3/retainerinvoices", params={
        "organization_id": org, "last_modified_time": second["last_modified_time"]})
    assert [r["retainerinvoice_id"] for r in since.json()["retainerinvoices"]] == [
        second["retainerinvoice_id"]]
    drafts = http.get("/books/v3/retainerinvoices", params={"organization_id": org,
                                                       "filter_by": "Status.Draft"})
    assert len(drafts.json()["retainerinvoices"]) == 2


def test_books_status_actions_and_delete(http, org):
    note = _retainer_invoice(http, org)
    path = f"/books/v3/retainerinvoices/{note['retainerinvoice_id']}"
    params = {"organization_id": org}
    opened = http.post(f"{path}/status/open", params=params)
    assert opened.status_code == 200
    assert opened.json()["message"] == "Retainer Invoice status has been changed to Open."
    assert http.post(f"{path}/status/void", params=params).status_code == 200
    back = http.post(f"{path}/status/open", params=params)
    assert back.status_code == 400  # open is reached from draft only
    locked = http.put(path, params=params, json={"notes": "late"})
    assert locked.status_code == 400  # a void document is not edited
    assert http.delete(path, params=params).status_code == 200
    assert http.get(path, params=params).status_code == 404


def test_books_webhooks_like_the_other_transactions(server, http, org):
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the standard library's name)
            length = int(self.headers["Content-Length"])
            received.append({"secret": self.headers.get("X-Webhook-Secret"),
                             **json.loads(self.rfile.read(length))})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    try:
        httpx.post(f"{server.base_url}/__emulator__/webhooks",
                   json={"org_id": org, "url": url, "secret": "s3"}).raise_for_status()
        note = _retainer_invoice(http, org)
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        httpx.delete(f"{server.base_url}/__emulator__/webhooks/{org}")
        receiver.shutdown()
    assert received[0]["event_type"] == "retainerinvoice_created"
    assert received[0]["secret"] == "s3"
    assert received[0]["data"]["retainerinvoice_id"] == note["retainerinvoice_id"]


def test_requests_are_counted_by_route_also_when_refused(server, http, org):
    httpx.post(f"{server.base_url}/__emulator__/stats/clear")
    http.get("/books/v3/retainerinvoices", params={"organization_id": org})
    httpx.post(f"{server.base_url}/__emulator__/faults", json={"rate_429": 1.0})
    try:
        refused = http.get("/books/v3/retainerinvoices/1", params={"organization_id": org})
    finally:
        httpx.post(f"{server.base_url}/__emulator__/faults", json={})
    assert refused.status_code == 429
    counted = httpx.get(f"{server.base_url}/__emulator__/stats").json()["requests"]
    assert counted["GET /books/v3/retainerinvoices"] == 1
    assert counted["GET /books/v3/retainerinvoices/{record_id}"] == 1


# ------------------------------------------------------------------------------ CRM


def test_crm_module_and_fields(http):
    modules = {m["api_name"]: m for m in http.get(f"{V8}/settings/modules").json()["modules"]}
    module = modules["Retainer_Invoices"]
    assert module["generated_type"] == "custom" and module["plural_label"] == "Retainer Invoices"
    # v8 no longer sends the capability flags (inventory_template_supported, …); v5 still does
    assert "inventory_template_supported" not in module
    old = {m["api_name"]: m for m in http.get("/crm/v5/settings/modules").json()["modules"]}
    assert old["Retainer_Invoices"]["inventory_template_supported"] is True
    assert modules["Quotes"]["generated_type"] == "default"
    fields = {f["api_name"]: f for f in http.get(
        f"{V8}/settings/fields", params={"module": "Retainer_Invoices"}).json()["fields"]}
    quote_fields = [f["api_name"] for f in http.get(
        f"{V8}/settings/fields", params={"module": "Quotes"}).json()["fields"]]
    assert fields["Retainer_Items"]["data_type"] == "subform"
    assert fields["Books_Id__c"]["unique"] == {"casesensitive": "false"}
    assert [v["actual_value"] for v in fields["Status"]["pick_list_values"]] == [
        "-None-", "Draft", "Open", "Void"]
    assert fields["Account_Name"]["lookup"]["module"]["api_name"] == "Accounts"
    assert set(fields) == (set(quote_fields) - {"Valid_Till", "Quoted_Items"}) | {
        "Due_Date", "Retainer_Items"}
    views = http.get(f"{V8}/settings/custom_views", params={"module": "Retainer_Invoices"})
    assert views.status_code == 200
    assert views.json()["custom_views"][0]["name"] == "All Retainer Invoices"


def test_crm_writes_compute_totals_and_upsert_by_books_id(http):
    account = http.get(f"{V8}/Accounts", params={"fields": "Account_Name"}).json()["data"][0]
    product = http.get(f"{V8}/Products", params={"fields": "Unit_Price"}).json()["data"][0]
    record = {"Subject": "Returned sensors", "Account_Name": {"id": account["id"]},
              "Status": "Draft", "Adjustment": 2.5, "Books_Id__c": "460000000777001",
              "Retainer_Items": [{"Product_Name": {"id": product["id"]}, "Quantity": 2,
                                  "List_Price": 40, "Discount": 5}]}
    made = http.post(f"{V8}/Retainer_Invoices", json={"data": [record]})
    assert made.status_code == 201, made.text
    rec_id = made.json()["data"][0]["details"]["id"]
    got = http.get(f"{V8}/Retainer_Invoices/{rec_id}").json()["data"][0]
    assert got["Retainer_Items"][0]["Total"] == 75.0
    assert (got["Sub_Total"], got["Grand_Total"]) == (75.0, 77.5)
    assert got["Account_Name"] == {"id": account["id"], "name": account["Account_Name"]}
    upsert = http.post(f"{V8}/Retainer_Invoices/upsert", json={
        "data": [{"Books_Id__c": "460000000777001", "Adjustment": 0}],
        "duplicate_check_fields": ["Books_Id__c"]})
    assert upsert.status_code == 200, upsert.text
    assert upsert.json()["data"][0]["action"] == "update"
    assert http.get(f"{V8}/Retainer_Invoices/{rec_id}").json()["data"][0]["Grand_Total"] == 75.0
    duplicate = http.post(f"{V8}/Retainer_Invoices", json={"data": [
        {**record, "Subject": "Again"}]})
    assert duplicate.json()["data"][0]["code"] == "DUPLICATE_DATA"


def test_crm_reads_modified_since_search_and_coql(http):
    account = http.get(f"{V8}/Accounts", params={"fields": "Account_Name"}).json()["data"][0]
    product = http.get(f"{V8}/Products", params={"fields": "Unit_Price"}).json()["data"][0]
    assert http.get(f"{V8}/Retainer_Invoices", params={"fields": "Subject"}).status_code == 204
    made = http.post(f"{V8}/Retainer_Invoices", json={"data": [{
        "Subject": "CN one", "Account_Name": {"id": account["id"]},
        "Retainer_Items": [{"Product_Name": {"id": product["id"]}, "Quantity": 1}]}]})
    modified = made.json()["data"][0]["details"]["Modified_Time"]
    listed = http.get(f"{V8}/Retainer_Invoices", params={"fields": "Subject,Modified_Time"},
                      headers={"If-Modified-Since": modified})
    assert [r["Subject"] for r in listed.json()["data"]] == ["CN one"]
    found = http.get(f"{V8}/Retainer_Invoices/search",
                     params={"criteria": "(Subject:equals:CN one)"})
    assert found.status_code == 200 and len(found.json()["data"]) == 1
    coql = http.post(f"{V8}/coql", json={
        "select_query": "select Subject, Grand_Total from Retainer_Invoices "
                        "where Subject = 'CN one'"})
    assert coql.status_code == 200, coql.text
    assert coql.json()["data"][0]["Grand_Total"] == float(
        Decimal(str(product["Unit_Price"])).quantize(Decimal("0.01")))


# ------------------------------------------------------------------------------ reset


def test_the_type_is_kept_across_reset_with_no_records(server, http, org):
    _retainer_invoice(http, org)
    httpx.post(f"{server.base_url}/__emulator__/reset", json={"seed": 3}).raise_for_status()
    listed = http.get("/books/v3/retainerinvoices", params={"organization_id": org})
    assert listed.status_code == 200 and listed.json()["retainerinvoices"] == []
    assert http.get(f"{V8}/Retainer_Invoices", params={"fields": "Subject"}).status_code == 204
    # The unique custom field is there again, so upserts by the CRM id still work.
    customer, item = _party_and_item(http, org)
    upsert = http.put("/books/v3/retainerinvoices", params={"organization_id": org}, json={
        "customer_id": customer, "line_items": [{"item_id": item}]}, headers={
        "X-Unique-Identifier-Key": "cf_crm_id", "X-Unique-Identifier-Value": "1",
        "X-Upsert": "true"})
    assert upsert.status_code == 201, upsert.text
    assert upsert.json()["retainerinvoice"]["retainerinvoice_number"] == "RET-00001"


def test_declaring_a_type_leaves_the_sample_data_as_it_was():
    plain, declared = Emulator(EmulatorConfig(sizes=SMALL)), Emulator(EmulatorConfig(sizes=SMALL))
    declared.add_document_type(RETAINER_INVOICES)
    frozen = plain.now()  # Books lays its sample times out back from now
    for emu in (plain, declared):
        emu.now = lambda: frozen
        emu.reset()
    for module in MODULES:
        assert declared.crm.records(module) == plain.crm.records(module)
    assert declared.books.org().records == plain.books.org().records


# ------------------------------------------------------------------------------ Python API


def test_python_api_serves_apps_built_before_and_after():
    emu = Emulator(EmulatorConfig(sizes=SMALL))
    before = TestClient(emu.app())
    doc = DocumentType.from_dict({**RETAINER_INVOICES, "resource": "debitnotes", "party": "vendor",
                                  "label": "Debit Note", "crm_module": "Debit_Notes",
                                  "crm_subform": "Debited_Items", "crm_date_field": None})
    assert emu.add_document_type(doc) is doc
    after = TestClient(emu.app())
    config = emu.config
    for client in (before, after):
        token = client.post("/oauth/v2/token", data={
            "grant_type": "refresh_token", "client_id": config.client_id,
            "client_secret": config.client_secret,
            "refresh_token": config.refresh_token}).json()["access_token"]
        headers = {"Authorization": f"Zoho-oauthtoken {token}"}
        params = {"organization_id": config.books_org_ids[0]}
        listed = client.get("/books/v3/debitnotes", params=params, headers=headers)
        assert listed.status_code == 200 and listed.json()["debitnotes"] == []
        legacy = client.get("/api/v3/debitnotes", params=params, headers=headers)
        assert legacy.status_code == 200
        fields = client.get(f"{V8}/settings/fields", params={"module": "Debit_Notes"},
                            headers=headers).json()["fields"]
        names = {f["api_name"] for f in fields}
        assert {"Vendor_Name", "Debited_Items"} <= names and "Due_Date" not in names
