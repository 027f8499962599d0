"""End to end: `crmbooks retry` of transaction failures, both ways, through the CLI.

A transaction that failed because something it needs was not linked yet is fixed at its source
(the item linked), then `crmbooks retry` re-runs exactly the failed records through the
transactions flow: the fixed one syncs and its failure is resolved, a still broken one stays
failed with its reason, and nothing else is written (the emulators' request log says so).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.runtime import get_runtime
from support.customers import writes
from support.transactions import (
    ALL,
    books_by_crm_id,
    cli_json,
    crm_by_books_id,
    crm_create,
    lines,
    run,
    run_books,
)

pytestmark = pytest.mark.settings(transactions={"enabled": True, "modules": ALL})


def retry(*args: str) -> tuple[int, dict | str]:
    """`crmbooks retry ARGS --json`: the exit code and the printed runs (or the text)."""
    return cli_json("retry", *args)


def books_item(name: str) -> str:
    """A Books item, made before the runs under test (the emulator logs a request just after
    answering it: made right before the log is cleared, it could land in the next test step)."""
    result = get_runtime().books.create("items", {"name": name, "rate": Decimal("3")})
    assert result.ok, result
    return result.id


def link_product(store, crm_id: str, books_id: str) -> None:
    """The fix at the source: the product linked as the items sync links it."""
    store.upsert_link("items", crm_id=crm_id, books_id=books_id, kind="products",
                      crm_module="Products", made_by="sync")


def test_retry_syncs_a_fixed_crm_transaction_and_keeps_a_broken_one(store, emu_reset, linked):
    ids = linked
    other_account = sorted(emu_reset.emu.crm.records("Accounts"))[1]  # not linked
    item = books_item("Product Retry")
    fine = crm_create("Quotes", {"Subject": "Fine", "Account_Name": {"id": ids["account"]},
                                 "Quoted_Items": lines(ids)})
    no_item = crm_create("Quotes", {"Subject": "Unlinked item",
                                    "Account_Name": {"id": ids["account"]},
                                    "Quoted_Items": lines(ids, ids["unlinked_product"])})
    no_party = crm_create("Quotes", {"Subject": "Unlinked account",
                                     "Account_Name": {"id": other_account},
                                     "Quoted_Items": lines(ids)})
    summary = run("Quotes", fine, no_item, no_party)
    assert summary["counts"]["books"]["created"] == 1
    assert summary["counts"]["books"]["failed"] == 2
    assert set(store.failures(module="transactions")["record_key"]) == {
        f"Quotes:{no_item}", f"Quotes:{no_party}"}

    link_product(store, ids["unlinked_product"], item)
    emu_reset.emu.stats.clear()
    code, report = retry("--module", "transactions")

    assert code == 1, report  # one record still fails
    [again] = report["runs"]
    assert again["module"] == "transactions"
    assert again["counts"]["books"]["created"] == 1 and again["counts"]["books"]["failed"] == 1
    assert [f["record"] for f in again["failures"]] == [f"Quotes:{no_party}"]
    [estimate] = books_by_crm_id(emu_reset, "estimates", no_item)
    assert [line["item_id"] for line in estimate["line_items"]] == [item]
    still = store.failures(module="transactions").to_dict("records")
    assert [f["record_key"] for f in still] == [f"Quotes:{no_party}"]
    assert still[0]["attempts"] == 2 and "not linked" in still[0]["message"]
    # Exactly the fixed record was written: its estimate (an upsert by cf_crm_id), and its
    # Books id on the CRM quote.
    assert [(w["method"], w["path"]) for w in writes(emu_reset, "books")] == [
        ("PUT", "/books/v3/estimates")]
    assert [(w["method"], w["path"]) for w in writes(emu_reset, "crm")] == [
        ("PUT", "/crm/v8/Quotes")]
    assert emu_reset.emu.crm.records("Quotes")[no_item]["Books_Id__c"] == \
        estimate["estimate_id"]
    assert len(books_by_crm_id(emu_reset, "estimates", fine)) == 1

    # Retrying a key that is no longer failing says so and exits 0, writing nothing.
    emu_reset.emu.stats.clear()
    code, said = retry("--record", f"Quotes:{no_item}")
    assert code == 0 and "no unresolved failures" in said
    assert writes(emu_reset) == []


def test_retry_syncs_a_fixed_books_transaction_into_the_crm_once(store, emu_reset, linked):
    gizmo = books_item("Gizmo Retry")
    invoice = get_runtime().books.create("invoices", {
        "customer_id": linked["customer"],
        "line_items": [{"item_id": linked["item"], "quantity": 1, "rate": Decimal("5")},
                       {"item_id": gizmo, "quantity": 2, "rate": Decimal("3")}]}).record
    key = f"invoices:{invoice['invoice_id']}"
    assert run_books("invoices", invoice["invoice_id"])["counts"]["crm"]["failed"] == 1
    assert list(store.failures(module="transactions")["record_key"]) == [key]

    # Fixed at the source: the Books item linked to a CRM product (as the items sync does).
    link_product(store, linked["unlinked_product"], gizmo)
    emu_reset.emu.stats.clear()
    code, report = retry()  # every unresolved failure: here only that invoice

    assert code == 0, report
    [again] = report["runs"]
    assert again["module"] == "transactions" and again["counts"]["crm"]["created"] == 1
    assert again["failures"] == []
    [crm_invoice] = crm_by_books_id(emu_reset, "Invoices", invoice["invoice_id"])
    assert [r["Product_Name"] for r in crm_invoice["Invoiced_Items"]] == [
        linked["product"], linked["unlinked_product"]]
    assert store.failures(module="transactions").empty
    # Only that invoice: created in the CRM, its CRM id written on the Books invoice.
    assert [(w["method"], w["path"]) for w in writes(emu_reset, "crm")] == [
        ("POST", "/crm/v8/Invoices/upsert")]
    assert [(w["method"], w["path"]) for w in writes(emu_reset, "books")] == [
        ("PUT", f"/books/v3/invoices/{invoice['invoice_id']}")]


def test_retry_of_an_unknown_module_exits_2_and_changes_nothing(store, emu_reset, linked):
    quote = crm_create("Quotes", {"Subject": "Unlinked item",
                                  "Account_Name": {"id": linked["account"]},
                                  "Quoted_Items": lines(linked, linked["unlinked_product"])})
    run("Quotes", quote)
    emu_reset.emu.stats.clear()
    result = CliRunner().invoke(app, ["retry", "--module", "quotes"])
    assert result.exit_code == 2
    assert "--module must be one of" in result.output and "transactions" in result.output
    assert writes(emu_reset) == []
    [failure] = store.failures(module="transactions").to_dict("records")
    assert failure["record_key"] == f"Quotes:{quote}" and failure["attempts"] == 1
