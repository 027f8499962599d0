"""Mapping records both ways, for each customers mode, vendors and items, and bad input."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from crmbooks.settings import parse_module_settings
from crmbooks.sync.mapping import (
    FAILURE_COLUMNS,
    MAPPED_COLUMNS,
    attach_persons,
    explode_persons,
    route_books,
    route_crm_contacts,
    to_books,
    to_crm,
)
from crmbooks.sync.modules import CUSTOMERS, ITEMS, VENDORS
from mappings.schema import default_mapping

CUST = default_mapping("customers")
ACCOUNTS = CUSTOMERS.kind("accounts")
CONTACTS = CUSTOMERS.kind("contacts")
PERSONS = CUSTOMERS.kind("contact_persons")


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def account(i: str, name: str, **kw) -> dict:
    return {"id": i, "Account_Name": name, "Modified_Time": "2026-01-01T10:00:00+00:00", **kw}


def contact(i: str, first: str | None, last: str | None, account_id: str | None = None,
            **kw) -> dict:
    acc = {"id": account_id, "name": "Acc"} if account_id else None
    return {"id": i, "First_Name": first, "Last_Name": last, "Account_Name": acc, **kw}


# ------------------------------------------------------------------------------ accounts
def test_accounts_map_to_business_customers_with_nested_addresses():
    crm = frame(account("4150868000000002175", "Zylker", Phone="+1 555 0100",
                        Website="www.zylker.com", Billing_City="Austin",
                        Shipping_Country="USA", Description="Key account"))
    before = crm.copy()
    mapped, failures = to_books(crm, CUST, ACCOUNTS, CUSTOMERS)
    assert failures.empty and list(mapped.columns) == MAPPED_COLUMNS
    row = mapped.iloc[0]
    assert row.crm_id == "4150868000000002175" and row.record_key == (
        "crm/Accounts/4150868000000002175")
    assert row.payload == {
        "contact_type": "customer", "customer_sub_type": "business",
        "contact_name": "Zylker", "company_name": "Zylker",
        "billing_address": {"phone": "+1 555 0100", "city": "Austin"},
        "website": "www.zylker.com", "shipping_address": {"country": "USA"},
        "notes": "Key account",
        "custom_fields": [{"api_name": "cf_crm_id", "value": "4150868000000002175"}],
    }
    assert row.crm_values["Account_Name"] == "Zylker" and row.crm_values["Billing_Code"] is None
    pd.testing.assert_frame_equal(crm, before)  # input untouched


def test_ids_stay_strings_even_after_nan():
    crm = frame(account("4150868000000002175", "A"), {"id": None, "Account_Name": "B"},
                account("4150868000000002176", "C"))
    mapped, failures = to_books(crm, CUST, ACCOUNTS, CUSTOMERS)
    assert mapped.crm_id.tolist() == ["4150868000000002175", "4150868000000002176"]
    assert failures.code.tolist() == ["MISSING_ID"]


# ------------------------------------------------------------------------------ contacts
def test_contacts_mode_maps_individuals_with_a_primary_person():
    settings = parse_module_settings("customers", {"crm_module": "contacts"})
    routed = route_crm_contacts(frame(contact("9", "Ann", "Lee", "1", Email="ann@x.com"),
                                      contact("10", "Bo", "Ek")), settings)
    assert len(routed["contacts"]) == 2 and routed["contact_persons"].empty
    mapped, failures = to_books(routed["contacts"], CUST, CONTACTS, CUSTOMERS)
    assert failures.empty
    payload = mapped.iloc[0].payload
    assert payload["contact_name"] == "Ann Lee"
    assert payload["customer_sub_type"] == "individual"
    assert payload["contact_persons"] == [{"is_primary_contact": True, "first_name": "Ann",
                                           "last_name": "Lee", "email": "ann@x.com"}]


@pytest.mark.parametrize(("include", "individuals", "unsynced"), [(False, [], ["11"]),
                                                                   (True, ["11"], [])])
def test_accounts_and_contacts_routes_unassociated_contacts(include, individuals, unsynced):
    settings = parse_module_settings("customers", {"crm_module": "accounts+contacts",
                                                   "include_unassociated_contacts": include})
    routed = route_crm_contacts(frame(contact("9", "Ann", "Lee", "1"),
                                      contact("10", "Cy", "Oh", "1"),
                                      contact("11", "Solo", "Person")), settings)
    assert routed["contact_persons"].id.tolist() == ["9", "10"]
    assert routed["contacts"].id.tolist() == individuals
    assert routed["unsynced"].id.tolist() == unsynced


def test_accounts_mode_syncs_no_contacts():
    settings = parse_module_settings("customers")
    routed = route_crm_contacts(frame(contact("9", "Ann", "Lee", "1")), settings)
    assert routed["contacts"].empty and routed["unsynced"].id.tolist() == ["9"]


def test_contact_persons_are_grouped_under_their_account():
    accounts, _ = to_books(frame(account("1", "Zylker"), account("2", "Acme")), CUST, ACCOUNTS,
                           CUSTOMERS)
    persons, failures = to_books(frame(contact("9", "Ann", "Lee", "1", Title="CFO"),
                                       contact("10", "Cy", "Oh", "1")), CUST, PERSONS,
                                 CUSTOMERS)
    assert failures.empty and persons.parent_crm_id.tolist() == ["1", "1"]
    assert "custom_fields" not in persons.iloc[0].payload  # persons have no custom fields
    grouped = attach_persons(accounts, persons)
    assert grouped.iloc[0].payload["contact_persons"] == [
        {"first_name": "Ann", "last_name": "Lee", "designation": "CFO"},
        {"first_name": "Cy", "last_name": "Oh"}]
    assert "contact_persons" not in grouped.iloc[1].payload
    assert "contact_persons" not in accounts.iloc[0].payload  # input frame unchanged


# --------------------------------------------------------------------------- Books → CRM
def test_books_customers_route_by_sub_type_and_map_to_crm():
    settings = parse_module_settings("customers", {"crm_module": "accounts+contacts",
                                                   "include_unassociated_contacts": True})
    books = frame(
        {"contact_id": "460000000026049", "contact_name": "Zylker", "contact_type": "customer",
         "customer_sub_type": "business", "billing_address": {"city": "Austin"},
         "custom_fields": [{"api_name": "cf_crm_id", "value": "1"}],
         "contact_persons": [{"contact_person_id": "p1", "first_name": "Ann",
                              "last_name": "Lee", "is_primary_contact": True}]},
        {"contact_id": "460000000026050", "contact_name": "Bo Ek", "contact_type": "customer",
         "customer_sub_type": "individual", "first_name": "Bo", "last_name": "Ek"},
        {"contact_id": "460000000026051", "contact_name": "Vend", "contact_type": "vendor"})
    routed = route_books(CUSTOMERS, settings, books)
    assert routed["accounts"].contact_id.tolist() == ["460000000026049"]
    assert routed["contacts"].contact_id.tolist() == ["460000000026050"]
    assert routed["unsynced"].contact_id.tolist() == ["460000000026051"]
    accounts, failures = to_crm(routed["accounts"], CUST, ACCOUNTS, CUSTOMERS)
    assert failures.empty
    row = accounts.iloc[0]
    assert row.payload == {"Account_Name": "Zylker", "Billing_City": "Austin",
                           "Books_Id__c": "460000000026049"}
    assert row.ref_id == "1" and row.person_id == "p1"
    individuals, _ = to_crm(routed["contacts"], CUST, CONTACTS, CUSTOMERS)
    assert individuals.iloc[0].payload == {"First_Name": "Bo", "Last_Name": "Ek",
                                           "Books_Id__c": "460000000026050"}
    persons = explode_persons(routed["accounts"])
    assert persons.parent_books_id.tolist() == ["460000000026049"]


# --------------------------------------------------------------------------- vendors, items
def test_vendors_map_email_to_the_primary_person():
    crm = frame({"id": "5", "Vendor_Name": "Acme Supplies", "Email": "ap@acme.com",
                 "Zip_Code": "78701", "City": "Austin"})
    mapped, failures = to_books(crm, default_mapping("vendors"), VENDORS.kind("vendors"), VENDORS)
    assert failures.empty
    payload = mapped.iloc[0].payload
    assert payload["contact_type"] == "vendor"
    assert payload["contact_persons"] == [{"is_primary_contact": True, "email": "ap@acme.com"}]
    assert payload["billing_address"] == {"zip": "78701", "city": "Austin"}


def test_items_map_prices_as_decimal_and_product_type_through_the_value_map():
    crm = frame({"id": "7", "Product_Name": "Widget", "Unit_Price": 19.9,
                 "Product_Type__c": "Services", "Product_Active": True, "Product_Code": "W-1"})
    mapped, failures = to_books(crm, default_mapping("items"), ITEMS.kind("products"), ITEMS)
    assert failures.empty
    payload = mapped.iloc[0].payload
    assert payload["rate"] == Decimal("19.90") and isinstance(payload["rate"], Decimal)
    assert payload["product_type"] == "service"
    # Planned like any field; the push's status step takes it out of the body (Books refuses
    # it there) and sets it with POST /items/{id}/active|inactive.
    assert payload["status"] == "active"
    assert mapped.iloc[0].crm_values["Unit_Price"] == 19.9


def test_items_back_to_crm():
    books = frame({"item_id": "3", "name": "Gadget", "rate": 5.5, "product_type": "goods",
                   "status": "inactive", "sku": "G-1"})
    mapped, failures = to_crm(books, default_mapping("items"), ITEMS.kind("products"), ITEMS)
    assert failures.empty
    assert mapped.iloc[0].payload == {"Product_Name": "Gadget", "Unit_Price": Decimal("5.50"),
                                      "Product_Code": "G-1", "Product_Type__c": "Goods",
                                      "Product_Active": False, "Books_Id__c": "3"}


# ------------------------------------------------------------------------------ bad input
ITEMS_MAP = default_mapping("items")


@pytest.mark.parametrize(("name", "ok"), [
    ("Zylker 🚀🌍 Ltd", True),
    ("شركة الأمل للتجارة", True),
    ("חברת אלפא", True),
    ("(Acme), Inc: \\ * ? [Sales] & Co.", True),  # CRM criteria special characters
    ("x" * 200, True),
    ("x" * 201, False),
])
def test_account_names(name, ok):
    mapped, failures = to_books(frame(account("1", name)), CUST, ACCOUNTS, CUSTOMERS)
    assert (len(mapped), len(failures)) == ((1, 0) if ok else (0, 1))
    if ok:
        assert mapped.iloc[0].payload["contact_name"] == name
    else:
        f = failures.iloc[0]
        assert (f.code, f.field, f.record_key) == ("TOO_LONG", "contact_name", "crm/Accounts/1")
        assert "201 characters" in f.message and "200" in f.message and f.hint


def test_bad_records_fail_alone_and_others_still_map():
    crm = frame(contact("1", "Ann", "Lee", Email="ann@example.com"),
                contact("2", "Bo", None, Email="bo@example.com"),
                contact("3", "Cy", "Oh", Email="cy@"),
                contact("4", "Di", None, Email="not-an-email"))
    mapped, failures = to_books(crm, CUST, CONTACTS, CUSTOMERS)
    assert mapped.crm_id.tolist() == ["1"]
    assert list(failures.columns) == FAILURE_COLUMNS
    by_id = failures.set_index("crm_id")
    assert by_id.loc["2", "code"] == "MISSING_REQUIRED"
    assert "Last_Name is empty" in by_id.loc["2", "message"]
    assert "fill in Last_Name" in by_id.loc["2", "hint"]
    assert by_id.loc["3", "code"] == "INVALID_EMAIL" and "'cy@'" in by_id.loc["3", "message"]
    # every problem of a record is named in its one failure row
    assert "Last_Name" in by_id.loc["4", "message"] and "not-an-email" in by_id.loc["4",
                                                                                  "message"]
    assert by_id.loc["3", "payload"]["contact_name"] == "Cy Oh"


def test_account_with_deleted_owner_maps_by_default_and_fails_when_owner_is_mapped():
    crm = frame(account("1", "Orphan", Owner={"id": "77", "name": None}),
                account("2", "Owned", Owner={"id": "78", "name": "Pat Boyle"}))
    mapped, failures = to_books(crm, CUST, ACCOUNTS, CUSTOMERS)
    assert len(mapped) == 2 and failures.empty
    with_owner = CUST.with_extra_fields("accounts", [{
        "books": "custom_fields.cf_crm_owner", "crm": "Owner", "converter": "lookup_name",
        "direction": "to_books"}])
    mapped, failures = to_books(crm, with_owner, ACCOUNTS, CUSTOMERS)
    assert mapped.crm_id.tolist() == ["2"]
    assert failures.iloc[0].code == "MISSING_LOOKUP" and "77" in failures.iloc[0].message


def test_unmapped_picklist_value_is_a_failure_naming_the_value():
    crm = frame({"id": "1", "Product_Name": "A", "Unit_Price": "1", "Product_Type__c": "Digital"},
                {"id": "2", "Product_Name": "B", "Unit_Price": "2", "Product_Type__c": "Goods"})
    mapped, failures = to_books(crm, ITEMS_MAP, ITEMS.kind("products"), ITEMS)
    assert mapped.crm_id.tolist() == ["2"]
    assert failures.iloc[0].code == "UNMAPPED_VALUE" and "'Digital'" in failures.iloc[0].message


@pytest.mark.parametrize(("price", "code"), [("10.999", "TOO_MANY_DECIMALS"),
                                             ("-3", "NEGATIVE_AMOUNT"), (None, "MISSING_REQUIRED")])
def test_bad_prices_fail(price, code):
    crm = frame({"id": "1", "Product_Name": "A", "Unit_Price": price})
    _, failures = to_books(crm, ITEMS_MAP, ITEMS.kind("products"), ITEMS)
    assert failures.iloc[0].code == code


def test_product_in_another_currency_is_refused():
    crm = frame({"id": "1", "Product_Name": "A", "Unit_Price": "5", "Currency": "EUR"},
                {"id": "2", "Product_Name": "B", "Unit_Price": "5", "Currency": "USD"})
    mapped, failures = to_books(crm, ITEMS_MAP, ITEMS.kind("products"), ITEMS,
                                base_currency="USD")
    assert mapped.crm_id.tolist() == ["2"]
    f = failures.iloc[0]
    assert (f.code, f.field) == ("CURRENCY_MISMATCH", "Currency") and "EUR" in f.message


def test_effective_mapping_applies_the_users_extra_maps():
    from crmbooks.settings import FieldMapSetting
    from crmbooks.sync.mapping import crm_fields, effective_mapping

    s = parse_module_settings("customers", {"maps": [
        FieldMapSetting.parse("cf_tier=Tier__c").model_dump()]})
    mapping = effective_mapping(CUSTOMERS, s)
    assert "custom_fields.cf_tier" in {p.books for p in mapping.section("accounts").fields}
    fields = crm_fields(mapping, ACCOUNTS, CUSTOMERS)
    assert fields[:4] == ["id", "Modified_Time", "Books_Id__c", "Account_Name"]
    assert "Tier__c" in fields and len(fields) == len(set(fields)) <= 50


def test_vendor_update_keeps_the_primary_person_id():
    import pandas as pd

    from crmbooks.sync.plan import plan_kind

    vendors = default_mapping("vendors")
    kind = VENDORS.kind("vendors")
    base_crm = {"Vendor_Name": "Acme", "Email": "old@acme.com"}
    base_books = {"contact_name": "Acme", "company_name": "Acme",
                  "contact_persons.primary.email": "old@acme.com"}
    links = pd.DataFrame([{"crm_id": "5", "books_id": "v5", "kind": "vendors",
                           "crm_values": base_crm, "books_values": base_books}])
    crm = to_books(frame({"id": "5", "Vendor_Name": "Acme", "Email": "new@acme.com"}), vendors,
                   kind, VENDORS)[0]
    books = to_crm(frame({"contact_id": "v5", "contact_name": "Acme", "company_name": "Acme",
                          "contact_type": "vendor", "contact_persons": [
                              {"contact_person_id": "p7", "email": "old@acme.com",
                               "is_primary_contact": True}]}), vendors, kind, VENDORS)[0]
    row = plan_kind(VENDORS, kind, parse_module_settings("vendors"), vendors, crm=crm,
                    books=books, links=links).iloc[0]
    assert row.books_payload == {"contact_persons": [
        {"is_primary_contact": True, "email": "new@acme.com", "contact_person_id": "p7"}]}
