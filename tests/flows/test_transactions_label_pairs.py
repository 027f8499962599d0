"""End to end through the emulators: transaction custom fields with the same label on both sides
carry their values both ways with no `--map`; a same-label pair whose types do not fit and a
field with no partner are left alone and listed by `crmbooks status` with why; an explicit map
still wins over a label pair."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.runtime import get_runtime
from support.transactions import (
    books_by_crm_id,
    cli_json,
    crm_by_books_id,
    crm_create,
    lines,
    run,
    run_books,
)

pytestmark = pytest.mark.settings(transactions={"enabled": True, "modules": ["estimates"]})

#: What an administrator adds in each product's setup: one pair whose labels differ only in
#: case and spacing, one same-label pair of types that cannot carry each other's values, and
#: one CRM field with no Books partner.
CRM_FIELDS = [("PO_Number__c", "PO Number", "text"), ("Weeks__c", "Weeks", "double"),
              ("Internal_Note__c", "Internal Note", "text")]
BOOKS_FIELDS = [("cf_po_number", "po  number", "string"), ("cf_weeks", "Weeks", "string")]


def add_field(server, **body) -> httpx.Response:
    """A custom field added through the emulators' control route."""
    return httpx.post(f"{server.base_url}/__emulator__/custom-fields", json=body)


@pytest.fixture
def labelled(store, emu_reset):
    """Both sides' labelled custom fields on quotes and estimates; removed afterwards."""
    for api, label, kind in CRM_FIELDS:
        add_field(emu_reset, product="crm", module="Quotes", api_name=api, label=label,
                  data_type=kind).raise_for_status()
    for api, label, kind in BOOKS_FIELDS:
        add_field(emu_reset, product="books", resource="estimates", api_name=api,
                  label=label, data_type=kind).raise_for_status()
    yield store
    emu_reset.emu.reset()  # the added fields go with the seeded data


def cf(record: dict, name: str) -> str | None:
    return next((c["value"] for c in record["custom_fields"] if c["api_name"] == name), None)


def test_same_label_fields_travel_both_ways_without_a_map_and_status_lists_the_rest(
        labelled, emu_reset, linked):
    store = labelled
    # Books → CRM: an estimate made in Books (the newest: crmbooks reads the fields off it).
    made = get_runtime().books.create("estimates", {
        "customer_id": linked["customer"],
        "line_items": [{"item_id": linked["item"], "quantity": 1, "rate": Decimal("80")}],
        "custom_fields": [{"api_name": "cf_po_number", "value": "PO-77"},
                          {"api_name": "cf_weeks", "value": "six"}]})
    assert made.ok, made
    summary = run_books("estimates", made.id)
    assert summary["counts"]["crm"]["created"] == 1, summary
    assert summary["counts"]["crm"]["failed"] == 0, summary  # the unfit pair is not tried
    [quote] = crm_by_books_id(emu_reset, "Quotes", made.id)
    assert quote["PO_Number__c"] == "PO-77"
    assert quote.get("Weeks__c") is None

    # CRM → Books: a quote made in the CRM carries its value into the estimate.
    crm_quote = crm_create("Quotes", {"Subject": "With PO", "Account_Name": {
        "id": linked["account"]}, "Quoted_Items": lines(linked), "PO_Number__c": "PO-88",
        "Weeks__c": 3, "Internal_Note__c": "stays in the CRM"})
    assert run("Quotes", crm_quote)["counts"]["books"]["created"] == 1
    [estimate] = books_by_crm_id(emu_reset, "estimates", crm_quote)
    assert cf(estimate, "cf_po_number") == "PO-88"
    assert cf(estimate, "cf_weeks") is None

    # status lists what found no partner, and why; it reads no Zoho API for it.
    before = httpx.get(f"{emu_reset.base_url}/__emulator__/stats").json()
    code, shown = cli_json("status")
    assert code == 0, shown
    fields = shown["modules"]["transactions"]["custom_fields"]["Quotes"]
    assert fields["resource"] == "estimates" and fields["known"] is True
    assert fields["paired"] == [{"crm": "PO_Number__c", "books": "cf_po_number",
                                 "label": "PO Number"}]
    reasons = {(u["side"], u["field"]): u["reason"] for u in fields["unpaired"]}
    assert set(reasons) == {("crm", "Weeks__c"), ("books", "cf_weeks"),
                            ("crm", "Internal_Note__c")}
    assert "Weeks__c is double, Books cf_weeks is string" in reasons[("crm", "Weeks__c")]
    assert "no Books custom field of estimates" in reasons[("crm", "Internal_Note__c")]
    text = " ".join(CliRunner().invoke(app, ["status"]).output.split())  # as if unwrapped
    assert "Quotes ↔ Books estimates custom fields: paired by label: " \
           "PO_Number__c=cf_po_number; with no partner: 3" in text
    assert "CRM Internal_Note__c ('Internal Note'): no Books custom field" in text
    after = httpx.get(f"{emu_reset.base_url}/__emulator__/stats").json()
    assert _api_requests(after) == _api_requests(before)

    # An explicit map wins: cf_po_number now goes to Internal_Note__c, not PO_Number__c.
    store.save_settings("transactions", {"enabled": True, "modules": ["estimates"], "maps": [
        {"books": "custom_fields.cf_po_number", "crm": "Internal_Note__c"}]})
    assert get_runtime().books.update("estimates", made.id, {
        "custom_fields": [{"api_name": "cf_po_number", "value": "PO-79"}]}).ok
    assert run_books("estimates", made.id)["counts"]["crm"]["updated"] == 1
    [quote] = crm_by_books_id(emu_reset, "Quotes", made.id)
    assert (quote["Internal_Note__c"], quote["PO_Number__c"]) == ("PO-79", "PO-77")
    code, shown = cli_json("status")
    fields = shown["modules"]["transactions"]["custom_fields"]["Quotes"]
    assert fields["paired"] == []
    assert ("crm", "PO_Number__c") in {(u["side"], u["field"]) for u in fields["unpaired"]}


def _api_requests(stats: dict) -> object:
    """The emulators' counts of API requests (the controls are not counted)."""
    return {k: v for k, v in stats.items() if k != "books_org"}


@pytest.mark.parametrize("body, said", [
    ({"product": "erp", "module": "Quotes"}, "product must be crm or books"),
    ({"product": "crm", "module": "Nope", "api_name": "X__c", "label": "X",
      "data_type": "text"}, "unknown CRM module Nope"),
    ({"product": "crm", "module": "Quotes", "api_name": "X__c", "label": "X",
      "data_type": "lookup"}, "data_type must be one of"),
    ({"product": "crm", "module": "Quotes", "api_name": "Subject", "label": "Subject 2",
      "data_type": "text"}, "already have a field Subject"),
    ({"product": "books", "resource": "estimates", "api_name": "po", "label": "PO",
      "data_type": "string"}, "api_name (cf_…) and label are required"),
    ({"product": "books", "resource": "estimates", "api_name": "cf_crm_id", "label": "Again",
      "data_type": "string"}, "already have a custom field cf_crm_id"),
    ({"product": "books", "resource": "bills", "api_name": "cf_x", "label": "X",
      "data_type": "string"}, "unknown Books resource bills"),
])
def test_the_emulators_refuse_a_bad_custom_field_and_change_nothing(emu_reset, body, said):
    crm_before = [f.api_name for f in emu_reset.emu.crm.catalogue.fields["Quotes"]]
    books_before = list(emu_reset.emu.books.org().custom_fields["estimate"])
    response = add_field(emu_reset, **body)
    assert response.status_code == 400 and said in response.json()["error"]
    assert [f.api_name for f in emu_reset.emu.crm.catalogue.fields["Quotes"]] == crm_before
    assert emu_reset.emu.books.org().custom_fields["estimate"] == books_before
