"""Deal triggers as pure functions (crmbooks.sync.triggers): stages, customers, plans."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crmbooks.sync.triggers import (
    DealContext,
    Existing,
    StageError,
    Stages,
    amount_of,
    books_body,
    deal_content,
    plan_deal,
    resolve_customer,
    upsert_key,
)

STAGES = Stages([
    ("Qualification", 10, "Open"), ("Proposal/Price Quote", 75, "Open"),
    ("Negotiation/Review", 90, "Open"), ("Signed", 100, "Closed Won"),
    ("Closed Lost", 0, "Closed Lost"), ("Parked", 0, "Open"), ("Certain", 100, "Open"),
])
LINKS = {"accounts": {"A1": "BA1"}, "contacts": {"C1": "BC1"}}


def ctx(mode="quote", **kw) -> DealContext:
    base = {"create_stage": "Proposal/Price Quote", "accept_stage": "Signed"} \
        if mode == "quote" else {}
    return DealContext(mode=mode, stages=STAGES, customer_links=LINKS,
                       currencies=frozenset({"USD", "EUR"}), base_currency="USD",
                       **{**base, **kw})


def deal(stage="Proposal/Price Quote", **kw) -> dict:
    return {"id": "D1", "Deal_Name": "Big deal", "Stage": stage, "Amount": Decimal("100.5"),
            "Account_Name": {"id": "A1", "name": "Acme"}, "Owner": {"id": "U", "name": "Ann"},
            "Description": "desc", **kw}


def ops(steps) -> list[tuple]:
    return [(s["action"], s["resource"], s["status"]) for s in steps]


def existing(resource="estimates", status="draft", last=None, content=None, **kw):
    content = content if content is not None else deal_content(deal(), "BA1", "USD")
    return Existing(resource, "E1", "EST-1", status, last or status, content, **kw)


# ------------------------------------------------------------------------------------ stages
def test_won_and_lost_need_probability_and_category_not_names():
    assert STAGES.get("Signed").outcome == "won"  # not called "Closed Won"
    assert STAGES.get("Closed Lost").outcome == "lost"
    assert STAGES.get("Parked").outcome == "open"  # 0 % but an open category
    assert STAGES.get("Certain").outcome == "open"  # 100 % but an open category
    assert Stages([("X", 100, None)]).get("X").outcome == "won"  # no category: probability
    with pytest.raises(StageError, match="Nope"):
        STAGES.require("Nope", "create_stage")


# ------------------------------------------------------------------------------- customers
def test_customer_comes_from_the_linked_account_or_contact_per_customer_module():
    assert resolve_customer(deal(), {"crm_module": "accounts"}, LINKS) == ("BA1", None)
    contact = deal(Account_Name=None, Contact_Name={"id": "C1", "name": "Bo"})
    assert resolve_customer(contact, {"crm_module": "contacts"}, LINKS) == ("BC1", None)
    assert resolve_customer(contact, {"crm_module": "accounts+contacts",
                                      "include_unassociated_contacts": True}, LINKS)[0] == "BC1"
    _, why = resolve_customer(contact, {"crm_module": "accounts"}, LINKS)
    assert "has no account" in why
    _, why = resolve_customer(deal(Contact_Name=None), {"crm_module": "contacts"}, LINKS)
    assert "has no contact" in why
    _, why = resolve_customer(deal(Account_Name={"id": "A9", "name": "Zed"}), {}, LINKS)
    assert "'Zed' (A9) is not linked" in why and "sync customers" in why


def test_amount_and_content():
    assert amount_of(deal()) == (Decimal("100.50"), None)
    assert "no Amount" in amount_of(deal(Amount=None))[1]
    assert "negative" in amount_of(deal(Amount=Decimal("-1")))[1]
    content = deal_content(deal(Deal_Name="x" * 150, Currency="EUR"), "BA1", "USD")
    assert content["item_name"] == "x" * 100 and content["currency_code"] == "EUR"
    assert content["rate"] == "100.50" and content["salesperson_name"] == "Ann"
    assert "currency_code" not in deal_content(deal(Currency="USD"), "BA1", "USD")
    body = books_body("D1", content)
    assert body["zcrm_potential_id"] == "D1" and body["line_items"][0]["quantity"] == 1
    assert upsert_key("D1", "estimates") == "D1:estimate"


# ---------------------------------------------------------------------------- quote mode
def test_quote_mode_walk():
    assert ops(plan_deal(deal("Qualification"), ctx(), {})) == [("nothing", None, None)]
    assert ops(plan_deal(deal(), ctx(), {})) == [("create", "estimates", "draft")]
    est = {"estimates": existing()}
    assert ops(plan_deal(deal(), ctx(), est)) == [("link", "estimates", None)]
    linked = deal(Books_Estimate_Id__c="E1")
    assert ops(plan_deal(linked, ctx(), est)) == [("nothing", "estimates", None)]
    changed = plan_deal(deal(Amount=Decimal(7), Books_Estimate_Id__c="E1"), ctx(), est)
    assert ops(changed) == [("update", "estimates", None)]
    assert "rate" in changed[0]["reason"]
    won = plan_deal(deal("Signed", Books_Estimate_Id__c="E1"), ctx(invoice_on_accept=True), est)
    assert ops(won) == [("mark", "estimates", "accepted"), ("create", "invoices", "draft")]
    assert won[1]["body"]["invoiced_estimate_id"] == "E1"
    straight = plan_deal(deal("Signed"), ctx(invoice_on_accept=True), {})
    assert ops(straight) == [("create", "estimates", "draft"), ("mark", "estimates",
                             "accepted"), ("create", "invoices", "draft")]


def test_quote_mode_lost_and_frozen():
    est = {"estimates": existing()}
    assert ops(plan_deal(deal("Closed Lost"), ctx(), est)) == [
        ("mark", "estimates", "declined")]
    assert ops(plan_deal(deal("Closed Lost"), ctx(), {})) == [("nothing", None, None)]
    declined = {"estimates": existing(status="declined")}
    assert ops(plan_deal(deal("Closed Lost"), ctx(), declined)) == [
        ("nothing", "estimates", None)]
    sent = {"estimates": existing(status="sent", last="draft")}
    for stage in ("Closed Lost", "Signed", "Negotiation/Review"):
        [step] = plan_deal(deal(stage), ctx(), sent)
        assert step["action"] == "skip" and "sent" in step["reason"]
    by_hand = {"estimates": existing(status="accepted", last="draft")}
    [step] = plan_deal(deal("Closed Lost"), ctx(), by_hand)
    assert step["action"] == "skip" and "not by the trigger" in step["reason"]
    accepted = {"estimates": existing(status="accepted"),
                "invoices": existing("invoices", status="draft")}
    assert ops(plan_deal(deal("Closed Lost"), ctx(), accepted)) == [
        ("mark", "estimates", "declined"), ("mark", "invoices", "void")]


# -------------------------------------------------------------------------- invoice mode
def test_invoice_mode_walk():
    assert ops(plan_deal(deal("Negotiation/Review"), ctx("invoice"), {})) == [
        ("nothing", "invoices", None)]
    assert ops(plan_deal(deal("Signed"), ctx("invoice"), {})) == [
        ("create", "invoices", "draft")]
    inv = {"invoices": existing("invoices")}
    assert ops(plan_deal(deal("Signed"), ctx("invoice"), inv)) == [
        ("nothing", "invoices", None)]
    assert ops(plan_deal(deal("Closed Lost"), ctx("invoice"), inv)) == [
        ("mark", "invoices", "void")]
    void = {"invoices": existing("invoices", status="void")}
    assert ops(plan_deal(deal("Signed"), ctx("invoice"), void)) == [
        ("mark", "invoices", "draft")]
    assert ops(plan_deal(deal("Parked"), ctx("invoice"), inv)) == [
        ("nothing", "invoices", None)]  # 0 % but not lost: nothing is voided


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("changes", "reason"), [
    ({"Account_Name": None}, "has no account"),
    ({"Amount": None}, "has no Amount"),
    ({"Amount": Decimal("-3")}, "negative"),
    ({"Stage": "Imaginary"}, "not a deal stage"),
    ({"Currency": "JPY"}, "JPY is not enabled"),
    ({"Deal_Name": " "}, "no Deal Name"),
])
def test_bad_deals_fail_with_a_reason(changes, reason):
    [step] = plan_deal(deal("Signed", **changes), ctx("invoice"), {})
    assert step["action"] == "fail" and reason in step["reason"]


def test_bad_deal_data_does_not_matter_once_nothing_is_written():
    # A lost deal with no amount still declines its quote: no content is needed for that.
    est = {"estimates": existing()}
    assert ops(plan_deal(deal("Closed Lost", Amount=None), ctx(), est)) == [
        ("mark", "estimates", "declined")]


def test_a_status_the_trigger_set_but_did_not_record_is_still_its_own():
    # Crash between "mark accepted" and storing it: the rerun must go on to the invoice.
    crashed = {"estimates": existing(status="accepted", last="draft", pending="accepted")}
    won = plan_deal(deal("Signed", Books_Estimate_Id__c="E1"), ctx(invoice_on_accept=True),
                    crashed)
    assert ops(won) == [("create", "invoices", "draft")]


def test_an_unlinked_account_is_named_for_a_customers_sync_first():
    [step] = plan_deal(deal("Signed", Account_Name={"id": "A9", "name": "Zed"}),
                       ctx("invoice"), {})
    assert step["action"] == "fail" and step["missing_customer"] == "A9"
    [step] = plan_deal(deal("Signed", Account_Name=None), ctx("invoice"), {})
    assert step["missing_customer"] is None  # nothing a customers sync could fix
