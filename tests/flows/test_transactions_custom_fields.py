"""End to end: custom fields of transactions both ways: mapped values travel CRM → Books
and Books → CRM, a map to a field that does not exist stops the run before any write, and a
value of the wrong type is a failure row naming both fields (nothing else is lost)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crmbooks.runtime import get_runtime
from crmbooks.settings import SettingsError
from emulators.crm.fields import FIELD_MAP, FIELDS, Field
from support.transactions import (
    ALL,
    books_by_crm_id,
    crm_by_books_id,
    crm_create,
    lines,
    run,
    run_books,
)

pytestmark = pytest.mark.settings(transactions={"enabled": True, "modules": ALL})
MAPS = [{"books": "custom_fields.cf_po_ref", "crm": "PO_Ref__c"},
        {"books": "custom_fields.cf_weeks", "crm": "Weeks__c"},
        {"books": "custom_fields.cf_ship_on", "crm": "Ship_Note__c"}]


@pytest.fixture
def custom_fields(store, emu_reset, monkeypatch):
    """A CRM org whose Quotes have three custom fields, a Books org whose estimates have three;
    the maps between them saved in the transactions settings."""
    added = [Field("PO_Ref__c", "PO Ref", "text", length=100, custom=True),
             Field("Weeks__c", "Weeks", "double", length=16, decimal_place=2, custom=True),
             Field("Ship_Note__c", "Ship Note", "text", length=100, custom=True)]
    monkeypatch.setitem(FIELDS, "Quotes", [*FIELDS["Quotes"], *added])
    for field in added:
        monkeypatch.setitem(FIELD_MAP["Quotes"], field.api_name, field)
    books = emu_reset.emu.books
    org = books.org()
    definitions = [{"customfield_id": books.new_id(), "index": 10 + n, "label": label,
                    "api_name": api, "data_type": kind, "is_unique": False, "is_active": True}
                   for n, (label, api, kind) in enumerate((
                       ("PO ref", "cf_po_ref", "string"), ("Weeks", "cf_weeks", "number"),
                       ("Ship on", "cf_ship_on", "date")))]
    monkeypatch.setitem(org.custom_fields, "estimate", [*org.custom_fields["estimate"],
                                                        *definitions])
    store.save_settings("transactions", {"enabled": True, "modules": ["estimates"],
                                         "maps": MAPS})
    return store


def estimate(linked: dict, **values: str) -> dict:
    """An estimate made in Books with custom-field values (the newest one: the metadata check
    reads the Books custom fields off it)."""
    result = get_runtime().books.create("estimates", {
        "customer_id": linked["customer"],
        "line_items": [{"item_id": linked["item"], "quantity": 1, "rate": Decimal("80")}],
        "custom_fields": [{"api_name": k, "value": v} for k, v in values.items()]})
    assert result.ok, result
    return result.record


def cf(record: dict, name: str) -> str | None:
    return next((c["value"] for c in record["custom_fields"] if c["api_name"] == name), None)


def test_custom_fields_travel_both_ways_and_wrong_types_fail_naming_the_fields(
        custom_fields, emu_reset, linked):
    store = custom_fields
    made = estimate(linked, cf_po_ref="PO-77", cf_weeks="6", cf_ship_on="2026-12-01")
    assert run_books("estimates", made["estimate_id"])["counts"]["crm"]["created"] == 1
    [quote] = crm_by_books_id(emu_reset, "Quotes", made["estimate_id"])
    assert (quote["PO_Ref__c"], quote["Weeks__c"], quote["Ship_Note__c"]) == (
        "PO-77", 6.0, "2026-12-01")

    # CRM → Books: a quote made in the CRM carries its values into the estimate.
    crm_quote = crm_create("Quotes", {"Subject": "With refs", "Account_Name": {
        "id": linked["account"]}, "Quoted_Items": lines(linked), "PO_Ref__c": "PO-88",
        "Weeks__c": 3, "Ship_Note__c": "2027-01-15"})
    assert run("Quotes", crm_quote)["counts"]["books"]["created"] == 1
    [books_estimate] = books_by_crm_id(emu_reset, "estimates", crm_quote)
    assert cf(books_estimate, "cf_po_ref") == "PO-88"
    assert Decimal(cf(books_estimate, "cf_weeks")) == 3
    assert cf(books_estimate, "cf_ship_on") == "2027-01-15"
    # A change of a mapped value in Books reaches the CRM (and only that record changes).
    assert get_runtime().books.update("estimates", books_estimate["estimate_id"], {
        "custom_fields": [{"api_name": "cf_po_ref", "value": "PO-89"}]}).ok
    assert run_books("estimates", books_estimate["estimate_id"])["counts"]["crm"]["updated"] == 1
    assert emu_reset.emu.crm.records("Quotes")[crm_quote]["PO_Ref__c"] == "PO-89"

    # Wrong types: a word in the Books number field, a note in the CRM field mapped to a date.
    wordy = estimate(linked, cf_po_ref="PO-90", cf_weeks="six")
    summary = run_books("estimates", wordy["estimate_id"])
    assert summary["counts"]["crm"]["failed"] == 1
    bad_quote = crm_create("Quotes", {"Subject": "Bad date", "Account_Name": {
        "id": linked["account"]}, "Quoted_Items": lines(linked), "Ship_Note__c": "next week"})
    assert run("Quotes", bad_quote)["counts"]["books"]["failed"] == 1
    failures = {f["record_key"]: f["message"] for f in
                store.failures(module="transactions").to_dict("records")}
    wrong = failures[f"estimates:{wordy['estimate_id']}"]
    assert "cf_weeks" in wrong and "Weeks__c" in wrong and "'six' is not a number" in wrong
    wrong = failures[f"Quotes:{bad_quote}"]
    assert "Ship_Note__c" in wrong and "cf_ship_on" in wrong and "not a date" in wrong
    assert crm_by_books_id(emu_reset, "Quotes", wordy["estimate_id"]) == []
    assert books_by_crm_id(emu_reset, "estimates", bad_quote) == []


@pytest.mark.parametrize("bad_map, named", [
    ({"books": "custom_fields.cf_gone", "crm": "PO_Ref__c"}, "no custom field cf_gone"),
    ({"books": "custom_fields.cf_po_ref", "crm": "Old_Ref__c"}, "no field Old_Ref__c"),
    ({"books": "custom_fields.cf_po_ref", "crm": "Grand_Total"}, "Grand_Total is read-only"),
])
def test_a_map_to_a_field_that_does_not_fit_stops_the_run_before_any_write(
        custom_fields, emu_reset, linked, bad_map, named):
    store = custom_fields
    estimate(linked, cf_po_ref="PO-1", cf_weeks="1", cf_ship_on="2026-12-01")
    quote = crm_create("Quotes", {"Subject": "Waits", "Account_Name": {"id": linked["account"]},
                                  "Quoted_Items": lines(linked)})
    store.save_settings("transactions", {"enabled": True, "modules": ["estimates"],
                                         "maps": [*MAPS, bad_map]})
    writes = _writes(emu_reset)
    with pytest.raises(SettingsError, match=named):
        run()
    assert _writes(emu_reset) == writes
    assert books_by_crm_id(emu_reset, "estimates", quote) == []


def _writes(server) -> dict:
    """Every transaction on both sides with its modified stamp: any write changes it (the
    emulators' request counts would also count the metadata probe, which writes nothing)."""
    org = server.emu.books.org()
    books = {(r, i): rec["last_modified_time"] for r in ("estimates", "invoices")
             for i, rec in org.records.get(r, {}).items()}
    crm = {(m, i): rec.get("Modified_Time") for m in ("Quotes", "Invoices")
           for i, rec in server.emu.crm.records(m).items()}
    return {**books, **crm}


def sent_quote(linked: dict, server) -> tuple[str, str]:
    """A CRM quote (PO-1, 2 seats) in Books as an estimate that Books has sent, the CRM
    showing that: (quote id, estimate id)."""
    estimate(linked, cf_po_ref="PO-0", cf_weeks="1", cf_ship_on="2026-12-01")
    quote = crm_create("Quotes", {"Subject": "Sent one", "Account_Name": {
        "id": linked["account"]}, "Quoted_Items": lines(linked), "PO_Ref__c": "PO-1",
        "Weeks__c": 2, "Ship_Note__c": "2027-01-15"})
    assert run("Quotes", quote)["counts"]["books"]["created"] == 1
    [made] = books_by_crm_id(server, "estimates", quote)
    assert get_runtime().books.mark("estimates", made["estimate_id"], "sent").ok
    assert run_books("estimates", made["estimate_id"])["counts"]["crm"]["updated"] == 1
    return quote, made["estimate_id"]


def crm_edit(quote: str, linked: dict, po_ref: str, seats: int) -> None:
    """One CRM edit of both: a mapped custom field and the amounts."""
    [result] = get_runtime().crm.update("Quotes", [{"id": quote, "PO_Ref__c": po_ref,
                                                    "Quoted_Items": lines(linked,
                                                                          quantity=seats)}])
    assert result.ok


def test_past_draft_a_crm_edit_of_custom_fields_and_amounts_sends_the_fields_and_restores_the_amounts(  # noqa: E501
        custom_fields, emu_reset, linked):
    store = custom_fields
    quote, estimate_id = sent_quote(linked, emu_reset)
    crm_edit(quote, linked, "PO-2", seats=9)
    summary = run("Quotes", quote)

    assert summary["counts"]["books"]["updated"] == 1, summary
    assert summary["counts"]["crm"]["updated"] == 1, summary  # set back in the same run
    [books_estimate] = books_by_crm_id(emu_reset, "estimates", quote)
    assert cf(books_estimate, "cf_po_ref") == "PO-2"  # the custom field reached Books
    assert books_estimate["status"] == "sent" and books_estimate["total"] == Decimal("21.00")
    assert books_estimate["line_items"][0]["quantity"] == 2  # Books keeps its amounts
    crm_quote = emu_reset.emu.crm.records("Quotes")[quote]
    assert crm_quote["PO_Ref__c"] == "PO-2"  # the CRM keeps its custom value
    assert Decimal(str(crm_quote["Grand_Total"])) == Decimal("21.00")
    assert crm_quote["Quoted_Items"][0]["Quantity"] == 2 and crm_quote["Status"] == "Delivered"
    said = [e["message"] for e in store.events(summary["run_id"]).to_dict("records")]
    assert any("set back" in (m or "") for m in said), said
    # Then all is quiet: neither the CRM echo nor the Books one writes anything.
    for quiet in (run("Quotes", quote), run_books("estimates", estimate_id)):
        assert not any(quiet["counts"][s][k] for s in ("books", "crm")
                       for k in ("created", "updated", "failed")), quiet


def test_past_draft_a_refused_custom_field_write_keeps_the_crm_users_values(
        custom_fields, emu_reset, linked, monkeypatch):
    store = custom_fields
    definitions = emu_reset.emu.books.org().custom_fields["estimate"]
    po_ref = next(d for d in definitions if d["api_name"] == "cf_po_ref")
    monkeypatch.setitem(po_ref, "is_unique", True)  # Books refuses a PO ref already used
    quote, _ = sent_quote(linked, emu_reset)  # (an estimate with PO-0 is made first)
    crm_edit(quote, linked, "PO-0", seats=9)
    summary = run("Quotes", quote)

    assert summary["counts"]["books"]["failed"] == 1, summary
    assert summary["counts"]["crm"]["updated"] == 0, summary  # nothing set back
    crm_quote = emu_reset.emu.crm.records("Quotes")[quote]
    assert crm_quote["PO_Ref__c"] == "PO-0" and crm_quote["Quoted_Items"][0]["Quantity"] == 9
    [books_estimate] = books_by_crm_id(emu_reset, "estimates", quote)
    assert cf(books_estimate, "cf_po_ref") == "PO-1" and books_estimate["total"] == Decimal(
        "21.00")
    [failure] = store.failures(module="transactions").to_dict("records")
    assert failure["record_key"] == f"Quotes:{quote}" and "already exists" in failure["message"]

    crm_edit(quote, linked, "PO-3", seats=9)  # fixed in the CRM: the next run goes through
    summary = run("Quotes", quote)
    assert summary["counts"]["books"]["updated"] == 1 and summary["counts"]["crm"]["updated"] == 1
    crm_quote = emu_reset.emu.crm.records("Quotes")[quote]
    assert crm_quote["PO_Ref__c"] == "PO-3" and crm_quote["Quoted_Items"][0]["Quantity"] == 2
    assert store.failures(module="transactions").empty
