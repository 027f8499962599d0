"""Books emulator: contacts, contact persons, custom fields, CRM links, lists."""

from __future__ import annotations

import pytest

CF = "cf_crm_id"


@pytest.fixture
def org(emu_reset) -> str:
    """The default organization id."""
    return emu_reset.emu.config.books_org_ids[0]


def q(org: str, **extra) -> dict:
    """Query parameters with organization_id."""
    return {"organization_id": org, **extra}


def create(http, org, body, plural="contacts"):
    """POST a record, assert 201, return it."""
    response = http.post(f"/books/v3/{plural}", params=q(org), json=body)
    assert response.status_code == 201, response.text
    return response.json()[plural[:-1]]


def all_rows(http, org, plural="contacts", **params):
    """Every row of a list, following has_more_page."""
    rows, page = [], 1
    while True:
        body = http.get(f"/books/v3/{plural}", params=q(org, page=page, **params)).json()
        rows += body[plural]
        if not body["page_context"]["has_more_page"]:
            return rows
        page += 1


def test_create_get_update_delete_customer(books_http, org):
    created = books_http.post("/books/v3/contacts", params=q(org), json={
        "contact_name": "Zoë Café Ltd", "company_name": "Zoë Café Ltd",
        "customer_sub_type": "business", "payment_terms": 30,
        "billing_address": {"city": "Zürich", "country": "Switzerland"},
        "contact_persons": [{"first_name": "Ana", "last_name": "Ruiz", "email": "a@x.example",
                             "is_primary_contact": True}, {"first_name": "Bo"}],
    })
    assert created.status_code == 201
    assert created.json()["message"] == "The contact has been created"
    contact = created.json()["contact"]
    cid = contact["contact_id"]
    assert cid.isdigit() and len(cid) == 15
    assert contact["contact_type"] == "customer" and contact["status"] == "active"
    assert contact["payment_terms_label"] == "Net 30"
    assert contact["billing_address"]["city"] == "Zürich"
    assert [p["first_name"] for p in contact["contact_persons"]] == ["Ana", "Bo"]
    assert contact["primary_contact_id"] == contact["contact_persons"][0]["contact_person_id"]
    assert contact["created_time"].endswith("+0000") and ":" not in contact["created_time"][-5:]

    detail = books_http.get(f"/books/v3/contacts/{cid}", params=q(org)).json()["contact"]
    assert detail == contact
    keep = contact["contact_persons"][1]["contact_person_id"]
    updated = books_http.put(f"/books/v3/contacts/{cid}", params=q(org), json={
        "notes": "VIP", "contact_persons": [{"contact_person_id": keep, "email": "bo@x.example"},
                                            {"first_name": "Cy"}]})
    assert updated.status_code == 200
    assert updated.json()["message"] == "Contact has been updated successfully"
    persons = updated.json()["contact"]["contact_persons"]
    # Ana was left out, so she is removed; Bo is kept and becomes primary.
    assert [p["first_name"] for p in persons] == ["Bo", "Cy"]
    assert persons[0]["email"] == "bo@x.example" and persons[0]["is_primary_contact"]
    assert updated.json()["contact"]["notes"] == "VIP"
    assert updated.json()["contact"]["contact_name"] == "Zoë Café Ltd"  # partial update

    deleted = books_http.delete(f"/books/v3/contacts/{cid}", params=q(org))
    assert deleted.json() == {"code": 0, "message": "The contact has been deleted."}
    assert books_http.get(f"/books/v3/contacts/{cid}", params=q(org)).status_code == 404


def test_duplicate_display_name(books_http, org):
    create(books_http, org, {"contact_name": "Dup & Co"})
    again = books_http.post("/books/v3/contacts", params=q(org), json={"contact_name": "Dup & Co"})
    assert again.status_code == 400
    assert again.json() == {"code": 3062, "message": 'The customer "Dup & Co" already exists. '
                            "Please specify a different name."}
    vendor = create(books_http, org, {"contact_name": "Dup & Co", "contact_type": "vendor"})
    assert vendor["customer_sub_type"] == ""
    second = books_http.post("/books/v3/contacts", params=q(org),
                             json={"contact_name": "Dup & Co", "contact_type": "vendor"})
    assert second.status_code == 400 and "vendor" in second.json()["message"]
    other = create(books_http, org, {"contact_name": "Other"})
    rename = books_http.put(f"/books/v3/contacts/{other['contact_id']}", params=q(org),
                            json={"contact_name": "Dup & Co"})
    assert rename.status_code == 400 and rename.json()["code"] == 3062
    # a failed update leaves the record untouched
    still = books_http.get(f"/books/v3/contacts/{other['contact_id']}", params=q(org)).json()
    assert still["contact"]["contact_name"] == "Other"


def test_individual_customer_and_currency(books_http, org):
    contact = create(books_http, org, {"contact_name": "Jürgen Bäcker",
                                       "customer_sub_type": "individual",
                                       "currency_code": "EUR"})
    assert contact["customer_sub_type"] == "individual"
    assert contact["currency_code"] == "EUR" and contact["currency_symbol"] == "€"
    bad = books_http.post("/books/v3/contacts", params=q(org),
                          json={"contact_name": "Yen Co", "currency_code": "JPY"})
    assert bad.status_code == 400 and "JPY" in bad.json()["message"]
    wrong_id = books_http.post("/books/v3/contacts", params=q(org),
                               json={"contact_name": "Id Co", "currency_id": "1"})
    assert wrong_id.status_code == 400


def test_custom_fields_and_unique_value(books_http, org):
    contact = create(books_http, org, {"contact_name": "Cf Ltd", "custom_fields": [
        {"api_name": CF, "value": "4876876000000123"}, {"index": 2, "value": "SMB"}]})
    values = {c["api_name"]: c["value"] for c in contact["custom_fields"]}
    assert values == {CF: "4876876000000123", "cf_segment": "SMB"}
    assert contact["custom_field_hash"][CF] == "4876876000000123"
    clash = books_http.post("/books/v3/contacts", params=q(org), json={
        "contact_name": "Cf Two", "custom_fields": [{"api_name": CF, "value": "4876876000000123"}]})
    assert clash.status_code == 400 and clash.json()["code"] == 1001
    by_label = create(books_http, org, {"contact_name": "Cf Three",
                                        "custom_fields": [{"label": "Segment", "value": "X"}]})
    assert by_label["custom_field_hash"]["cf_segment"] == "X"


def test_upsert_by_unique_custom_field(books_http, org):
    headers = {"X-Unique-Identifier-Key": CF, "X-Unique-Identifier-Value": "crm-1"}
    absent = books_http.put("/books/v3/contacts", params=q(org), headers=headers,
                            json={"contact_name": "Upsert Ltd"})
    assert absent.status_code == 404 and absent.json()["code"] == 1002
    made = books_http.put("/books/v3/contacts", params=q(org),
                          headers={**headers, "X-Upsert": "true"},
                          json={"contact_name": "Upsert Ltd"})
    assert made.status_code == 201
    contact = made.json()["contact"]
    assert contact["custom_field_hash"][CF] == "crm-1"
    again = books_http.put("/books/v3/contacts", params=q(org),
                           headers={**headers, "X-Upsert": "true"},
                           json={"contact_name": "Upsert Ltd", "website": "u.example"})
    assert again.status_code == 200
    assert again.json()["contact"]["contact_id"] == contact["contact_id"]
    assert again.json()["contact"]["website"] == "u.example"
    not_unique = books_http.put("/books/v3/contacts", params=q(org), json={},
                                headers={"X-Unique-Identifier-Key": "cf_segment",
                                         "X-Unique-Identifier-Value": "SMB"})
    assert not_unique.status_code == 400 and not_unique.json()["code"] == 2


def test_crm_links_and_status_crm_filter(books_http, org):
    linked = create(books_http, org, {"contact_name": "Linked AG",
                                      "zcrm_account_id": "4876876000000999"})
    assert linked["is_linked_with_zohocrm"] is True
    rows = all_rows(books_http, org, zcrm_account_id="4876876000000999")
    assert [r["contact_id"] for r in rows] == [linked["contact_id"]]
    crm_rows = all_rows(books_http, org, filter_by="Status.Crm")
    assert linked["contact_id"] in {r["contact_id"] for r in crm_rows}
    assert all(r["is_linked_with_zohocrm"] for r in crm_rows)
    vendor = create(books_http, org, {"contact_name": "Linked Vendor", "contact_type": "vendor",
                                      "zcrm_vendor_id": "4876876000000555"})
    assert [r["contact_id"] for r in all_rows(books_http, org, zcrm_vendor_id=
                                              "4876876000000555")] == [vendor["contact_id"]]


def test_list_filters_and_summary_shape(books_http, org):
    create(books_http, org, {"contact_name": "Filter Één", "company_name": "Één BV",
                             "notes": "Ruft nur dienstags an",
                             "contact_persons": [{"first_name": "Lia",
                                                  "email": "lia@een.example"}]})
    vendor = create(books_http, org, {"contact_name": "Filter Vendor", "contact_type": "vendor"})
    rows = all_rows(books_http, org, contact_name_startswith="filter")
    assert {r["contact_name"] for r in rows} == {"Filter Één", "Filter Vendor"}
    row = next(r for r in rows if r["contact_name"] == "Filter Één")
    assert "contact_persons" not in row and row["email"] == "lia@een.example"
    assert row["first_name"] == "Lia"
    assert [r["contact_name"] for r in all_rows(books_http, org, contact_name_contains="ÉÉN")] \
        == ["Filter Één"]
    vendors = all_rows(books_http, org, contact_type="vendor")
    assert vendor["contact_id"] in {r["contact_id"] for r in vendors}
    assert {r["contact_type"] for r in vendors} == {"vendor"}
    assert [r["contact_name"] for r in all_rows(books_http, org, email="LIA@een.example")] == \
        ["Filter Één"]
    assert [r["contact_name"] for r in all_rows(books_http, org, search_text="DIENSTAGS")] == \
        ["Filter Één"]
    assert all_rows(books_http, org, search_text="één bv") == []  # company: not searched


def test_active_inactive(books_http, org):
    contact = create(books_http, org, {"contact_name": "Sleepy"})
    cid = contact["contact_id"]
    off = books_http.post(f"/books/v3/contacts/{cid}/inactive", params=q(org))
    assert off.json() == {"code": 0, "message": "The contact has been marked as inactive."}
    inactive = {r["contact_id"] for r in all_rows(books_http, org, filter_by="Status.Inactive")}
    assert cid in inactive
    assert cid not in {r["contact_id"] for r in all_rows(books_http, org,
                                                         filter_by="Status.Active")}
    books_http.post(f"/books/v3/contacts/{cid}/active", params=q(org))
    detail = books_http.get(f"/books/v3/contacts/{cid}", params=q(org)).json()["contact"]
    assert detail["status"] == "active"


def test_paging_and_sort_by_last_modified(books_http, org, emu_reset):
    for i in range(7):
        create(books_http, org, {"contact_name": f"Page {i}"})
    first = books_http.get("/books/v3/contacts", params=q(org, per_page=3)).json()
    context = first["page_context"]
    assert context["page"] == 1 and context["per_page"] == 3 and context["has_more_page"]
    assert context["report_name"] == "Contacts" and context["applied_filter"] == "Status.All"
    assert context["sort_column"] == "contact_name"
    rows = all_rows(books_http, org, per_page=3)
    total = len(emu_reset.emu.books.org(org).records["contacts"])
    assert len(rows) == total == len({r["contact_id"] for r in rows})
    newest = all_rows(books_http, org, sort_column="last_modified_time", sort_order="D")
    stamps = [r["last_modified_time"] for r in newest]
    assert stamps == sorted(stamps, reverse=True)
    names = [r["contact_name"] for r in all_rows(books_http, org, sort_column="contact_name")]
    assert names == sorted(names, key=str.casefold)


def test_no_last_modified_filter_on_contacts(books_http, org):
    # Not documented for contacts, so it is ignored like any unknown parameter.
    every = all_rows(books_http, org)
    since = all_rows(books_http, org, last_modified_time="2999-01-01T00:00:00+0000")
    assert len(since) == len(every)


def test_contact_person_endpoints(books_http, org):
    contact = create(books_http, org, {"contact_name": "People Inc",
                                       "contact_persons": [{"first_name": "Ann"}]})
    cid = contact["contact_id"]
    made = books_http.post("/books/v3/contacts/contactpersons", params=q(org),
                           json={"contact_id": cid, "first_name": "Ben", "email": "b@p.example"})
    assert made.status_code == 201
    person = made.json()["contact_person"]
    pid = person["contact_person_id"]
    listed = books_http.get(f"/books/v3/contacts/{cid}/contactpersons", params=q(org)).json()
    assert [p["first_name"] for p in listed["contact_persons"]] == ["Ann", "Ben"]
    one = books_http.get(f"/books/v3/contacts/{cid}/contactpersons/{pid}", params=q(org))
    assert one.json()["contact_person"]["email"] == "b@p.example"
    edited = books_http.put(f"/books/v3/contacts/contactpersons/{pid}", params=q(org),
                            json={"contact_id": cid, "first_name": "Benny"})
    assert edited.json()["contact_person"]["first_name"] == "Benny"
    primary = books_http.post(f"/books/v3/contacts/contactpersons/{pid}/primary",
                              params=q(org))
    assert primary.json()["code"] == 0
    detail = books_http.get(f"/books/v3/contacts/{cid}", params=q(org)).json()["contact"]
    assert detail["primary_contact_id"] == pid and detail["first_name"] == "Benny"
    gone = books_http.delete(f"/books/v3/contacts/contactpersons/{pid}", params=q(org))
    assert gone.json()["message"] == "The contact person has been deleted."
    assert books_http.delete(f"/books/v3/contacts/contactpersons/{pid}",
                             params=q(org)).status_code == 404
    no_name = books_http.post("/books/v3/contacts/contactpersons", params=q(org),
                              json={"contact_id": cid})
    assert no_name.status_code == 400


def test_failed_create_leaves_no_trace(books_http, org):
    bad = books_http.post("/books/v3/contacts", params=q(org), json={
        "contact_name": "Half Made", "custom_fields": [{"api_name": "cf_nope", "value": "1"}]})
    assert bad.status_code == 400
    good = books_http.post("/books/v3/contacts", params=q(org), json={"contact_name": "Half Made"})
    assert good.status_code == 201


def test_new_primary_person_takes_the_flag(books_http, org):
    contact = create(books_http, org, {"contact_name": "Primary Swap",
                                       "contact_persons": [{"first_name": "Old"}]})
    made = books_http.post("/books/v3/contacts/contactpersons", params=q(org), json={
        "contact_id": contact["contact_id"], "first_name": "New", "is_primary_contact": True})
    assert made.status_code == 201
    detail = books_http.get(f"/books/v3/contacts/{contact['contact_id']}",
                            params=q(org)).json()["contact"]
    assert detail["first_name"] == "New"
    assert [p["is_primary_contact"] for p in detail["contact_persons"]] == [True, False]


def test_bulk_delete(books_http, org):
    ids = [create(books_http, org, {"contact_name": f"Bulk {i}"})["contact_id"] for i in range(3)]
    missing = books_http.delete("/books/v3/contacts",
                                params=q(org, contact_ids=f"{ids[0]},999"))
    assert missing.status_code == 404
    assert books_http.get(f"/books/v3/contacts/{ids[0]}", params=q(org)).status_code == 200
    done = books_http.delete("/books/v3/contacts", params=q(org, contact_ids=",".join(ids)))
    assert done.json() == {"code": 0, "message": "The contacts have been deleted."}
    assert all(books_http.get(f"/books/v3/contacts/{i}", params=q(org)).status_code == 404
               for i in ids)
    assert books_http.delete("/books/v3/contacts", params=q(org)).status_code == 400
