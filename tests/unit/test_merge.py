"""Three-way merge against the last synced values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crmbooks.sync.merge import Sides, merge_record
from mappings.schema import default_mapping

ITEMS = default_mapping("items")
PRODUCTS = ITEMS.section("products")
BASE_CRM = {"Product_Name": "Widget", "Unit_Price": "10.00", "Description": "Blue",
            "Product_Code": "W-1", "Usage_Unit": "Box", "Product_Type__c": "Goods",
            "Product_Active": True}
BASE_BOOKS = {"name": "Widget", "rate": "10.00", "description": "Blue", "sku": "W-1",
              "unit": "Box", "product_type": "goods", "status": "active"}


def merge(crm=None, books=None, winner="crm", **kw):
    sides = Sides(BASE_CRM, BASE_BOOKS, {**BASE_CRM, **(crm or {})},
                  {**BASE_BOOKS, **(books or {})})
    return merge_record(PRODUCTS, ITEMS, sides, winner=winner, **kw)


def test_nothing_changed():
    result = merge()
    assert (result.to_books, result.to_crm, result.changes, result.conflicts) == ({}, {}, (), ())


def test_books_returning_numbers_is_not_a_change():
    assert merge(books={"rate": 10.0}).changes == ()


@pytest.mark.parametrize(("crm", "books", "to_books", "to_crm"), [
    ({"Unit_Price": 12.5}, {}, {"rate": Decimal("12.50")}, {}),
    ({}, {"description": "Red"}, {}, {"Description": "Red"}),
    ({"Product_Type__c": "Services"}, {"status": "inactive"}, {"product_type": "service"},
     {"Product_Active": False}),
])
def test_one_side_changed_or_different_fields_merge(crm, books, to_books, to_crm):
    result = merge(crm, books)
    assert result.to_books == to_books and result.to_crm == to_crm and result.conflicts == ()


@pytest.mark.parametrize(("winner", "to_books", "to_crm"), [
    ("crm", {"description": "Green"}, {}),
    ("books", {}, {"Description": "Red"}),
])
def test_same_field_changed_on_both_sides_takes_the_winner_and_records_the_conflict(
        winner, to_books, to_crm):
    result = merge({"Description": "Green"}, {"description": "Red"}, winner=winner)
    assert result.to_books == to_books and result.to_crm == to_crm
    assert result.conflicts == ({"field": "description", "crm": "Green", "books": "Red",
                                 "winner": winner},)
    assert result.books_values["description"] == result.crm_values["Description"]


def test_both_changed_to_the_same_value_is_no_conflict():
    result = merge({"Unit_Price": "11.50"}, {"rate": 11.5})
    assert result.conflicts == () and result.to_books == {} and result.to_crm == {}
    assert result.crm_values["Unit_Price"] == "11.50" and result.books_values["rate"] == 11.5


def test_changes_carry_before_and_after():
    result = merge({"Unit_Price": 12.5})
    assert result.changes == ({"side": "books", "field": "rate", "before": "10.00",
                               "after": "12.50"},)


def test_fetch_scope_never_writes_crm():
    result = merge({}, {"description": "Red"}, write_crm=False)
    assert result.to_crm == {} and result.changes == ()


def test_without_base_the_source_wins_every_difference_without_conflicts():
    sides = Sides(None, None, {**BASE_CRM, "Description": "CRM text"},
                  {**BASE_BOOKS, "description": "Books text", "rate": "9.00"})
    from_books = merge_record(PRODUCTS, ITEMS, sides, winner="books", source="books")
    assert from_books.to_crm == {"Description": "Books text", "Unit_Price": Decimal("9.00")}
    assert from_books.conflicts == ()
    from_crm = merge_record(PRODUCTS, ITEMS, sides, winner="books", source="crm")
    assert from_crm.to_books == {"description": "CRM text", "rate": Decimal("10.00")}


def test_inputs_are_not_mutated():
    crm = {**BASE_CRM, "Unit_Price": 12.5}
    sides = Sides(dict(BASE_CRM), dict(BASE_BOOKS), crm, dict(BASE_BOOKS))
    merge_record(PRODUCTS, ITEMS, sides, winner="crm")
    assert crm == {**BASE_CRM, "Unit_Price": 12.5} and sides.base_books == BASE_BOOKS
