"""Books emulator: items, estimates, invoices, sales orders, purchase orders."""

from __future__ import annotations

import time

import pytest

CF = "cf_crm_id"


@pytest.fixture
def org(emu_reset) -> str:
    """The default organization id."""
    return emu_reset.emu.config.books_org_ids[0]


def q(org: str, **extra) -> dict:
    """Query parameters with organization_id."""
    return {"organization_id": org, **extra}


def create(http, org, plural, body, **params):
    """POST a record, assert 201, return it."""
    response = http.post(f"/books/v3/{plural}", params=q(org, **params), json=body)
    assert response.status_code == 201, response.text
    return response.json()[plural[:-1]]


def rows(http, org, plural, **params):
    """One page (200) of a list."""
    return http.get(f"/books/v3/{plural}", params=q(org, **params)).json()[plural]


@pytest.fixture
def parties(books_http, org):
    """A customer, a vendor and two items created for the test."""
    customer = create(books_http, org, "contacts", {"contact_name": "Txn Kunde GmbH",
                                                    "payment_terms": 15})
    vendor = create(books_http, org, "contacts", {"contact_name": "Txn Supplier",
                                                  "contact_type": "vendor"})
    widget = create(books_http, org, "items", {"name": "Txn Widget", "rate": 19.99,
                                               "sku": "TXN-1"})
    service = create(books_http, org, "items", {"name": "Txn Service", "rate": "100.005",
                                                "product_type": "service"})
    return customer, vendor, widget, service


def test_items_crud_and_uniqueness(books_http, org):
    item = create(books_http, org, "items", {
        "name": "Élan Sensor", "rate": 12.5, "sku": "EL-1", "item_type": "sales_and_purchases",
        "product_type": "goods", "description": "ü", "custom_fields": [
            {"api_name": CF, "value": "p-1"}]})
    assert item["rate"] == 12.5 and item["item_type"] == "sales_and_purchases"
    assert item["status"] == "active" and item["custom_field_hash"][CF] == "p-1"
    dup = books_http.post("/books/v3/items", params=q(org), json={"name": "Élan Sensor",
                                                                   "rate": 1})
    assert dup.status_code == 400 and dup.json()["code"] == 1001
    dup_sku = books_http.post("/books/v3/items", params=q(org),
                              json={"name": "Other", "rate": 1, "sku": "EL-1"})
    assert dup_sku.status_code == 400
    no_rate = books_http.post("/books/v3/items", params=q(org), json={"name": "No rate"})
    assert no_rate.status_code == 400
    for bad in ({"name": "T", "rate": "abc"}, {"name": "T", "rate": -1},
                {"name": "T", "rate": 1, "item_type": "gadget"},
                {"name": "T", "rate": 1, "product_type": "x"}, {"name": "T" * 101, "rate": 1}):
        response = books_http.post("/books/v3/items", params=q(org), json=bad)
        assert response.status_code == 400, bad
    iid = item["item_id"]
    updated = books_http.put(f"/books/v3/items/{iid}", params=q(org), json={"rate": "13.456"})
    assert updated.status_code == 200 and updated.json()["item"]["rate"] == 13.46
    assert books_http.post(f"/books/v3/items/{iid}/inactive", params=q(org)).json()[
        "message"] == "The item has been marked as inactive."
    assert iid in {r["item_id"] for r in rows(books_http, org, "items",
                                              filter_by="Status.Inactive")}
    assert [r["name"] for r in rows(books_http, org, "items", name_startswith="élan")] == \
        ["Élan Sensor"]
    assert books_http.delete(f"/books/v3/items/{iid}", params=q(org)).json()["message"] == \
        "The item has been deleted."


def test_item_list_sorting_and_rate_filter(books_http, org):
    listed = rows(books_http, org, "items", sort_column="rate", sort_order="D")
    rates = [r["rate"] for r in listed]
    assert rates == sorted(rates, reverse=True)
    cheap = rows(books_http, org, "items", rate_less_than="50")
    assert all(r["rate"] < 50 for r in cheap)
    bad = books_http.get("/books/v3/items", params=q(org, sort_column="last_modified_time"))
    assert bad.status_code == 400  # Books has no modified-time sort for items
    for value in ("NaN", "x", "Infinity"):
        response = books_http.get("/books/v3/items", params=q(org, rate_greater_than=value))
        assert response.status_code == 400 and response.json()["code"] == 2


def test_estimate_lifecycle(books_http, org, parties):
    customer, _, widget, service = parties
    estimate = create(books_http, org, "estimates", {
        "customer_id": customer["contact_id"], "zcrm_potential_id": "4876876000000777",
        "line_items": [{"item_id": widget["item_id"], "quantity": 3},
                       {"item_id": service["item_id"], "rate": 0.1, "quantity": 0.5},
                       {"name": "Ad-hoc work", "rate": "10.10", "quantity": 2}],
        "custom_fields": [{"api_name": CF, "value": "deal-1"}]})
    assert estimate["status"] == "draft" and estimate["estimate_number"].startswith("EST-")
    assert estimate["customer_name"] == "Txn Kunde GmbH"
    assert [li["item_total"] for li in estimate["line_items"]] == [59.97, 0.05, 20.2]
    assert estimate["sub_total"] == 80.22 and estimate["total"] == 80.22
    eid = estimate["estimate_id"]
    assert [r["estimate_id"] for r in rows(books_http, org, "estimates",
                                           zcrm_potential_id="4876876000000777")] == [eid]
    bad = books_http.post(f"/books/v3/estimates/{eid}/status/accepted", params=q(org))
    assert bad.status_code == 200  # draft -> accepted is allowed
    assert bad.json()["message"] == "Estimate status has been changed to Accepted."
    declined = books_http.post(f"/books/v3/estimates/{eid}/status/declined", params=q(org))
    assert declined.json()["message"] == "Estimate status has been changed to Declined."
    sent = books_http.post(f"/books/v3/estimates/{eid}/status/sent", params=q(org))
    assert sent.status_code == 400 and sent.json()["code"] == 2
    detail = books_http.get(f"/books/v3/estimates/{eid}", params=q(org)).json()["estimate"]
    assert detail["status"] == "declined" and detail["declined_date"]
    filtered = rows(books_http, org, "estimates", filter_by="Status.Declined")
    assert {r["status"] for r in filtered} == {"declined"}


def test_invoice_from_estimate_and_void(books_http, org, parties):
    customer, _, widget, _ = parties
    estimate = create(books_http, org, "estimates", {
        "customer_id": customer["contact_id"], "zcrm_potential_id": "4876876000000888",
        "line_items": [{"item_id": widget["item_id"], "quantity": 2}]})
    made = books_http.post("/books/v3/invoices/fromestimates",
                           params=q(org, estimate_ids=estimate["estimate_id"]))
    assert made.status_code == 200
    assert made.json() == {"code": 0, "message": "The invoices have been created."}
    estimate = books_http.get(f"/books/v3/estimates/{estimate['estimate_id']}",
                              params=q(org)).json()["estimate"]
    assert estimate["status"] == "invoiced"
    invoices = rows(books_http, org, "invoices", zcrm_potential_id="4876876000000888")
    assert len(invoices) == 1 and invoices[0]["total"] == 39.98
    iid = invoices[0]["invoice_id"]
    invoice = books_http.get(f"/books/v3/invoices/{iid}", params=q(org)).json()["invoice"]
    assert invoice["invoiced_estimate_id"] == estimate["estimate_id"]
    assert invoice["payment_terms"] == 0 and invoice["balance"] == 39.98
    again = books_http.post("/books/v3/invoices/fromestimates",
                            params=q(org, estimate_ids=estimate["estimate_id"]))
    assert again.status_code == 400
    sent = books_http.post(f"/books/v3/invoices/{iid}/status/sent", params=q(org))
    assert sent.json()["message"] == "Invoice status has been changed to Sent."
    assert books_http.post(f"/books/v3/invoices/{iid}/status/sent",
                           params=q(org)).status_code == 200  # replay-safe
    void = books_http.post(f"/books/v3/invoices/{iid}/status/void", params=q(org))
    assert void.json()["message"] == "Invoice status has been changed to Void."
    voided = books_http.get(f"/books/v3/invoices/{iid}", params=q(org)).json()["invoice"]
    assert voided["status"] == "void" and voided["balance"] == 0
    edit = books_http.put(f"/books/v3/invoices/{iid}", params=q(org), json={"notes": "x"})
    assert edit.status_code == 400
    draft = books_http.post(f"/books/v3/invoices/{iid}/status/draft", params=q(org))
    assert draft.status_code == 200
    assert books_http.post(f"/books/v3/invoices/{iid}/status/void",
                           params=q(org)).status_code == 200


def test_invoice_rules(books_http, org, parties):
    customer, vendor, widget, _ = parties
    invoice = create(books_http, org, "invoices", {
        "customer_id": customer["contact_id"], "date": "2026-01-10", "payment_terms": 30,
        "currency_code": "GBP", "line_items": [{"item_id": widget["item_id"]}]})
    assert invoice["due_date"] == "2026-02-09" and invoice["currency_code"] == "GBP"
    assert invoice["invoice_number"].startswith("INV-")
    for body in (
        {"customer_id": vendor["contact_id"], "line_items": [{"item_id": widget["item_id"]}]},
        {"customer_id": customer["contact_id"], "line_items": []},
        {"customer_id": customer["contact_id"], "line_items": [{"item_id": "1"}]},
        {"customer_id": customer["contact_id"], "line_items": [{"rate": 1}]},
        {"customer_id": customer["contact_id"], "currency_code": "JPY",
         "line_items": [{"item_id": widget["item_id"]}]},
        {"customer_id": customer["contact_id"], "date": "10/01/2026",
         "line_items": [{"item_id": widget["item_id"]}]},
        {"customer_id": customer["contact_id"], "line_items": [{"item_id": widget["item_id"],
                                                                "quantity": "many"}]},
        {"line_items": [{"item_id": widget["item_id"]}]},
    ):
        response = books_http.post("/books/v3/invoices", params=q(org), json=body)
        assert response.status_code == 400, body
        assert isinstance(response.json()["code"], int) and response.json()["code"] != 0
    manual = create(books_http, org, "invoices", {
        "customer_id": customer["contact_id"], "invoice_number": "MAN-1",
        "line_items": [{"item_id": widget["item_id"]}]}, ignore_auto_number_generation="true")
    assert manual["invoice_number"] == "MAN-1"
    clash = books_http.post("/books/v3/invoices", params=q(org, ignore_auto_number_generation=
                                                            "true"),
                            json={"customer_id": customer["contact_id"],
                                  "invoice_number": "MAN-1",
                                  "line_items": [{"item_id": widget["item_id"]}]})
    assert clash.status_code == 400
    # in use: neither the customer nor the item can be deleted
    assert books_http.delete(f"/books/v3/contacts/{customer['contact_id']}",
                             params=q(org)).status_code == 400
    assert books_http.delete(f"/books/v3/items/{widget['item_id']}",
                             params=q(org)).status_code == 400


def test_line_item_update_replaces_lines(books_http, org, parties):
    customer, _, widget, service = parties
    estimate = create(books_http, org, "estimates", {
        "customer_id": customer["contact_id"],
        "line_items": [{"item_id": widget["item_id"]}, {"item_id": service["item_id"]}]})
    keep = estimate["line_items"][0]["line_item_id"]
    updated = books_http.put(f"/books/v3/estimates/{estimate['estimate_id']}", params=q(org),
                             json={"line_items": [{"line_item_id": keep, "quantity": 10}]})
    assert updated.status_code == 200
    lines = updated.json()["estimate"]["line_items"]
    assert [li["line_item_id"] for li in lines] == [keep]
    assert updated.json()["estimate"]["total"] == 199.9


def test_last_modified_time_filter(books_http, org, parties, emu_reset):
    customer, _, widget, _ = parties
    before = emu_reset.emu.now()
    stamp = before.strftime("%Y-%m-%dT%H:%M:%S%z")
    old = {r["estimate_id"] for r in rows(books_http, org, "estimates")}
    time.sleep(0.01)
    made = create(books_http, org, "estimates", {
        "customer_id": customer["contact_id"], "line_items": [{"item_id": widget["item_id"]}]})
    recent = rows(books_http, org, "estimates", last_modified_time=stamp)
    ids = {r["estimate_id"] for r in recent}
    assert made["estimate_id"] in ids and not (ids & old)
    # an unencoded '+' arrives as a space and still parses
    spaced = books_http.get(f"/books/v3/estimates?organization_id={org}"
                            f"&last_modified_time={stamp}").json()["estimates"]
    assert {r["estimate_id"] for r in spaced} == ids
    bad = books_http.get("/books/v3/estimates", params=q(org, last_modified_time="yesterday"))
    assert bad.status_code == 400


def test_salesorder_and_purchaseorder_status(books_http, org, parties):
    customer, vendor, widget, _ = parties
    so = create(books_http, org, "salesorders", {
        "customer_id": customer["contact_id"], "zcrm_potential_id": "4876876000000111",
        "line_items": [{"item_id": widget["item_id"], "quantity": 4}]})
    assert so["salesorder_number"].startswith("SO-") and so["total"] == 79.96
    opened = books_http.post(f"/books/v3/salesorders/{so['salesorder_id']}/status/open",
                             params=q(org))
    assert opened.status_code == 201
    assert opened.json()["message"] == "Sales order status has been changed to Open."
    void = books_http.post(f"/books/v3/salesorders/{so['salesorder_id']}/status/void",
                           params=q(org))
    assert void.status_code == 201
    po = create(books_http, org, "purchaseorders", {
        "vendor_id": vendor["contact_id"], "line_items": [{"item_id": widget["item_id"]}]})
    assert po["purchaseorder_number"].startswith("PO-") and po["vendor_name"] == "Txn Supplier"
    pid = po["purchaseorder_id"]
    billed = books_http.post(f"/books/v3/purchaseorders/{pid}/status/billed", params=q(org))
    assert billed.status_code == 400
    for action, message in (("open", "The purchase order has been marked as open."),
                            ("billed", "The purchase order has been marked as billed.")):
        response = books_http.post(f"/books/v3/purchaseorders/{pid}/status/{action}",
                                   params=q(org))
        assert response.status_code == 201 and response.json()["message"] == message
    wrong_party = books_http.post("/books/v3/purchaseorders", params=q(org), json={
        "vendor_id": customer["contact_id"], "line_items": [{"item_id": widget["item_id"]}]})
    assert wrong_party.status_code == 400


@pytest.mark.parametrize("plural", ["items", "estimates", "invoices", "salesorders",
                                    "purchaseorders"])
def test_upsert_on_every_resource(books_http, org, parties, plural):
    customer, vendor, widget, _ = parties
    body = {"name": "Upserted item", "rate": 5} if plural == "items" else {
        ("vendor_id" if plural == "purchaseorders" else "customer_id"):
            (vendor if plural == "purchaseorders" else customer)["contact_id"],
        "line_items": [{"item_id": widget["item_id"]}]}
    headers = {"X-Unique-Identifier-Key": CF, "X-Unique-Identifier-Value": f"crm-{plural}",
               "X-Upsert": "true"}
    made = books_http.put(f"/books/v3/{plural}", params=q(org), headers=headers, json=body)
    assert made.status_code == 201, made.text
    record = made.json()[plural[:-1]]
    again = books_http.put(f"/books/v3/{plural}", params=q(org), headers=headers,
                           json={"reference_number": "R-1"} if plural != "items"
                           else {"description": "again"})
    assert again.status_code == 200
    id_field = plural[:-1] + "_id"
    assert again.json()[plural[:-1]][id_field] == record[id_field]


def test_send_on_create_and_item_details(books_http, org, parties):
    customer, _, widget, service = parties
    sent = create(books_http, org, "invoices", {
        "customer_id": customer["contact_id"], "line_items": [{"item_id": widget["item_id"]}]},
        send="true")
    assert sent["status"] == "sent"
    details = books_http.get("/books/v3/itemdetails", params=q(
        org, item_ids=f"{widget['item_id']},{service['item_id']}")).json()
    assert [i["name"] for i in details["items"]] == ["Txn Widget", "Txn Service"]
    assert books_http.get("/books/v3/itemdetails", params=q(org, item_ids="x")).status_code \
        == 400
    invoices = books_http.get("/books/v3/invoices",
                              params=q(org, sort_column="last_modified_time"))
    assert invoices.status_code == 400  # BK-OAS: not a sort column of invoices


def test_discounts_percent_or_flat(books_http, org, parties):
    customer, _, widget, _ = parties
    estimate = create(books_http, org, "estimates", {
        "customer_id": customer["contact_id"], "discount": "10%",
        "line_items": [{"item_id": widget["item_id"], "quantity": 10, "discount": "50%"},
                       {"name": "Flat", "rate": 100, "discount": 15}]})
    lines = estimate["line_items"]
    assert lines[0]["discount"] == "50%" and lines[0]["item_total"] == 99.95
    assert lines[1]["discount"] == 15 and lines[1]["item_total"] == 85
    assert estimate["sub_total"] == 184.95
    assert estimate["discount"] == "10%" and estimate["total"] == 166.45  # 184.95 - 18.495
    for bad in ("150%", "x%", -1, 1000):
        response = books_http.post("/books/v3/estimates", params=q(org), json={
            "customer_id": customer["contact_id"],
            "line_items": [{"name": "L", "rate": 100, "discount": bad}]})
        assert response.status_code == 400, bad


def test_numbers_are_unique_and_freed_on_delete(books_http, org, parties):
    customer, _, widget, _ = parties
    body = {"customer_id": customer["contact_id"], "salesorder_number": "SO-MINE",
            "line_items": [{"item_id": widget["item_id"]}]}
    first = create(books_http, org, "salesorders", body, ignore_auto_number_generation="true")
    clash = books_http.post("/books/v3/salesorders",
                            params=q(org, ignore_auto_number_generation="true"), json=body)
    assert clash.status_code == 400 and clash.json()["code"] == 1001
    books_http.delete(f"/books/v3/salesorders/{first['salesorder_id']}", params=q(org))
    create(books_http, org, "salesorders", body, ignore_auto_number_generation="true")
    auto = create(books_http, org, "salesorders", {k: v for k, v in body.items()
                                                   if k != "salesorder_number"})
    assert auto["salesorder_number"].startswith("SO-0")


@pytest.mark.parametrize("plural,value,statuses", [
    ("invoices", "Status.Unpaid", {"sent"}), ("invoices", "Status.OverDue", set()),
    ("purchaseorders", "Status.Issued", {"open"}), ("salesorders", "Status.Shipped", set()),
    ("estimates", "Status.Viewed", set()),
])
def test_documented_filter_by_values(books_http, org, plural, value, statuses):
    response = books_http.get(f"/books/v3/{plural}", params=q(org, filter_by=value))
    assert response.status_code == 200
    assert response.json()["page_context"]["applied_filter"] == value
    assert {r["status"] for r in response.json()[plural]} <= statuses
