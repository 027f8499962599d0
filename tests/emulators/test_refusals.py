"""Strict like Zoho, not stricter: a body key Zoho does not document is ignored, not refused,
unless Zoho documents the refusal (docs/emulator-refusals.md lists what is refused and why)."""

from __future__ import annotations

import pytest

V8 = "/crm/v8"


@pytest.fixture
def org(emu_reset) -> str:
    return emu_reset.emu.config.books_org_ids[0]


def _first(http, org: str, plural: str, **params) -> dict:
    body = http.get(f"/books/v3/{plural}", params={"organization_id": org, **params}).json()
    return body[plural][0]


def test_books_contact_ignores_undocumented_keys(books_http, org):
    """Zoho documents no refusal of an unknown key on a contact (contacts.yml has no error
    responses; the errors page lists none for it): the contact is created, the key dropped."""
    response = books_http.post("/books/v3/contacts", params={"organization_id": org}, json={
        "contact_name": "Ignored Keys Ltd", "x_legacy_flag": True,
        "contact_persons": [{"first_name": "Ada", "x_nickname": "ada"}]})
    assert response.status_code == 201, response.text
    contact = response.json()["contact"]
    assert "x_legacy_flag" not in contact
    assert "x_nickname" not in contact["contact_persons"][0]
    updated = books_http.put(f"/books/v3/contacts/{contact['contact_id']}",
                             params={"organization_id": org},
                             json={"website": "ignored.example", "x_legacy_flag": 1})
    assert updated.status_code == 200, updated.text
    assert updated.json()["contact"]["website"] == "ignored.example"


def test_books_item_ignores_undocumented_keys(books_http, org):
    response = books_http.post("/books/v3/items", params={"organization_id": org}, json={
        "name": "Ignored Key Item", "rate": 10, "x_colour": "blue"})
    assert response.status_code == 201, response.text
    assert "x_colour" not in response.json()["item"]


@pytest.mark.parametrize("plural", ["invoices", "salesorders"])
def test_books_transaction_ignores_undocumented_keys(books_http, org, plural):
    customer = _first(books_http, org, "contacts", contact_type="customer")
    item = _first(books_http, org, "items")
    response = books_http.post(f"/books/v3/{plural}", params={"organization_id": org}, json={
        "customer_id": customer["contact_id"], "x_channel": "web",
        "line_items": [{"item_id": item["item_id"], "quantity": 1, "x_line_note": "n"}]})
    assert response.status_code == 201, response.text
    record = response.json()[plural[:-1]]
    assert "x_channel" not in record and "x_line_note" not in record["line_items"][0]


def test_crm_record_ignores_undocumented_body_keys(crm_http):
    """A top-level key beside `data` (Zoho's write bodies carry `data`, `trigger`,
    `duplicate_check_fields`, …), a `$`-prefixed key and a read-only field are ignored."""
    response = crm_http.post(f"{V8}/Accounts", json={
        "data": [{"Account_Name": "Ignored Keys Inc", "$x_internal": "1",
                  "Created_Time": "2020-01-01T00:00:00+00:00"}],
        "x_client_tag": "etl"})
    assert response.status_code == 201, response.text
    assert response.json()["data"][0]["code"] == "SUCCESS"


def test_crm_unknown_field_is_refused_as_zoho_documents(crm_http):
    """Kept: Zoho's own v8 updateRecords 207 example answers an unknown API name with
    INVALID_DATA "the field api name given seems to be invalid"."""
    response = crm_http.post(f"{V8}/Accounts", json={
        "data": [{"Account_Name": "Unknown Field Inc", "No_Such_Field": "x"}]})
    assert response.status_code == 400
    item = response.json()["data"][0]
    assert item["code"] == "INVALID_DATA"
    assert item["details"] == {"api_name": "No_Such_Field", "json_path": "$.data[0].No_Such_Field"}
