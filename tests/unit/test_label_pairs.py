"""Transaction custom fields pairing themselves by label: the pure rules (normalised labels,
types that carry each other's values, ambiguous labels, crmbooks' own fields, explicit maps
winning) and the reasons given for a field left without a partner."""

from __future__ import annotations

import pytest

from crmbooks.settings import FieldMapSetting
from crmbooks.sync.label_pairs import kinds_fit, normalise_label, pair_by_label, pair_module


def crm(api: str, label: str, kind: str = "text", **kw) -> dict:
    """A CRM custom field as `/settings/fields` describes it."""
    return {"api_name": api, "field_label": label, "data_type": kind, "custom_field": True,
            **kw}


def books(api: str, label: str, kind: str = "string") -> dict:
    """A Books custom field as crmbooks caches it."""
    return {"api_name": api, "label": label, "data_type": kind, "is_unique": False}


@pytest.mark.parametrize("one, other", [
    ("PO Number", "po number"),
    ("PO  Number ", " PO Number"),
    ("PO\u00a0Number", "PO Number"),  # a no-break space is a space once NFKC-normalised
    ("ＰＯ Number", "PO Number"),  # full-width letters (NFKC)
    ("Straße", "STRASSE"),  # case folding, not just lower-casing
])
def test_labels_equal_after_normalising(one, other):
    assert normalise_label(one) == normalise_label(other)


def test_different_labels_stay_different():
    assert normalise_label("PO Number") != normalise_label("PO Numbers")
    assert normalise_label(None) == ""


@pytest.mark.parametrize("books_type, crm_type, fits", [
    ("string", "text", True), ("multiline", "textarea", True), ("string", "textarea", True),
    ("email", "email", True), ("url", "website", True), ("phone", "phone", True),
    ("dropdown", "picklist", True), ("decimal", "currency", True), ("amount", "double", True),
    ("number", "integer", True), ("number", "double", True), ("date", "date", True),
    ("check_box", "boolean", True),
    ("string", "double", False),  # a word cannot go into a number field
    ("string", "picklist", False),  # free text does not fit a picklist's values
    ("dropdown", "text", False),  # nor CRM free text a Books dropdown
    ("date", "text", False), ("check_box", "integer", False),
    ("string", "lookup", False), ("multiselect", "multiselectpicklist", False),
    (None, "text", False),
])
def test_which_types_carry_each_others_values(books_type, crm_type, fits):
    assert kinds_fit(books_type, crm_type) is fits


def test_same_labels_pair_both_ways_with_their_types():
    pairs, unpaired = pair_by_label(
        [crm("PO_Number__c", "PO Number"), crm("Weeks__c", "Weeks", "double")],
        [books("cf_po_number", "po  number"), books("cf_weeks", "WEEKS", "decimal")])
    assert unpaired == []
    assert pairs == [
        {"crm": "PO_Number__c", "books": "cf_po_number", "direction": "both",
         "crm_type": "text", "books_type": "string", "label": "PO Number"},
        {"crm": "Weeks__c", "books": "cf_weeks", "direction": "both", "crm_type": "double",
         "books_type": "decimal", "label": "Weeks"}]


def test_types_that_do_not_fit_are_not_paired_and_both_fields_say_why():
    pairs, unpaired = pair_by_label([crm("Ref__c", "Ref", "double")],
                                    [books("cf_ref", "Ref", "string")], module="Quotes",
                                    resource="estimates")
    assert pairs == []
    assert [(u["side"], u["field"]) for u in unpaired] == [("crm", "Ref__c"), ("books", "cf_ref")]
    for u in unpaired:
        assert "types do not carry each other's values" in u["reason"]
        assert "Ref__c is double" in u["reason"] and "cf_ref is string" in u["reason"]


def test_a_field_with_no_partner_is_reported_on_its_side():
    pairs, unpaired = pair_by_label([crm("Only_Crm__c", "Only in CRM")],
                                    [books("cf_only_books", "Only in Books")],
                                    module="Quotes", resource="estimates")
    assert pairs == []
    by_field = {u["field"]: u for u in unpaired}
    assert by_field["Only_Crm__c"]["side"] == "crm"
    assert "no Books custom field of estimates has this label" in (
        by_field["Only_Crm__c"]["reason"])
    assert by_field["cf_only_books"]["side"] == "books"
    assert by_field["cf_only_books"]["label"] == "Only in Books"
    assert "no CRM custom field of Quotes has this label" in by_field["cf_only_books"]["reason"]


def test_a_label_shared_by_two_fields_on_one_side_pairs_none_of_them():
    pairs, unpaired = pair_by_label([crm("Ref__c", "Ref"), crm("Ref2__c", "ref")],
                                    [books("cf_ref", "Ref")])
    assert pairs == []
    assert {u["field"] for u in unpaired} == {"Ref__c", "Ref2__c", "cf_ref"}
    assert all("shared by CRM Ref__c, CRM Ref2__c, Books cf_ref" in u["reason"]
               and "--map" in u["reason"] for u in unpaired)


def test_a_read_only_crm_field_is_not_paired():
    pairs, unpaired = pair_by_label([crm("Score__c", "Score", "double", read_only=True)],
                                    [books("cf_score", "Score", "decimal")])
    assert pairs == [] and {u["field"] for u in unpaired} == {"Score__c", "cf_score"}
    assert all("read-only" in u["reason"] for u in unpaired)


def test_standard_crm_fields_and_unlabelled_fields_take_no_part():
    standard = {"api_name": "Subject", "field_label": "Subject", "data_type": "text",
                "custom_field": False}
    pairs, unpaired = pair_by_label([standard, crm("Blank__c", " ")],
                                    [books("cf_subject", "Subject")])
    assert pairs == []
    assert {(u["field"], u["reason"]) for u in unpaired} >= {("Blank__c", "it has no label")}
    assert "Subject" not in {u["field"] for u in unpaired}  # only custom fields pair


def test_crmbooks_own_fields_never_pair_and_are_never_reported():
    own_crm = [crm("Books_Id__c", "CRM ID"), crm("Books_Number__c", "Books Number"),
               crm("Books_URL__c", "Books URL", "website")]
    own_books = [books("cf_crm_id", "CRM ID"), books("cf_books_number", "Books Number")]
    pairs, unpaired = pair_module("Quotes", "estimates", own_crm, own_books)
    assert pairs == []
    assert [u["field"] for u in unpaired] == ["cf_books_number"]  # a user's field, reported


def test_an_explicit_map_wins_over_a_label_pair():
    fields_crm = [crm("PO_Number__c", "PO Number"), crm("Old_PO__c", "Old PO")]
    fields_books = [books("cf_po_number", "PO Number")]
    maps = [FieldMapSetting(books="custom_fields.cf_po_number", crm="Old_PO__c")]
    pairs, unpaired = pair_module("Quotes", "estimates", fields_crm, fields_books, maps)
    assert pairs == []  # the map pairs cf_po_number with Old_PO__c; the run adds it itself
    assert [(u["field"], u["side"], u["reason"]) for u in unpaired] == [
        ("PO_Number__c", "crm",
         "its same-label Books field cf_po_number is mapped with --map to another field")]


def test_a_map_of_another_resource_leaves_this_ones_label_pair_alone():
    maps = [FieldMapSetting(books="custom_fields.cf_po_number", crm="Old_PO__c",
                            section="invoices")]
    pairs, unpaired = pair_module("Quotes", "estimates", [crm("PO_Number__c", "PO Number")],
                                  [books("cf_po_number", "PO Number")], maps)
    assert [(p["crm"], p["books"]) for p in pairs] == [("PO_Number__c", "cf_po_number")]
    assert unpaired == []
