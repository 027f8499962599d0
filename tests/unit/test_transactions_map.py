"""CRM transactions as Books bodies (crmbooks.sync.transactions): parties, lines, money."""

from __future__ import annotations

from decimal import Decimal

from crmbooks.sync.transactions import books_body, crm_fields

LINKS = {"accounts": {"A1": "B1"}, "contacts": {"C1": "B2"}, "vendors": {"V1": "BV"},
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
    assert out["customer_id"] == "B1" and out["reference_number"] == "Q-1"
    assert out["zcrm_potential_id"] == "D1" and out["expiry_date"] == "2026-12-31"
    assert out["line_items"] == [{"item_id": "I1", "quantity": Decimal("2.0"),
                                  "rate": Decimal("10.5")}]
    assert out["adjustment"] == Decimal("-1.5")
    assert "currency_code" not in out


def test_contacts_mode_and_purchase_orders():
    out, _ = body(quote(Account_Name=None, Contact_Name={"id": "C1", "name": "Bo"}),
                  mode="contacts")
    assert out["customer_id"] == "B2"
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
