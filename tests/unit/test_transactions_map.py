"""Transactions both ways as pure functions: CRM records as Books bodies (parties, lines,
money), Books records as CRM bodies (statuses, totals), and custom-field values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crmbooks.settings import SettingsError, parse_module_settings
from crmbooks.sync.transactions import books_body, crm_fields
from crmbooks.sync.transactions_crm import (
    crm_body,
    crm_status,
    custom_to_books,
    custom_to_crm,
    subject_of,
)

LINKS = {"accounts": {"A1": "BA1"}, "contacts": {"C1": "BC1"}, "vendors": {"V1": "BV"},
         "items": {"P1": "I1"}}


def quote(**kw) -> dict:
    return {"id": "Q1", "Subject": "Q-1", "Account_Name": {"id": "A1", "name": "Acme"},
            "Deal_Name": {"id": "D1", "name": "Big"}, "Valid_Till": "2026-12-31",
            "Quoted_Items": [{"Product_Name": {"id": "P1", "name": "Widget"}, "Quantity": 2.0,
                              "List_Price": Decimal("10.5"), "Discount": 0.0}], **kw}


def body(record, module="Quotes", mode="accounts", currencies=("USD", "EUR")):
    return books_body(record, module, customers_mode=mode, links=LINKS,
                      currencies=frozenset(currencies), base_currency="USD")


def test_a_quote_becomes_an_estimate_body_with_decimal_money():
    out, why = body(quote(Adjustment=-1.5))
    assert why is None
    assert out["customer_id"] == "BA1" and out["reference_number"] == "Q-1"
    assert out["zcrm_potential_id"] == "D1" and out["expiry_date"] == "2026-12-31"
    assert out["line_items"] == [{"item_id": "I1", "quantity": Decimal("2.0"),
                                  "rate": Decimal("10.5")}]
    assert out["adjustment"] == Decimal("-1.5")
    assert "currency_code" not in out


def test_contacts_mode_and_purchase_orders():
    out, _ = body(quote(Account_Name=None, Contact_Name={"id": "C1", "name": "Bo"}),
                  mode="contacts")
    assert out["customer_id"] == "BC1"
    po = {"id": "PO1", "Subject": "PO", "Vendor_Name": {"id": "V1", "name": "Ven"},
          "Purchase_Items": [{"Product_Name": {"id": "P1", "name": "W"}, "Quantity": 1,
                              "List_Price": 3}]}
    out, _ = body(po, "Purchase_Orders")
    assert out["vendor_id"] == "BV" and "zcrm_potential_id" not in out
    assert "Vendor_Name" in crm_fields("Purchase_Orders")
    assert "Currency" not in crm_fields("Quotes", {"Subject", "Account_Name"})


def test_what_cannot_go_is_named():
    _, why = body(quote(Quoted_Items=[{"Product_Name": {"id": "P9", "name": "Gadget"},
                                       "Quantity": 1}]))
    assert "'Gadget' (P9) is not linked" in why and "sync items" in why
    _, why = body(quote(Account_Name={"id": "A9", "name": "Zed"}))
    assert "'Zed' (A9) is not linked" in why
    _, why = body(quote(Currency="JPY"))
    assert "JPY is not enabled" in why
    out, why = body(quote(Currency="EUR"))
    assert why is None and out["currency_code"] == "EUR"
    _, why = body(quote(Quoted_Items=[]))
    assert "no line items" in why
    _, why = body(quote(Quoted_Items=[{"Product_Name": {"id": "P1", "name": "W"},
                                       "Quantity": -1, "List_Price": 1}]))
    assert "Quantity is negative" in why


# ------------------------------------------------------------------------ Books → CRM

QUOTE_STAGES = ["-None-", "Draft", "Negotiation", "Delivered", "On Hold", "Confirmed",
                "Closed Won", "Closed Lost"]
PRESENT = {"Status", "Adjustment", "Valid_Till", "Due_Date", "Currency"}


def books_estimate(**kw) -> dict:
    return {"estimate_id": "E1", "estimate_number": "EST-7", "status": "sent",
            "customer_id": "BA1", "customer_name": "Acme", "total": Decimal("45.05"),
            "expiry_date": "2026-12-31", "currency_code": "USD",
            "line_items": [{"item_id": "I1", "name": "Widget", "quantity": Decimal(4),
                            "rate": Decimal("10.50"), "item_total": Decimal("37.80"),
                            "description": "four"}], **kw}


def crm(record, resource="estimates", party=None, picklist=QUOTE_STAGES):
    return crm_body(record, resource, party=party or {"Account_Name": {"id": "A1"}},
                    items_back={"I1": "P1"}, picklist=picklist, present=PRESENT)


def test_a_books_estimate_becomes_a_crm_quote_whose_computed_total_matches():
    body, why = crm(books_estimate())
    assert why is None
    [row] = body["Quoted_Items"]
    assert row == {"Product_Name": {"id": "P1"}, "Quantity": Decimal(4),
                   "List_Price": Decimal("10.50"), "Discount": Decimal("4.20"),
                   "Description": "four"}
    # The CRM computes Grand Total = Σ(qty × price − discount) + Adjustment: 37.80 + 7.25.
    assert body["Adjustment"] == Decimal("7.25")
    assert body["Status"] == "Delivered" and body["Valid_Till"] == "2026-12-31"
    assert body["Account_Name"] == {"id": "A1"} and body["Currency"] == "USD"
    assert subject_of(books_estimate(), "estimates") == "EST-7"
    assert subject_of(books_estimate(reference_number="PO 12"), "estimates") == "PO 12"


def test_books_statuses_become_crm_picklist_values_or_nothing():
    assert crm_status("estimates", "declined", QUOTE_STAGES) == "Closed Lost"
    assert crm_status("invoices", "paid", ["Created", "Approved", "Delivered"]) == "Delivered"
    assert crm_status("invoices", "paid", ["Created", "Paid", "Delivered"]) == "Paid"
    assert crm_status("invoices", "void", ["Open"]) is None  # no fitting value: not sent
    body, _ = crm(books_estimate(), picklist=["Open"])
    assert "Status" not in body


def test_what_cannot_reach_the_crm_is_named():
    _, why = crm(books_estimate(line_items=[{"item_id": "I9", "name": "Gizmo", "quantity": 1,
                                             "rate": 2}]))
    assert "item 'Gizmo' (I9) is not linked" in why and "sync items" in why
    _, why = crm_body(books_estimate(), "estimates", party=None, items_back={"I1": "P1"},
                      picklist=None, present=PRESENT)
    assert "customer 'Acme' is not linked" in why
    _, why = crm(books_estimate(line_items=[]))
    assert "no line items" in why


MAPS = [{"crm": "Weeks__c", "books": "cf_weeks", "direction": "both", "crm_type": "double",
         "books_type": "number"},
        {"crm": "Ref__c", "books": "cf_ref", "direction": "to_crm", "crm_type": "text",
         "books_type": "string"},
        {"crm": "Ship__c", "books": "cf_ship", "direction": "both", "crm_type": "text",
         "books_type": "date"}]


def test_custom_field_values_convert_by_the_target_type_both_ways():
    out, problems = custom_to_books({"Weeks__c": 3.5, "Ref__c": "x", "Ship__c": "2027-01-02"},
                                    MAPS)
    assert problems == []
    assert out == [{"api_name": "cf_weeks", "value": "3.5"},
                   {"api_name": "cf_ship", "value": "2027-01-02"}]  # to_crm map stays home
    values, problems = custom_to_crm({"custom_fields": [
        {"api_name": "cf_weeks", "value": "6"}, {"api_name": "cf_ref", "value": "PO-1"}]}, MAPS)
    assert problems == [] and values == {"Weeks__c": Decimal(6), "Ref__c": "PO-1",
                                         "Ship__c": None}


def test_custom_field_values_of_the_wrong_type_are_problems_naming_both_fields():
    _, problems = custom_to_books({"Weeks__c": "many", "Ship__c": "next week"}, MAPS)
    assert problems == [
        "custom field Weeks__c → Books cf_weeks (number): 'many' is not a number",
        "custom field Ship__c → Books cf_ship (date): 'next week' is not a date (yyyy-mm-dd)"]
    _, problems = custom_to_crm({"custom_fields": [{"api_name": "cf_weeks", "value": "six"}]},
                                MAPS)
    assert problems == ["custom field Books cf_weeks → Weeks__c (double): 'six' is not a number"]


def test_transactions_maps_are_books_custom_fields_with_a_known_section():
    settings = parse_module_settings("transactions", {"maps": [
        {"books": "custom_fields.cf_po", "crm": "PO__c", "section": "invoices"}]})
    assert settings.maps[0].section == "invoices"
    for bad, words in ((["reference_number", None], "custom fields only"),
                       (["custom_fields.cf_crm_id", None], "not cf_crm_id"),
                       (["custom_fields.cf_po", "bills"], "section must be")):
        with pytest.raises(SettingsError, match=words):
            parse_module_settings("transactions", {"maps": [
                {"books": bad[0], "crm": "PO__c", "section": bad[1]}]})
