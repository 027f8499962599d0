"""Matching incoming records: link, stored id, exact normalised name; fuzzy only proposes."""

from __future__ import annotations

import pandas as pd
import pytest

from crmbooks.sync.dedupe import (
    INDEX_COLUMNS,
    contact_keys,
    fuzzy_name,
    index_records,
    match,
    normalise_name,
)
from crmbooks.sync.modules import CUSTOMERS

ACCOUNTS = CUSTOMERS.kind("accounts")


@pytest.mark.parametrize(("name", "key"), [
    ("  Zylker   Corp ", "zylker corp"),
    ("ZYLKER\tcorp", "zylker corp"),
    ("Ｚｙｌｋｅｒ", "zylker"),  # full-width → NFKC
    ("Straße", "strasse"),  # casefold
    ("شركة  الأمل", "شركة الأمل"),
    (None, ""),
])
def test_normalise_name(name, key):
    assert normalise_name(name) == key


@pytest.mark.parametrize(("a", "b"), [("Acme, Inc.", "ACME Inc"), ("Acme Ltd", "acme"),
                                      ("Zylker GmbH & Co. KG", "Zylker")])
def test_fuzzy_name_ignores_punctuation_and_legal_suffixes(a, b):
    assert fuzzy_name(a) == fuzzy_name(b)
    assert normalise_name(a) != normalise_name(b)


def incoming(*rows):
    return pd.DataFrame([{"record_key": f"crm/Accounts/{r[0]}", "kind": "accounts",
                          "crm_id": r[0], "name": r[1], "ref_id": r[2] if len(r) > 2 else None,
                          "source": "crm"} for r in rows])


def books_index(*rows):
    return pd.DataFrame([{"id": r[0], "kind": "accounts", "name": r[1],
                          "ref_id": r[2] if len(r) > 2 else None, "parent_id": None}
                         for r in rows], columns=INDEX_COLUMNS)


LINKS = pd.DataFrame([{"crm_id": "1", "books_id": "b1"}, {"crm_id": "8", "books_id": "b8"}])


def test_match_order_link_ref_name_ambiguous_none():
    other = books_index(("b1", "Zylker"), ("b2", "Acme Inc"), ("b3", "Twin"), ("b4", "twin"),
                        ("b5", "Recovered", "5"), ("b8", "Taken"), ("b9", "Acme, Inc."))
    found = match(incoming(("1", "Zylker renamed"), ("2", "acme   INC"), ("3", "Twin"),
                           ("4", "Nobody"), ("5", "Recovered"), ("6", "Stamped", "b6"),
                           ("7", "Taken")), other, LINKS, "crm")
    got = dict(zip(found.record_key.str.split("/").str[-1], zip(found.match, found.other_id,
                                                                strict=True), strict=True))
    assert got == {"1": ("link", "b1"), "2": ("name", "b2"), "3": ("ambiguous", None),
                   "4": ("none", None), "5": ("ref", "b5"), "6": ("ref", "b6"),
                   "7": ("name", "b8")}
    assert found.set_index("match").loc["ambiguous", "candidates"] == ["b3", "b4"]
    assert found.iloc[6].other_linked is True


def test_fuzzy_matches_are_only_proposals():
    found = match(incoming(("2", "ACME Incorporated")), books_index(("b9", "Acme, Inc.")),
                  pd.DataFrame(), "crm")
    assert found.iloc[0].match == "none" and found.iloc[0].proposals == ["b9"]


def test_names_match_only_within_the_same_kind():
    other = pd.DataFrame([{"id": "b1", "kind": "contacts", "name": "Zylker", "ref_id": None,
                           "parent_id": None}])
    assert match(incoming(("1", "Zylker")), other, pd.DataFrame(), "crm").iloc[0].match == "none"


def test_special_characters_do_not_break_matching():
    name = "(Acme), Inc: \\ * ? [Sales] & Co. 🚀"
    found = match(incoming(("1", name)), books_index(("b1", name)), pd.DataFrame(), "crm")
    assert found.iloc[0].match == "name"


def test_index_records_from_raw_books_contacts():
    books = pd.DataFrame([
        {"contact_id": "b1", "contact_name": "Zylker", "contact_type": "customer",
         "customer_sub_type": "business",
         "custom_fields": [{"api_name": "cf_crm_id", "value": "1"}]},
        {"contact_id": "b2", "contact_name": "Ann Lee", "contact_type": "customer",
         "customer_sub_type": "individual"}])
    index = index_records(books, ACCOUNTS, "books", CUSTOMERS)
    assert index.to_dict("records") == [{"id": "b1", "kind": "accounts", "name": "Zylker",
                                         "ref_id": "1", "parent_id": None, "keys": []}]


def test_contact_keys_of_likely_same_records():
    assert contact_keys({"Email": " Ann@Example.COM ", "Phone": "+44 (20) 7946-0958",
                         "Website": "https://www.Example.com/x", "Name": "x"}) == [
        "domain:example.com", "email:ann@example.com", "phone:079460958"]
    assert contact_keys({"billing_address.phone": "020 7946 0958", "website": "example"}) == [
        "phone:079460958"]  # no domain without a dot; the last 9 digits match either way
    assert contact_keys({"phone": "12-34", "email": "not an email", "website": None}) == []
