"""The mapping is checked against live field metadata before anything is written."""

from __future__ import annotations

import pytest

from crmbooks.sync.check import MappingCheckError, assert_mapping_ok, check_mapping
from crmbooks.sync.modules import ITEMS
from mappings.schema import default_mapping

ITEMS_MAP = default_mapping("items")
PRODUCTS = ITEMS.kind("products")


def crm_field(name, dtype="text", **kw):
    return {"api_name": name, "data_type": dtype, "read_only": False, **kw}


def live_products(**override):
    fields = {
        "Product_Name": crm_field("Product_Name"),
        "Unit_Price": crm_field("Unit_Price", "currency"),
        "Description": crm_field("Description", "textarea"),
        "Product_Code": crm_field("Product_Code"),
        "Usage_Unit": crm_field("Usage_Unit", "picklist"),
        "Product_Type__c": crm_field("Product_Type__c", "picklist", pick_list_values=[
            {"display_value": "Goods", "actual_value": "Goods"},
            {"display_value": "Services", "actual_value": "Services"}]),
        "Product_Active": crm_field("Product_Active", "boolean"),
        "Books_Id__c": crm_field("Books_Id__c"),
    }
    fields.update(override)
    return {"Products": [f for f in fields.values() if f is not None]}


BOOKS_CF = {"items": [{"api_name": "cf_crm_id", "data_type": "string", "is_unique": True}]}


def check(mapping=ITEMS_MAP, crm=None, books=None):
    return check_mapping(ITEMS, mapping, [PRODUCTS], crm or live_products(),
                         BOOKS_CF if books is None else books)


def test_default_items_mapping_fits_the_live_fields():
    assert check() == []


@pytest.mark.parametrize(("override", "books", "field", "text"), [
    ({"Unit_Price": None}, None, "Unit_Price", "does not exist in Products"),
    ({"Unit_Price": crm_field("Unit_Price", "text")}, None, "Unit_Price", "of type 'text'"),
    ({"Product_Name": crm_field("Product_Name", read_only=True)}, None, "Product_Name",
     "read-only"),
    ({"Product_Type__c": crm_field("Product_Type__c", "picklist", pick_list_values=[
        {"display_value": "Goods", "actual_value": "Goods"}])}, None, "Product_Type__c",
     "'Services', which is not a value"),
    ({"Books_Id__c": None}, None, "Books_Id__c", "need a unique field Books_Id__c"),
    ({}, {"items": []}, "cf_crm_id", "unique custom field cf_crm_id"),
])
def test_each_problem_names_the_field_and_what_to_do(override, books, field, text):
    problems = check(crm=live_products(**override), books=books)
    assert len(problems) == 1
    assert problems[0].field == field and text in problems[0].message and problems[0].hint


def test_a_books_custom_field_that_does_not_exist_yet_stops_the_run():
    mapping = ITEMS_MAP.with_extra_fields("products", [
        {"books": "custom_fields.cf_category", "crm": "Product_Code", "direction": "to_books"}])
    with pytest.raises(MappingCheckError) as err:
        assert_mapping_ok(ITEMS, mapping, [PRODUCTS], live_products(), BOOKS_CF)
    assert "Books custom field cf_category does not exist yet" in str(err.value)
    assert "create it in Books" in str(err.value) and "nothing was written" in str(err.value)


def test_a_books_custom_field_of_the_wrong_type():
    mapping = ITEMS_MAP.with_extra_fields("products", [
        {"books": "custom_fields.cf_price2", "crm": "Unit_Price", "converter": "decimal",
         "direction": "to_books"}])
    books = {"items": [*BOOKS_CF["items"], {"api_name": "cf_price2", "data_type": "check_box"}]}
    (problem,) = check(mapping, books=books)
    assert problem.field == "custom_fields.cf_price2" and "'check_box'" in problem.message
