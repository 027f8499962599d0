"""Mapping files: every shipped file loads; bad files fail naming the file, place and key."""

from __future__ import annotations

import pytest

from mappings.schema import FieldPair, MappingError, default_mapping, load_mapping, mapping_files

GOOD = """
module: things
sections:
  things:
    crm_module: Things
    books_resource: items
    fields:
      - {books: name, crm: Thing_Name, required: true}
"""


def write(tmp_path, text: str):
    path = tmp_path / "things.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("path", mapping_files(), ids=lambda p: p.name)
def test_every_shipped_mapping_loads(path):
    mapping = load_mapping(path)
    assert mapping.module == path.stem and mapping.sections


def test_shipped_mappings_cover_the_modules():
    assert set(default_mapping("customers").sections) == {"accounts", "contacts",
                                                           "contact_persons"}
    items = default_mapping("items")
    assert items.value_maps["product_type"] == {"Goods": "goods", "Services": "service"}
    rate = next(p for p in items.section("products").fields if p.books == "rate")
    assert rate.converter == "decimal"
    # An item's status goes both ways; Books takes it through its active/inactive calls.
    status = items.section("products").status_action_pair()
    assert status is not None and (status.crm, status.direction) == ("Product_Active", "both")
    assert default_mapping("customers").section("accounts").status_action_pair() is None


def test_a_good_file_loads(tmp_path):
    assert load_mapping(write(tmp_path, GOOD)).section("things").fields[0].crm == "Thing_Name"


@pytest.mark.parametrize(("old", "new", "message"), [
    ("required: true}", "required: true, convertr: text}",
     r"things\.yaml: sections\.things\.fields\.0\.convertr: unknown key 'convertr'"),
    ("required: true}", "converter: shout}", r"things\.yaml: .*unknown converter 'shout'"),
    ("books: name", "books: nmae", r"unknown Books field 'nmae' for items"),
    ("crm_module: Things", "crm_module: Things\n    colour: blue", r"unknown key 'colour'"),
    ("required: true}", "converter: picklist}", r"needs value_map"),
    ("required: true}", "converter: picklist, value_map: kinds}",
     r"value_map 'kinds', which is not under value_maps"),
    ("crm: Thing_Name", "crm: Thing Name", r"not a CRM API name: 'Thing Name'"),
    ("required: true}", "converter: lookup_name}", r"cannot write to CRM; set direction"),
    ("required: true}", "required: true, books_write: status_action}",
     r"books_write: status_action only fits \{books: status, converter: active_status\}"),
    ("required: true}", "required: true, books_write: action}", r"books_write"),
])
def test_bad_files_name_the_problem(tmp_path, old, new, message):
    with pytest.raises(MappingError, match=message):
        load_mapping(write(tmp_path, GOOD.replace(old, new)))


def test_a_crm_field_written_from_two_books_fields_is_refused(tmp_path):
    text = GOOD + "      - {books: description, crm: Thing_Name}\n"
    with pytest.raises(MappingError, match="would be written from both 'name' and 'description'"):
        load_mapping(write(tmp_path, text))


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping(write(tmp_path, "module: [unclosed"))
    with pytest.raises(MappingError, match="no mapping file"):
        load_mapping(tmp_path / "absent.yaml")


def test_extra_fields_add_or_replace_without_touching_the_default():
    base = default_mapping("customers")
    custom = base.with_extra_fields("accounts", [
        {"books": "custom_fields.cf_tier", "crm": "Tier__c"},
        FieldPair(books="notes", crm="Description", direction="to_books"),
    ])
    fields = {p.books: p for p in custom.section("accounts").fields}
    assert fields["custom_fields.cf_tier"].crm == "Tier__c"
    assert fields["notes"].direction == "to_books"
    assert "custom_fields.cf_tier" not in {p.books for p in base.section("accounts").fields}
    with pytest.raises(MappingError, match="unknown converter 'zap'"):
        base.with_extra_fields("accounts", [{"books": "custom_fields.cf_x", "crm": "X__c",
                                             "converter": "zap"}])
