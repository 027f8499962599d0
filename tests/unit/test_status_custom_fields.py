"""`crmbooks status` lists the transaction custom fields that found no partner of the same label
from the field metadata the last run cached: no emulator here, so any request would fail."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.metadata import books_fields_key, cached, crm_fields_key
from crmbooks.store import Store

PRIMARY = "20099001"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A connected store with transactions on for estimates and invoices, nothing cached."""
    from crmbooks.runtime import reset_runtime_cache

    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path))
    monkeypatch.setenv("CRMBOOKS_DATABASE_URL", f"sqlite:///{tmp_path / 'crmbooks.db'}")
    reset_runtime_cache()
    store = Store.open(org_id=PRIMARY)
    store.save_connection(books_org_id=PRIMARY)
    store.save_settings("transactions", {"enabled": True,
                                         "modules": ["estimates", "invoices"]})
    yield store
    reset_runtime_cache()


def remember(key: str, value: list[dict]) -> None:
    """Put field metadata in the cache as a run would have (no request: nothing fetches)."""
    cached(SimpleNamespace(org_id=PRIMARY), key, lambda: value)


def status_json() -> dict:
    said = CliRunner().invoke(app, ["status", "--json"])
    assert said.exit_code == 0, said.output
    return json.loads(said.output)["modules"]["transactions"]["custom_fields"]


def test_before_any_run_status_says_the_fields_are_not_read_yet(store):
    fields = status_json()
    assert set(fields) == {"Quotes", "Invoices"}
    assert fields["Quotes"] == {"resource": "estimates", "known": False, "paired": [],
                                "unpaired": []}
    said = CliRunner().invoke(app, ["status"]).output
    assert "not read yet (the next transactions run reads them)" in " ".join(said.split())


def test_status_lists_each_module_s_fields_with_no_partner_and_why(store):
    remember(crm_fields_key("Quotes"), [
        {"api_name": "Books_Id__c", "field_label": "Books Id", "data_type": "text",
         "custom_field": True},
        {"api_name": "PO__c", "field_label": "PO", "data_type": "text", "custom_field": True},
        {"api_name": "Rush__c", "field_label": "Rush", "data_type": "boolean",
         "custom_field": True}])
    remember(books_fields_key("estimates"), [
        {"api_name": "cf_crm_id", "label": "CRM ID", "data_type": "string"},
        {"api_name": "cf_po", "label": "po", "data_type": "string"},
        {"api_name": "cf_rush", "label": "Rush", "data_type": "string"}])
    fields = status_json()
    assert fields["Quotes"]["paired"] == [{"crm": "PO__c", "books": "cf_po", "label": "PO"}]
    assert [(u["side"], u["field"]) for u in fields["Quotes"]["unpaired"]] == [
        ("crm", "Rush__c"), ("books", "cf_rush")]
    assert fields["Invoices"]["known"] is False  # its fields never read: not guessed

    # A map of cf_po to Rush__c wins: PO__c and cf_rush are then without a partner.
    store.save_settings("transactions", {"enabled": True, "modules": ["estimates"], "maps": [
        {"books": "custom_fields.cf_po", "crm": "Rush__c"}]})
    fields = status_json()
    assert set(fields) == {"Quotes"} and fields["Quotes"]["paired"] == []
    assert [(u["field"], u["reason"]) for u in fields["Quotes"]["unpaired"]] == [
        ("PO__c", "its same-label Books field cf_po is mapped with --map to another field"),
        ("cf_rush", "its same-label CRM field Rush__c is mapped with --map to another field")]


def test_with_transactions_off_status_lists_no_custom_fields(store):
    store.save_settings("transactions", {"enabled": False})
    assert status_json() == {}
