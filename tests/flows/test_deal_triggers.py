"""End to end: deal triggers and manual deal links; the event receiver that
starts them is tested in test_receiver.py.

Deals are walked through their stages with the CRM API; Books is read straight from the
emulator's state. The customers a deal needs are linked the way the customers sync links them
(an upsert by cf_crm_id plus a link row), which keeps these tests fast.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from crmbooks.runtime import get_runtime
from flows.deal_triggers import sync_deal_triggers
from support.customers import writes
from support.deals import (
    INVOICE_MODE,
    LOST,
    NEGOTIATION,
    PROPOSAL,
    QUOTE_MODE,
    WON,
    accounts,
    books_of,
    configure,
    deal,
    events,
    link_account,
    move,
    new_deal,
    trigger,
    written,
)


# ------------------------------------------------------------------------------ quote mode
def test_quote_created_at_proposal_accepted_and_invoiced_when_won(store, emu_reset):
    configure(store, QUOTE_MODE)
    account = accounts(emu_reset)[0]
    customer = link_account(store, account)
    deal_id = new_deal(account)
    assert written(trigger(deal_id)) == 0  # qualification: before the quote stage
    assert books_of(emu_reset, "estimates", deal_id) == []

    move(deal_id, Stage=PROPOSAL)
    trigger(deal_id)
    [quote] = books_of(emu_reset, "estimates", deal_id)
    assert quote["status"] == "draft" and quote["customer_id"] == customer
    [line] = quote["line_items"]
    assert (line["name"], line["description"], line["rate"]) == (
        "Rollout of 40 seats", "Forty seats, one year", Decimal("1250.50"))
    assert deal(emu_reset, deal_id)["Books_Estimate_Id__c"] == quote["estimate_id"]
    link = store.find_link("deals", books_id=quote["estimate_id"])
    assert link.made_by == "trigger" and link.parent_crm_id == deal_id
    # The salesperson is sent as salesperson_name (the emulator accepts it but keeps no copy).
    owner = get_runtime().crm.get_record("Deals", deal_id, ["Owner"])["Owner"]
    assert link.books_values["content"]["salesperson_name"] == owner["name"]

    move(deal_id, Amount=Decimal("1400.00"), Stage=NEGOTIATION)  # a draft follows the deal
    trigger(deal_id)
    [quote] = books_of(emu_reset, "estimates", deal_id)
    assert quote["line_items"][0]["rate"] == Decimal("1400.00")

    move(deal_id, Stage=WON)
    summary = trigger(deal_id)
    [quote] = books_of(emu_reset, "estimates", deal_id)
    [invoice] = books_of(emu_reset, "invoices", deal_id)
    assert quote["status"] == "accepted"
    assert invoice["status"] == "draft" and invoice["invoiced_estimate_id"] == quote[
        "estimate_id"]
    assert invoice["total"] == Decimal("1400.00")
    actions = {(e["action"], e["side"]) for e in events(store, summary["run_id"])}
    assert actions == {("updated", "books"), ("created", "books")}

    # Replayed, duplicated events and the catch-up find nothing left to do.
    for ids in ([deal_id, deal_id], []):
        assert written(trigger(*ids)) == 0
    assert len(books_of(emu_reset, "estimates", deal_id)) == 1
    assert len(books_of(emu_reset, "invoices", deal_id)) == 1


def test_lost_deal_declines_its_quote_and_a_lost_deal_without_quote_makes_none(store, emu_reset):
    configure(store, QUOTE_MODE)
    account = accounts(emu_reset)[1]
    link_account(store, account)
    never, quoted = new_deal(account), new_deal(account, PROPOSAL, name="Second deal")
    trigger(never, quoted)
    move(never, Stage=LOST)
    move(quoted, Stage=LOST)
    summary = trigger(quoted, never)
    assert books_of(emu_reset, "estimates", never) == []
    [quote] = books_of(emu_reset, "estimates", quoted)
    assert quote["status"] == "declined"
    [event] = events(store, summary["run_id"])
    assert event["changes"] == [{"field": "status", "before": "draft", "after": "declined"}]
    assert written(trigger(quoted)) == 0


def test_a_sent_quote_is_left_alone_and_the_skip_says_why(store, emu_reset):
    configure(store, QUOTE_MODE)
    account = accounts(emu_reset)[2]
    link_account(store, account)
    deal_id = new_deal(account, PROPOSAL)
    trigger(deal_id)
    [quote] = books_of(emu_reset, "estimates", deal_id)
    assert get_runtime().books.mark("estimates", quote["estimate_id"], "sent").ok
    move(deal_id, Stage=LOST, Amount=Decimal("9.99"))
    summary = trigger(deal_id)
    [quote] = books_of(emu_reset, "estimates", deal_id)
    assert quote["status"] == "sent" and quote["line_items"][0]["rate"] == Decimal("1250.50")
    [event] = events(store, summary["run_id"])
    assert event["action"] == "skipped" and "sent" in event["message"]
    assert summary["counts"]["books"]["skipped"] == 1


# ---------------------------------------------------------------------------- invoice mode
def test_invoice_mode_won_invoices_lost_voids_and_replays_change_nothing(store, emu_reset):
    configure(store, INVOICE_MODE)
    account = accounts(emu_reset)[3]
    link_account(store, account)
    deal_id = new_deal(account, PROPOSAL)
    trigger(deal_id)
    assert books_of(emu_reset, "invoices", deal_id) == []
    move(deal_id, Stage=WON)
    trigger(deal_id)
    [invoice] = books_of(emu_reset, "invoices", deal_id)
    assert invoice["status"] == "draft" and invoice["total"] == Decimal("1250.50")
    assert books_of(emu_reset, "estimates", deal_id) == []
    move(deal_id, Stage=LOST)
    trigger(deal_id)
    [invoice] = books_of(emu_reset, "invoices", deal_id)
    assert invoice["status"] == "void"
    assert written(trigger(deal_id, deal_id)) == 0
    move(deal_id, Stage=WON)  # won again: the voided invoice comes back as a draft
    trigger(deal_id)
    [invoice] = books_of(emu_reset, "invoices", deal_id)
    assert invoice["status"] == "draft"


def test_a_crash_between_the_books_write_and_its_link_makes_no_second_quote(
        store, emu_reset, monkeypatch):
    import tasks.deals.push

    configure(store, QUOTE_MODE)
    account = accounts(emu_reset)[11]
    link_account(store, account)
    deal_id = new_deal(account, WON)
    real = tasks.deals.push.save_link

    def crash(*args, **kwargs):
        raise SystemExit("killed right after Books answered")

    monkeypatch.setattr(tasks.deals.push, "save_link", crash)
    with pytest.raises(SystemExit):
        sync_deal_triggers(deal_ids=[deal_id])
    assert store.list_runs("deals", limit=1)[0].state == "failed"  # the history row is closed
    assert len(books_of(emu_reset, "estimates", deal_id)) == 1  # written, not linked
    monkeypatch.setattr(tasks.deals.push, "save_link", real)
    trigger(deal_id)  # the rerun's upsert finds the quote by its key
    [quote] = books_of(emu_reset, "estimates", deal_id)
    assert quote["status"] == "accepted"
    assert len(books_of(emu_reset, "invoices", deal_id)) == 1
    assert store.find_link("deals", books_id=quote["estimate_id"]).made_by == "trigger"


# ------------------------------------------------------------------------------- bad input
def books_customer_names(server) -> set[str]:
    org = server.emu.books.org()
    return {c["contact_name"] for c in org.records["contacts"].values()}


def test_deals_that_cannot_trigger_are_failures_with_reasons(store, emu_reset):
    configure(store, INVOICE_MODE)
    taken = books_customer_names(emu_reset)
    linked = accounts(emu_reset)[4]
    link_account(store, linked)
    unlinked = next(a for a in accounts(emu_reset)[5:] if a["Account_Name"] not in taken)
    # Named like a Books customer: the customers sync skips it (duplicates: skip).
    clash = next(a for a in accounts(emu_reset) if a["Account_Name"] in taken)
    no_account = new_deal(None, WON, name="No account")
    no_amount = new_deal(linked, WON, name="No amount", Amount=None)
    negative = new_deal(linked, WON, name="Negative", Amount=Decimal("-5"))
    not_linked = new_deal(unlinked, WON, name="Unlinked")
    blocked = new_deal(clash, WON, name="Blocked")
    fine = new_deal(linked, WON, name="Fine")
    summary = trigger(no_account, no_amount, negative, not_linked, blocked, fine)
    assert summary["state"] == "completed_with_failures"
    failures = {f["crm_id"]: f["message"] for f in
                store.failures(module="deals").to_dict("records")}
    assert "has no account" in failures[no_account]
    assert "has no Amount" in failures[no_amount]
    assert "negative" in failures[negative]
    assert clash["Account_Name"] in failures[blocked] and "sync customers" in failures[blocked]
    # An account not linked yet is synced first (a targeted customers run), then invoiced.
    assert not_linked not in failures and len(books_of(emu_reset, "invoices", not_linked)) == 1
    assert store.find_link("customers", crm_id=unlinked["id"]) is not None
    assert fine not in failures and len(books_of(emu_reset, "invoices", fine)) == 1
    for bad in (no_account, no_amount, negative, blocked):
        assert books_of(emu_reset, "invoices", bad) == []

    link_account(store, clash)  # fixed at the source: the next run goes through
    trigger(blocked)
    assert len(books_of(emu_reset, "invoices", blocked)) == 1
    assert blocked not in set(store.failures(module="deals")["crm_id"])


def test_crmbooks_retry_reruns_only_the_failed_deals_and_resolves_the_fixed_one(store,
                                                                                 emu_reset):
    import json

    from typer.testing import CliRunner

    from crmbooks.app.cli import app

    configure(store, INVOICE_MODE)
    account = accounts(emu_reset)[4]
    link_account(store, account)
    fine = new_deal(account, WON, name="Fine")
    no_account = new_deal(None, WON, name="No account yet")
    no_amount = new_deal(account, WON, name="No amount", Amount=None)
    summary = trigger(fine, no_account, no_amount)
    assert summary["counts"]["books"]["failed"] == 2
    assert set(store.failures(module="deals")["record_key"]) == {
        f"deal:{no_account}", f"deal:{no_amount}"}

    emu_reset.emu.stats.clear()
    move(no_account, Account_Name={"id": account["id"]})  # fixed at the source
    result = CliRunner().invoke(app, ["retry", "--module", "deals", "--json"])

    assert result.exit_code == 1, result.output  # the deal without an amount still fails
    [again] = json.loads(result.output)["runs"]
    assert again["module"] == "deals" and again["counts"]["books"]["created"] == 1
    assert [f["record"] for f in again["failures"]] == [f"deal:{no_amount}"]
    assert len(books_of(emu_reset, "invoices", no_account)) == 1
    assert len(books_of(emu_reset, "invoices", fine)) == 1  # not made again
    [still] = store.failures(module="deals").to_dict("records")
    assert still["crm_id"] == no_amount and still["attempts"] == 2
    assert "has no Amount" in still["message"]
    # Written: the fix itself, then only the fixed deal's invoice (an upsert by deal id).
    assert [(w["method"], w["path"]) for w in writes(emu_reset)] == [
        ("PUT", "/crm/v8/Deals"), ("PUT", "/books/v3/invoices")]


def test_a_currency_books_does_not_have_is_refused(store, emu_reset):
    emu = emu_reset.emu
    emu.config.crm_multi_currency = True
    try:
        from crmbooks.metadata import clear_cache

        clear_cache(get_runtime())
        configure(store, INVOICE_MODE)
        account = accounts(emu_reset)[6]
        link_account(store, account)
        yen = new_deal(account, WON, name="Yen deal", Currency="JPY")
        euro = new_deal(account, WON, name="Euro deal", Currency="EUR")
        trigger(yen, euro)
        failures = {f["crm_id"]: f["message"] for f in
                    store.failures(module="deals").to_dict("records")}
        assert "JPY is not enabled" in failures[yen]
        assert books_of(emu_reset, "invoices", yen) == []
        [invoice] = books_of(emu_reset, "invoices", euro)
        assert invoice["currency_code"] == "EUR"
    finally:
        emu.config.crm_multi_currency = False


def test_dry_run_plans_without_writing(store, emu_reset):
    configure(store, QUOTE_MODE)
    account = accounts(emu_reset)[7]
    link_account(store, account)
    deal_id = new_deal(account, WON)
    summary = trigger(deal_id, dry_run=True)
    assert books_of(emu_reset, "estimates", deal_id) == []
    assert summary["counts"]["books"]["created"] == 2  # the quote and its invoice
    assert {e["action"] for e in events(store, summary["run_id"])} == {"created", "updated"}


# ---------------------------------------------------------------------------------- catch-up
def test_catch_up_run_handles_deals_changed_since_the_cursor_only(store, emu_reset):
    configure(store, INVOICE_MODE)
    account = accounts(emu_reset)[8]
    link_account(store, account)
    seeded_won = [d for d in emu_reset.emu.crm.records("Deals").values()
                  if d["Stage"] == WON]
    assert seeded_won  # deals won before triggers existed are not invoiced by catch-up
    time.sleep(1.05)  # CRM stamps are whole seconds
    deal_id = new_deal(account, WON)
    summary = trigger()
    [invoice] = books_of(emu_reset, "invoices", deal_id)
    assert summary["deals"] == 1
    for old in seeded_won:
        assert books_of(emu_reset, "invoices", old["id"]) == []
    assert store.cursor("deals", "crm") is not None
    again = trigger()
    assert written(again) == 0
    assert invoice["status"] == "draft"


# ------------------------------------------------------------------------- linking by hand
def test_link_and_unlink_deals_by_hand_but_not_trigger_links(store, emu_reset):
    from typer.testing import CliRunner

    from crmbooks.app.cli import app

    runner = CliRunner()
    configure(store, QUOTE_MODE)
    account = accounts(emu_reset)[9]
    customer = link_account(store, account)
    deal_id = new_deal(account, PROPOSAL)

    def cli(*args):
        return runner.invoke(app, list(args))

    result = cli("deals", "trigger", deal_id, "--json")
    assert result.exit_code == 0, result.output
    report = __import__("json").loads(result.output)
    assert report["module"] == "deals" and report["counts"]["books"]["created"] == 1
    [quote] = books_of(emu_reset, "estimates", deal_id)
    books = get_runtime().books
    line = [{"name": "Support", "rate": Decimal("10.00"), "quantity": 1}]
    order = books.create("salesorders", {"customer_id": customer, "line_items": line}).record
    invoice = books.create("invoices", {"customer_id": customer, "line_items": line}).record

    result = cli("deals", "link", deal_id, order["salesorder_number"])
    assert result.exit_code == 0, result.output
    result = cli("deals", "link", deal_id, invoice["invoice_id"])
    assert result.exit_code == 0, result.output
    assert [o["zcrm_potential_id"] for o in (books.get("salesorders", order["salesorder_id"]),
                                             books.get("invoices", invoice["invoice_id"]))] \
        == [deal_id, deal_id]
    result = cli("deals", "links", deal_id, "--json")
    made_by = {(r["type"], r["made_by"]) for r in
               __import__("json").loads(result.output)["links"]}
    assert made_by == {("quote", "trigger"), ("sales order", "manual"), ("invoice", "manual")}

    result = cli("deals", "unlink", deal_id, quote["estimate_number"])
    assert result.exit_code == 2 and "made by a deal trigger" in result.output
    assert books.get("estimates", quote["estimate_id"])["zcrm_potential_id"] == deal_id
    other = new_deal(account, name="Other deal")
    result = cli("deals", "link", other, quote["estimate_id"])
    assert result.exit_code == 2 and "made by a deal trigger" in result.output

    result = cli("deals", "unlink", deal_id, order["salesorder_number"], "--type", "salesorder")
    assert result.exit_code == 0, result.output
    assert books.get("salesorders", order["salesorder_id"])["zcrm_potential_id"] == ""
    assert store.find_link("deals", books_id=order["salesorder_id"]) is None
    result = cli("deals", "unlink", deal_id, order["salesorder_number"])
    assert result.exit_code == 2 and "not linked" in result.output
    result = cli("deals", "link", deal_id, "NOPE-1")
    assert result.exit_code == 2 and "NOPE-1" in result.output
    result = cli("deals", "link", "123", invoice["invoice_id"])
    assert result.exit_code == 2 and "no deal" in result.output


def test_disable_removes_the_transaction_data_on_the_crm_side_and_leaves_books(
        store, emu_reset):
    """Disabling takes the Books quote off the deal; Books keeps it; syncs refuse; enabling
    shows it on the deal again."""
    from typer.testing import CliRunner

    from crmbooks.app.cli import app

    configure(store, QUOTE_MODE)
    account = accounts(emu_reset)[0]
    link_account(store, account)
    deal_id = new_deal(account, stage=PROPOSAL)
    trigger(deal_id)
    [quote] = books_of(emu_reset, "estimates", deal_id)
    assert deal(emu_reset, deal_id)["Books_Estimate_Id__c"] == quote["estimate_id"]

    result = CliRunner().invoke(app, ["disable", "--yes"])

    assert result.exit_code == 0, result.output
    assert not deal(emu_reset, deal_id).get("Books_Estimate_Id__c")
    assert [q["estimate_id"] for q in books_of(emu_reset, "estimates", deal_id)] == [
        quote["estimate_id"]]  # Books untouched
    refused = CliRunner().invoke(app, ["sync", "customers"])
    assert refused.exit_code == 3, refused.output
    assert CliRunner().invoke(app, ["enable"]).exit_code == 0
    trigger()  # the catch-up reads the deal the clearing changed and shows its quote again
    assert deal(emu_reset, deal_id)["Books_Estimate_Id__c"] == quote["estimate_id"]
    assert len(books_of(emu_reset, "estimates", deal_id)) == 1  # and makes no second one
