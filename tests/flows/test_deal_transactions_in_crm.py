"""End to end: every transaction of a deal is visible from the deal and its account in the
CRM — the quote a deal trigger makes, an invoice linked with `crmbooks deals link` — with its
Books number, id and web address; `deals unlink` takes it off the deal; Books status and
totals follow; reruns write nothing. Read back through the CRM's related lists over HTTP."""

from __future__ import annotations

from decimal import Decimal

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.runtime import get_runtime
from support.deals import PROPOSAL, QUOTE_MODE, books_of, configure, new_deal, trigger
from support.deals import written as deal_writes
from support.transactions import ALL, run, run_books

pytestmark = pytest.mark.settings(transactions={"enabled": True, "modules": ALL})

SHOWN = "Subject,Deal_Name,Account_Name,Status,Grand_Total,Books_Id__c,Books_Number__c," \
        "Books_URL__c"


def related(module: str, record_id: str, child: str) -> list[dict]:
    """A record's related list as the CRM serves it (GET /{module}/{id}/{related list})."""
    reply = get_runtime().crm.http.request(
        "GET", "/crm/v8/{module}/{id}/{related}",
        path={"module": module, "id": record_id, "related": child}, params={"fields": SHOWN})
    return [] if reply.status == 204 else (reply.body or {}).get("data") or []


def web(resource_path: str, books_id: str) -> str:
    config = get_runtime().config
    return f"{config.accounts_url}/app/{config.books_org_id}#/{resource_path}/{books_id}"


def writes(summary: dict) -> int:
    return sum(summary["counts"][s][k] for s in ("books", "crm")
               for k in ("created", "updated"))


def test_a_deal_at_the_quote_stage_shows_its_quote_on_the_deal_and_account(
        store, emu_reset, linked):
    configure(store, {**QUOTE_MODE, "item": linked["item"]})
    account = emu_reset.emu.crm.records("Accounts")[linked["account"]]
    deal_id = new_deal(account, stage=PROPOSAL)

    trigger(deal_id)  # the quote in Books, then its CRM quote, in the same run

    [estimate] = books_of(emu_reset, "estimates", deal_id)
    [quote] = related("Deals", deal_id, "Quotes")
    assert quote["Deal_Name"]["id"] == deal_id
    assert quote["Account_Name"]["id"] == linked["account"]
    assert (quote["Books_Id__c"], quote["Books_Number__c"], quote["Books_URL__c"]) == (
        estimate["estimate_id"], estimate["estimate_number"],
        web("quotes", estimate["estimate_id"]))
    assert Decimal(str(quote["Grand_Total"])) == estimate["total"] == Decimal("1250.50")
    assert quote["id"] in {q["id"] for q in related("Accounts", linked["account"], "Quotes")}

    # Reruns, and the echoes of both writes, write nothing twice.
    assert deal_writes(trigger(deal_id)) == 0
    assert writes(run("Quotes", quote["id"])) == 0
    assert writes(run_books("estimates", estimate["estimate_id"])) == 0
    assert len(related("Deals", deal_id, "Quotes")) == 1

    # Status and totals follow Books.
    books = get_runtime().books
    assert books.update("estimates", estimate["estimate_id"], {
        "line_items": [{"item_id": linked["item"], "quantity": 2, "rate": Decimal("700.25")}]
    }).ok
    assert books.mark("estimates", estimate["estimate_id"], "sent").ok
    assert run_books("estimates", estimate["estimate_id"])["counts"]["crm"]["updated"] == 1
    [quote] = related("Deals", deal_id, "Quotes")
    assert quote["Status"] == "Delivered"
    assert Decimal(str(quote["Grand_Total"])) == Decimal("1400.50")


def test_deals_link_shows_an_invoice_on_its_deal_and_unlink_takes_it_off(
        store, emu_reset, linked):
    account = emu_reset.emu.crm.records("Accounts")[linked["account"]]
    deal_id = new_deal(account)
    invoice = get_runtime().books.create("invoices", {
        "customer_id": linked["customer"],
        "line_items": [{"item_id": linked["item"], "quantity": 1, "rate": Decimal("80")}]}
    ).record
    assert run_books("invoices", invoice["invoice_id"])["counts"]["crm"]["created"] == 1
    assert related("Deals", deal_id, "Invoices") == []  # an invoice of the account only

    linked_now = CliRunner().invoke(app, ["deals", "link", deal_id, invoice["invoice_number"]])
    assert linked_now.exit_code == 0, linked_now.output
    assert "The CRM record shows it now." in linked_now.output
    [shown] = related("Deals", deal_id, "Invoices")
    assert (shown["Books_Id__c"], shown["Books_Number__c"], shown["Books_URL__c"]) == (
        invoice["invoice_id"], invoice["invoice_number"],
        web("invoices", invoice["invoice_id"]))
    assert writes(run_books("invoices", invoice["invoice_id"])) == 0

    gone = CliRunner().invoke(app, ["deals", "unlink", deal_id, invoice["invoice_id"]])
    assert gone.exit_code == 0, gone.output
    assert related("Deals", deal_id, "Invoices") == []
    # The invoice stays in the CRM, on its account: only the deal relation went.
    [kept] = related("Accounts", linked["account"], "Invoices")
    assert kept["id"] == shown["id"] and kept["Deal_Name"] is None


def test_an_item_for_the_trigger_line_that_is_not_a_books_item_is_refused_writing_nothing(
        store, emu_reset, linked):
    from crmbooks.settings import SettingsError

    configure(store, QUOTE_MODE)
    before = store.active_settings("deals")
    refused = CliRunner().invoke(app, ["configure", "deals", "--item", "Widget"])
    assert refused.exit_code == 2 and "item" in refused.output, refused.output
    assert "nothing was saved" in refused.output
    assert store.active_settings("deals") == before

    configure(store, {**QUOTE_MODE, "item": "999999999"})  # an id Books does not have
    account = emu_reset.emu.crm.records("Accounts")[linked["account"]]
    deal_id = new_deal(account, stage=PROPOSAL)
    with pytest.raises(SettingsError, match="Books has no item 999999999"):
        trigger(deal_id)
    assert books_of(emu_reset, "estimates", deal_id) == []
    assert related("Deals", deal_id, "Quotes") == []
