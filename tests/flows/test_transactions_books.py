"""End to end: Books → CRM transactions: status and totals of linked transactions, new
Books transactions of linked customers created in the CRM exactly once, what is skipped or
fails and why, who wins past draft, the run lock. Real flows over the emulators."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crmbooks.runtime import get_runtime
from support.transactions import (
    ALL,
    books_by_crm_id,
    crm_by_books_id,
    crm_create,
    lines,
    link,
    run,
    run_books,
)

pytestmark = pytest.mark.settings(transactions={"enabled": True, "modules": ALL})


def books_create(resource: str, body: dict) -> dict:
    """A transaction made by a person in Books."""
    result = get_runtime().books.create(resource, body)
    assert result.ok, result
    return result.record


def written(summary: dict) -> int:
    return sum(summary["counts"][s][k] for s in ("books", "crm")
               for k in ("created", "updated"))


def events(store, summary: dict) -> list[dict]:
    return store.events(summary["run_id"]).to_dict("records")


def test_books_status_and_totals_reach_the_crm_once_and_books_wins_past_draft(
        store, emu_reset, linked):
    ids = linked
    quote = crm_create("Quotes", {"Subject": "Q-B", "Account_Name": {"id": ids["account"]},
                                  "Quoted_Items": lines(ids)})
    assert run("Quotes", quote)["counts"]["books"]["created"] == 1
    [estimate] = books_by_crm_id(emu_reset, "estimates", quote)
    books = get_runtime().books

    # Sent in Books: the CRM quote's stage follows, once.
    assert books.mark("estimates", estimate["estimate_id"], "sent").ok
    summary = run_books("estimates", estimate["estimate_id"])
    assert summary["counts"]["crm"]["updated"] == 1, summary
    crm_quote = emu_reset.emu.crm.records("Quotes")[quote]
    assert crm_quote["Status"] == "Delivered"
    assert written(run_books("estimates", estimate["estimate_id"])) == 0  # replayed webhook
    # The CRM change that write made is an echo: the CRM → Books event plans nothing.
    again = run("Quotes", quote)
    assert written(again) == 0 and again["counts"]["books"]["skipped"] == 0, again

    # Totals changed in Books (more seats, shipping): the CRM's computed totals match.
    result = books.update("estimates", estimate["estimate_id"], {
        "line_items": [{"item_id": ids["item"], "quantity": 4, "rate": Decimal("10.50"),
                        "discount": "10%"}], "shipping_charge": Decimal("7.25")})
    assert result.ok, result
    assert result.record["total"] == Decimal("45.05")  # 42.00 − 4.20 + 7.25
    assert run_books("estimates", estimate["estimate_id"])["counts"]["crm"]["updated"] == 1
    crm_quote = emu_reset.emu.crm.records("Quotes")[quote]
    assert Decimal(str(crm_quote["Grand_Total"])) == Decimal("45.05")
    [row] = crm_quote["Quoted_Items"]
    assert (row["Quantity"], Decimal(str(row["Discount"]))) == (4, Decimal("4.20"))

    # Past draft Books owns the amounts: a CRM edit of the lines is not applied, said so, and
    # the CRM record is set back to the Books values; then all is quiet.
    [result] = get_runtime().crm.update("Quotes", [{"id": quote, "Quoted_Items": lines(
        ids, quantity=9)}])
    assert result.ok
    summary = run("Quotes", quote)
    assert summary["counts"]["books"]["skipped"] == 1, summary
    assert summary["counts"]["books"]["updated"] == 0 and summary["counts"]["crm"]["updated"] == 1
    assert any("past draft" in (e["message"] or "") for e in events(store, summary))
    [estimate] = books_by_crm_id(emu_reset, "estimates", quote)
    assert estimate["total"] == Decimal("45.05")
    crm_quote = emu_reset.emu.crm.records("Quotes")[quote]
    assert Decimal(str(crm_quote["Grand_Total"])) == Decimal("45.05")
    assert crm_quote["Quoted_Items"][0]["Quantity"] == 4
    assert written(run("Quotes", quote)) == 0
    assert written(run_books("estimates", estimate["estimate_id"])) == 0

    # Accepted, then declined in Books: each reaches the CRM.
    assert books.mark("estimates", estimate["estimate_id"], "accepted").ok
    run_books("estimates", estimate["estimate_id"])
    assert emu_reset.emu.crm.records("Quotes")[quote]["Status"] == "Confirmed"
    assert books.mark("estimates", estimate["estimate_id"], "declined").ok
    run_books("estimates", estimate["estimate_id"])
    assert emu_reset.emu.crm.records("Quotes")[quote]["Status"] == "Closed Lost"


def test_new_books_transactions_of_linked_customers_appear_in_the_crm_once(
        store, emu_reset, linked):
    ids = linked
    invoice = books_create("invoices", {
        "customer_id": ids["customer"], "reference_number": "Made in Books",
        "line_items": [{"item_id": ids["item"], "quantity": 3, "rate": Decimal("19.99")}],
        "adjustment": Decimal("-0.97")})
    estimate = books_create("estimates", {
        "customer_id": ids["customer"],
        "line_items": [{"item_id": ids["item"], "quantity": 1, "rate": Decimal("250")}]})

    # The catch-up, both ways (`crmbooks transactions sync`): each appears once, linked,
    # known to both sides. (Seeded CRM transactions of accounts not linked fail: exit 1.)
    from typer.testing import CliRunner

    from crmbooks.app.cli import app

    first = CliRunner().invoke(app, ["transactions", "sync"])
    assert first.exit_code in (0, 1), first.output
    assert "CRM created 2, updated 0" in first.output, first.output
    assert store.cursor("transactions:invoices", "books") is not None  # the catch-up moved it
    [crm_invoice] = crm_by_books_id(emu_reset, "Invoices", invoice["invoice_id"])
    assert crm_invoice["Subject"] == "Made in Books"
    assert crm_invoice["Account_Name"] == ids["account"]
    assert Decimal(str(crm_invoice["Grand_Total"])) == invoice["total"] == Decimal("59.00")
    assert crm_invoice["Status"] == "Created"
    [crm_quote] = crm_by_books_id(emu_reset, "Quotes", estimate["estimate_id"])
    assert crm_quote["Subject"] == estimate["estimate_number"]
    assert books_by_crm_id(emu_reset, "invoices", crm_invoice["id"])  # cf_crm_id written
    link = store.find_link("transactions", books_id=invoice["invoice_id"])
    assert link is not None and link.crm_id == crm_invoice["id"]

    # A second catch-up plans nothing; replayed webhooks change nothing.
    second = run()
    assert written(second) == 0, second
    assert written(run_books("invoices", invoice["invoice_id"], invoice["invoice_id"])) == 0
    assert len(crm_by_books_id(emu_reset, "Invoices", invoice["invoice_id"])) == 1
    assert len(crm_by_books_id(emu_reset, "Quotes", estimate["estimate_id"])) == 1

    # Paid … void in Books: the CRM invoice follows, still once.
    assert get_runtime().books.mark("invoices", invoice["invoice_id"], "void").ok
    assert run()["counts"]["crm"]["updated"] == 1
    [crm_invoice] = crm_by_books_id(emu_reset, "Invoices", invoice["invoice_id"])
    assert crm_invoice["Status"] == "Cancelled"


def test_a_replayed_create_after_a_lost_link_makes_no_second_crm_record(store, emu_reset,
                                                                        linked):
    invoice = books_create("invoices", {
        "customer_id": linked["customer"],
        "line_items": [{"item_id": linked["item"], "quantity": 1, "rate": Decimal("5")}]})
    assert run_books("invoices", invoice["invoice_id"])["counts"]["crm"]["created"] == 1
    assert store.cursor("transactions:invoices", "books") is None  # webhook runs leave it
    # A crash right after the CRM upsert: neither the link nor cf_crm_id were stored.
    store.delete_link("transactions", books_id=invoice["invoice_id"])
    books = get_runtime().books
    assert books.update("invoices", invoice["invoice_id"], {
        "custom_fields": [{"api_name": "cf_crm_id", "value": ""}]}).ok
    summary = run_books("invoices", invoice["invoice_id"])
    assert summary["counts"]["crm"]["created"] == 1  # the upsert by Books_Id__c: an update
    assert len(crm_by_books_id(emu_reset, "Invoices", invoice["invoice_id"])) == 1
    assert store.find_link("transactions", books_id=invoice["invoice_id"]) is not None


def test_transactions_of_unlinked_customers_are_skipped_and_unlinked_items_fail(
        store, emu_reset, linked):
    org = emu_reset.emu.books.org()
    stranger = next(c for c in org.records["contacts"].values()
                    if c["contact_type"] == "customer" and c["contact_id"] != linked["customer"])
    books = get_runtime().books
    gizmo = books.create("items", {"name": "Gizmo Unlinked", "rate": Decimal("3")})
    assert gizmo.ok, gizmo
    skipped = books_create("invoices", {
        "customer_id": stranger["contact_id"],
        "line_items": [{"item_id": linked["item"], "quantity": 1, "rate": Decimal("5")}]})
    failing = books_create("invoices", {
        "customer_id": linked["customer"],
        "line_items": [{"item_id": linked["item"], "quantity": 1, "rate": Decimal("5")},
                       {"item_id": gizmo.id, "quantity": 2, "rate": Decimal("3")}]})
    summary = run_books("invoices", skipped["invoice_id"], failing["invoice_id"])
    assert summary["counts"]["crm"]["skipped"] == 1 and summary["counts"]["crm"]["failed"] == 1
    said = {e["record_key"]: e["message"] for e in events(store, summary)}
    assert "is not linked to the CRM" in said[f"invoices:{skipped['invoice_id']}"]
    [failure] = store.failures(module="transactions").to_dict("records")
    assert failure["record_key"] == f"invoices:{failing['invoice_id']}"
    assert "'Gizmo Unlinked'" in failure["message"] and "sync items" in failure["message"]
    for books_id in (skipped["invoice_id"], failing["invoice_id"]):
        assert crm_by_books_id(emu_reset, "Invoices", books_id) == []


def test_a_deal_trigger_transaction_is_copied_with_its_deal_and_keeps_its_trigger_key(
        store, emu_reset, linked):
    deal_id = sorted(emu_reset.emu.crm.records("Deals"))[0]
    estimate = books_create("estimates", {
        "customer_id": linked["customer"], "zcrm_potential_id": deal_id,
        "custom_fields": [{"api_name": "cf_crm_id", "value": f"{deal_id}:estimate"}],
        "line_items": [{"item_id": linked["item"], "quantity": 1, "rate": Decimal("5")}]})
    summary = run_books("estimates", estimate["estimate_id"])
    assert summary["counts"]["crm"]["created"] == 1, summary
    [quote] = crm_by_books_id(emu_reset, "Quotes", estimate["estimate_id"])
    assert (quote["Deal_Name"], quote["Account_Name"]) == (deal_id, linked["account"])
    # The trigger's upsert key stays in cf_crm_id: the CRM id is never written over it.
    [kept] = books_by_crm_id(emu_reset, "estimates", f"{deal_id}:estimate")
    assert kept["estimate_id"] == estimate["estimate_id"]
    assert written(run_books("estimates", estimate["estimate_id"])) == 0


def test_a_second_transactions_run_is_refused_while_one_holds_the_lock(store, emu_reset,
                                                                       linked):
    from crmbooks.sync.lifecycle import RunInProgress

    invoice = books_create("invoices", {
        "customer_id": linked["customer"],
        "line_items": [{"item_id": linked["item"], "quantity": 1, "rate": Decimal("5")}]})
    holder = store.start_run("transactions")
    store.acquire_run_lock("transactions", holder)
    try:
        with pytest.raises(RunInProgress):
            run_books("invoices", invoice["invoice_id"])
        refused = store.list_runs("transactions", limit=1)[0]
        assert refused.state == "refused"
        assert crm_by_books_id(emu_reset, "Invoices", invoice["invoice_id"]) == []
        # A dry run writes nothing and takes no lock: it plans while the other run holds it.
        plan = run_books("invoices", invoice["invoice_id"], dry_run=True)
        assert plan["counts"]["crm"]["created"] == 1
        assert crm_by_books_id(emu_reset, "Invoices", invoice["invoice_id"]) == []
    finally:
        store.release_run_lock("transactions", holder)
    assert run_books("invoices", invoice["invoice_id"])["counts"]["crm"]["created"] == 1


def test_purchase_orders_of_linked_vendors_and_invoices_of_linked_contacts_reach_the_crm(
        store, emu_reset, linked):
    crm = emu_reset.emu.crm
    contact = next(c for c in sorted(crm.records("Contacts").values(), key=lambda r: r["id"])
                   if c.get("Account_Name"))
    store.save_settings("customers", {"crm_module": "contacts"})
    person = link(store, "customers", "contacts", "Contacts", contact["id"], "contacts",
                  {"contact_name": f"{contact['Last_Name']} (t)", "contact_type": "customer"})
    order = books_create("purchaseorders", {
        "vendor_id": linked["books_vendor"],
        "line_items": [{"item_id": linked["item"], "quantity": 2, "rate": Decimal("4.25")}]})
    invoice = books_create("invoices", {
        "customer_id": person,
        "line_items": [{"item_id": linked["item"], "quantity": 1, "rate": Decimal("12")}]})
    assert run_books("purchaseorders", order["purchaseorder_id"])["counts"]["crm"][
        "created"] == 1
    [crm_order] = crm_by_books_id(emu_reset, "Purchase_Orders", order["purchaseorder_id"])
    assert crm_order["Vendor_Name"] == linked["vendor"]
    assert Decimal(str(crm_order["Grand_Total"])) == Decimal("8.50")
    assert run_books("invoices", invoice["invoice_id"])["counts"]["crm"]["created"] == 1
    [crm_invoice] = crm_by_books_id(emu_reset, "Invoices", invoice["invoice_id"])
    # With contacts as customers the CRM invoice names the contact, and its account.
    assert crm_invoice["Contact_Name"] == contact["id"]
    assert crm_invoice["Account_Name"] == contact["Account_Name"]
