"""End to end: CRM quotes, sales orders, invoices and purchase orders → Books.

Customers, vendors and items are linked the way their syncs link them (tests/flows/
transactions_support.py), which keeps these tests fast.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from crmbooks.runtime import get_runtime
from support.transactions import ALL, books_by_crm_id, crm_create, lines, run

pytestmark = pytest.mark.settings(transactions={"enabled": True, "modules": ALL})


def test_crm_transactions_land_in_books_once_and_follow_changes(store, emu_reset, linked):
    ids = linked
    quote = crm_create("Quotes", {"Subject": "Q-1", "Account_Name": {"id": ids["account"]},
                                  "Quoted_Items": lines(ids)})
    order = crm_create("Sales_Orders", {"Subject": "SO-1",
                                        "Account_Name": {"id": ids["account"]},
                                        "Ordered_Items": lines(ids)})
    invoice = crm_create("Invoices", {"Subject": "INV-1", "Account_Name": {"id": ids["account"]},
                                      "Invoiced_Items": lines(ids, quantity=3)})
    purchase = crm_create("Purchase_Orders", {"Subject": "PO-1",
                                              "Vendor_Name": {"id": ids["vendor"]},
                                              "Purchase_Items": lines(ids, price="4.25")})
    for module, crm_id in (("Quotes", quote), ("Sales_Orders", order), ("Invoices", invoice),
                           ("Purchase_Orders", purchase)):
        summary = run(module, crm_id)
        assert summary["counts"]["books"]["created"] == 1, summary
    [estimate] = books_by_crm_id(emu_reset, "estimates", quote)
    assert estimate["customer_id"] == ids["customer"] and estimate["reference_number"] == "Q-1"
    [line] = estimate["line_items"]
    assert (line["item_id"], line["quantity"], line["rate"]) == (
        ids["item"], Decimal(2), Decimal("10.50"))
    assert estimate["total"] == Decimal("21.00")
    [books_invoice] = books_by_crm_id(emu_reset, "invoices", invoice)
    assert books_invoice["total"] == Decimal("31.50")
    [po] = books_by_crm_id(emu_reset, "purchaseorders", purchase)
    assert po["vendor_id"] == ids["books_vendor"] and po["total"] == Decimal("8.50")
    assert len(books_by_crm_id(emu_reset, "salesorders", order)) == 1
    assert emu_reset.emu.crm.records("Quotes")[quote]["Books_Id__c"] == estimate["estimate_id"]

    # Again (events replayed): nothing is written; then a CRM change reaches Books.
    assert run("Quotes", quote, quote)["counts"]["books"]["updated"] == 0
    [result] = get_runtime().crm.update("Quotes", [{"id": quote, "Quoted_Items": lines(
        ids, quantity=5)}])
    assert result.ok
    assert run("Quotes", quote)["counts"]["books"]["updated"] == 1
    [estimate] = books_by_crm_id(emu_reset, "estimates", quote)
    assert estimate["total"] == Decimal("52.50")

    # The catch-up (`crmbooks transactions sync`): seeded records of unlinked accounts fail
    # with their reasons (exit 1); ours are not written again.
    import json

    from typer.testing import CliRunner

    from crmbooks.app.cli import app

    result = CliRunner().invoke(app, ["transactions", "sync", "--json"])
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.output)
    assert report["module"] == "transactions"
    assert all("not linked" in f["message"] for f in report["failures"])
    for resource, crm_id in (("estimates", quote), ("salesorders", order),
                             ("invoices", invoice), ("purchaseorders", purchase)):
        assert len(books_by_crm_id(emu_reset, resource, crm_id)) == 1


def test_unlinked_products_parties_and_foreign_currencies_fail_with_reasons(store, emu_reset,
                                                                            linked):
    ids = linked
    emu = emu_reset.emu
    emu.config.crm_multi_currency = True
    try:
        from crmbooks.metadata import clear_cache

        clear_cache(get_runtime())
        accounts = sorted(emu.crm.records("Accounts").values(), key=lambda r: r["id"])
        no_item = crm_create("Quotes", {"Subject": "Unlinked item",
                                        "Account_Name": {"id": ids["account"]},
                                        "Quoted_Items": lines(ids, ids["unlinked_product"])})
        no_party = crm_create("Quotes", {"Subject": "Unlinked account",
                                         "Account_Name": {"id": accounts[1]["id"]},
                                         "Quoted_Items": lines(ids)})
        yen = crm_create("Quotes", {"Subject": "Yen", "Account_Name": {"id": ids["account"]},
                                    "Currency": "JPY", "Quoted_Items": lines(ids)})
        fine = crm_create("Quotes", {"Subject": "Fine", "Account_Name": {"id": ids["account"]},
                                     "Quoted_Items": lines(ids)})
        summary = run("Quotes", no_item, no_party, yen, fine)
        assert summary["state"] == "completed_with_failures"
        failures = {f["crm_id"]: f["message"] for f in
                    store.failures(module="transactions").to_dict("records")}
        assert ids["unlinked_name"] in failures[no_item] and "sync items" in failures[no_item]
        assert accounts[1]["Account_Name"] in failures[no_party]
        assert "JPY is not enabled" in failures[yen]
        assert fine not in failures
        for bad in (no_item, no_party, yen):
            assert books_by_crm_id(emu_reset, "estimates", bad) == []
        assert len(books_by_crm_id(emu_reset, "estimates", fine)) == 1
    finally:
        emu.config.crm_multi_currency = False


def test_a_crm_quote_reaches_books_through_the_receiver(store, emu_reset, linked):
    import time

    from crmbooks.app.receiver.server import Receiver

    receiver = Receiver(debounce_s=0.2).start()
    try:
        quote = crm_create("Quotes", {"Subject": "Evented", "Account_Name": {
            "id": linked["account"]}, "Quoted_Items": lines(linked)})
        deadline = time.monotonic() + 15
        while not books_by_crm_id(emu_reset, "estimates", quote):
            assert time.monotonic() < deadline, "no estimate within 15 s"
            time.sleep(0.1)
        assert receiver.transactions.idle()
        assert len(books_by_crm_id(emu_reset, "estimates", quote)) == 1
    finally:
        receiver.stop()
