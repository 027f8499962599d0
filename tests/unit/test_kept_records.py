"""Kept records: the full records a run read one by one, kept for the rerun after a killed run,
and the rule that says when a kept one still holds (tasks/records/fetch.py)."""

from __future__ import annotations

import json
from decimal import Decimal

from crmbooks.connectors.http import dumps
from crmbooks.store import Store
from tasks.records.fetch import still_holds

STAMP = "2026-12-01T10:00:00+0000"
RECORD = {"contact_id": "46001", "contact_name": "Acme", "last_modified_time": STAMP,
          "credit_limit": Decimal("1234.50"), "website": "https://acme.example.com"}


def test_kept_records_are_replaced_read_by_id_and_forgotten_per_module_and_side(store):
    store.keep_records("customers", "books", [("46001", STAMP, "one"), ("46002", None, "two")])
    store.keep_records("customers", "books", [("46001", "later", "one again")])
    store.keep_records("vendors", "books", [("46001", STAMP, "a vendor")])
    assert store.kept_records("customers", "books", ["46001", "46002", "46003"]) == {
        "46001": ("later", "one again"), "46002": (None, "two")}
    assert store.forget_records("customers", "books") == 2
    assert store.kept_records("customers", "books", ["46001"]) == {}
    assert store.kept_records("vendors", "books", ["46001"]) == {"46001": (STAMP, "a vendor")}


def test_kept_records_belong_to_their_books_organization(store):
    other = Store(store.engine, org_id="other-org")
    store.keep_records("customers", "books", [("46001", STAMP, "ours")])
    assert other.kept_records("customers", "books", ["46001"]) == {}
    assert other.forget_records("customers", "books") == 0
    assert store.kept_records("customers", "books", ["46001"]) == {"46001": (STAMP, "ours")}


def test_many_ids_are_read_in_chunks(store):
    store.keep_records("items", "books", [(str(i), STAMP, "x") for i in range(1200)])
    assert len(store.kept_records("items", "books", [str(i) for i in range(1200)])) == 1200


def test_a_kept_record_holds_with_its_stamp_and_listed_values_and_keeps_its_digits():
    summary = {"contact_id": "46001", "contact_name": "Acme", "last_modified_time": STAMP}
    record = still_holds((STAMP, dumps(RECORD)), summary)
    assert record == RECORD and isinstance(record["credit_limit"], Decimal)
    assert json.loads(dumps(RECORD), parse_float=Decimal)["credit_limit"] == Decimal("1234.50")


def test_a_kept_record_is_read_again_when_anything_says_it_changed():
    summary = {"contact_id": "46001", "contact_name": "Acme", "last_modified_time": STAMP}
    body = dumps(RECORD)
    assert still_holds(None, summary) is None  # never kept
    assert still_holds((None, body), summary) is None  # kept without a stamp
    assert still_holds(("2026-12-01T09:59:59+0000", body), summary) is None  # a later edit
    # an edit within the same second: the stamp is the same, a listed value is not
    assert still_holds((STAMP, body), {**summary, "contact_name": "Acme Ltd"}) is None
