"""Extra field maps and value maps checked when they are saved, against the mapping schema and
the fields both sides report; the settings fingerprint the cursors remember."""

from __future__ import annotations

import pytest

from crmbooks.settings import FieldMapSetting, SettingsError, parse_module_settings
from crmbooks.sync.check import check_field_maps
from crmbooks.sync.cursors import read_from_start, settings_fingerprint
from crmbooks.sync.mapping import effective_mapping
from crmbooks.sync.modules import module_spec
from mappings.converters import ConversionError

#: What the CRM's /settings/fields says of a few Accounts and Products fields.
CRM = {
    "Accounts": [
        {"api_name": "Website", "data_type": "website"},
        {"api_name": "Account_Number", "data_type": "text"},
        {"api_name": "Employees", "data_type": "integer"},
        {"api_name": "Parent_Account", "data_type": "lookup"},
        {"api_name": "Created_Time", "data_type": "datetime", "read_only": True},
        {"api_name": "Full_Label", "data_type": "text", "read_only": True},
        {"api_name": "Tier__c", "data_type": "picklist", "pick_list_values": [
            {"actual_value": v, "display_value": v} for v in ("-None-", "Gold", "Silver")]},
    ],
    "Contacts": [], "Products": [
        {"api_name": "Product_Type__c", "data_type": "picklist", "pick_list_values": [
            {"actual_value": v, "display_value": v} for v in ("Goods", "Services", "Kit")]},
        {"api_name": "Unit_Price", "data_type": "currency"}],
}
BOOKS = {"contacts": [{"api_name": "cf_segment", "data_type": "string"},
                      {"api_name": "cf_crm_id", "data_type": "string", "is_unique": True}],
         "items": [{"api_name": "cf_crm_id", "data_type": "string", "is_unique": True}]}


def problems(module: str, maps=(), value_maps=None, crm=CRM, books=BOOKS) -> list[str]:
    settings = parse_module_settings(module, {
        "maps": [FieldMapSetting.parse(m).model_dump() for m in maps],
        "value_maps": value_maps or {}})
    return [f"{p.message}: {p.hint}" for p in check_field_maps(module_spec(module), settings,
                                                                crm, books)]


@pytest.mark.parametrize("text, words", [
    ("not_a_field=Website", ["Books contacts have no field 'not_a_field'", "standard"]),
    ("cf_tier=Website", ["Books contacts have no custom field cf_tier", "create it in Books"]),
    ("cf_crm_id=Website", ["cf_crm_id holds the CRM id", "another"]),
    ("cf_segment=Segment__c", ["the CRM Accounts have no field Segment__c",
                               "check its API name"]),
    ("cf_segment=Full_Label", ["Full_Label is read-only", "the CRM lets you edit"]),
    ("cf_segment=Parent_Account", ["Parent_Account is a lookup", "text or picklist"]),
    ("cf_segment=Employees", ["Employees is of type 'integer'", "map a field of"]),
    ("cf_segment=Tier__c", ["Tier__c is a picklist and has no value map",
                            "--value-map cf_segment:CRM_VALUE=BOOKS_VALUE"]),
], ids=["unknown-books", "missing-books-custom", "crmbooks-own", "unknown-crm", "read-only",
        "lookup", "type-mismatch", "picklist-without-value-map"])
def test_a_map_no_run_could_use_is_refused_naming_the_field(text, words):
    found = problems("customers", [text])
    assert len(found) == 1, found
    for word in words:
        assert word in found[0]
    assert found[0].startswith(f"--map {text}:")


def test_maps_that_fit_pass_and_are_checked_by_the_schema_alone_without_metadata():
    assert problems("customers", ["cf_segment=Account_Number", "website=Website"]) == []
    assert problems("customers", ["cf_segment=Tier__c"],
                    {"cf_segment": {"Gold": "gold", "Silver": "silver"}}) == []
    # Offline: only the schema speaks; an unknown Books field is still refused.
    assert problems("customers", ["cf_segment=Segment__c"], crm=None, books=None) == []
    assert "have no field 'not_a_field'" in problems("customers", ["not_a_field=Website"],
                                                     crm=None, books=None)[0]


@pytest.mark.parametrize("value_maps, words", [
    ({"product_type": {"Gadgets": "goods"}}, ["'Gadgets' is not a value of the CRM picklist "
                                              "Product_Type__c", "use one of Goods, Kit"]),
    ({"rate": {"1": "2"}}, ["rate is mapped with converter 'decimal'", "text or picklist"]),
    ({"sku_x": {"A": "a"}}, ["no map of items writes sku_x", "--map"]),
], ids=["not-a-picklist-value", "not-a-text-map", "no-such-map"])
def test_a_value_map_no_run_could_use_is_refused(value_maps, words):
    found = problems("items", value_maps=value_maps)
    assert len(found) == 1, found
    for word in words:
        assert word in found[0]


def test_a_value_map_is_merged_over_the_shipped_one_and_applies_both_ways():
    settings = parse_module_settings("items", {"value_maps": {"product_type": {"Kit": "goods"}}})
    mapping = effective_mapping(module_spec("items"), settings)
    pair = next(p for p in mapping.section("products").fields if p.books == "product_type")
    ctx = pair.ctx(mapping.value_maps)
    assert mapping.value_maps[pair.value_map] == {"Goods": "goods", "Services": "service",
                                                  "Kit": "goods"}
    assert pair.conv.to_books("Kit", ctx) == "goods"
    # Two CRM values share "goods": Books → CRM takes the first, the shipped one.
    assert pair.conv.to_crm("goods", ctx) == "Goods"
    assert pair.conv.to_crm("service", ctx) == "Services"


def test_a_value_map_makes_an_extra_text_map_a_picklist_map():
    settings = parse_module_settings("customers", {
        "maps": [FieldMapSetting.parse("cf_segment=Tier__c").model_dump()],
        "value_maps": {"cf_segment": {"Gold": "gold"}}})
    assert settings.value_maps == {"custom_fields.cf_segment": {"Gold": "gold"}}
    mapping = effective_mapping(module_spec("customers"), settings)
    pair = next(p for p in mapping.section("accounts").fields
                if p.books == "custom_fields.cf_segment")
    assert pair.converter == "picklist"
    ctx = pair.ctx(mapping.value_maps)
    assert pair.conv.to_books("Gold", ctx) == "gold"
    with pytest.raises(ConversionError):
        pair.conv.to_books("Silver", ctx)  # unmapped: the record fails with its reason


@pytest.mark.parametrize("text", ["product_type", "product_type:Goods", ":Goods=goods",
                                  "product_type:=goods", "product_type:Goods="])
def test_a_malformed_value_map_says_how_to_write_it(text):
    with pytest.raises(SettingsError, match="BOOKS_FIELD:CRM_VALUE=BOOKS_VALUE"):
        FieldMapSetting.parse_value(text)


def test_the_fingerprint_follows_only_what_decides_reads_and_mapping():
    base = parse_module_settings("customers").model_dump(mode="json")
    same = settings_fingerprint(base)
    assert settings_fingerprint({**base, "duplicates": "clone", "clone_suffix": "x"}) == same
    for key, value in (("scope", "fetch"), ("crm_module", "contacts"), ("view", "Mine"),
                       ("include_unassociated_contacts", True), ("contact_view", "V"),
                       ("maps", [{"books": "website", "crm": "Website"}]),
                       ("value_maps", {"cf_x": {"a": "b"}})):
        assert settings_fingerprint({**base, key: value}) != same, key


def test_cursors_settled_under_other_settings_read_from_the_start():
    from datetime import UTC, datetime

    at = datetime(2026, 1, 1, tzinfo=UTC)
    cursors = {"crm": at, "books": at}
    assert read_from_start(cursors, {"crm": "f1", "books": "f1"}, "f1") == cursors
    # Settled before fingerprints were kept: taken as settled under the active settings.
    assert read_from_start(cursors, {"crm": None, "books": None}, "f1") == cursors
    assert read_from_start(cursors, {"crm": "f0", "books": "f1"}, "f1") == {"crm": None,
                                                                            "books": at}
