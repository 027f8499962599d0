"""The plan: scope fetch vs both, each duplicates policy, merges, contact persons, counts."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from crmbooks.settings import parse_module_settings
from crmbooks.sync.mapping import route_books, route_crm_contacts, to_books, to_crm
from crmbooks.sync.modules import CUSTOMERS, ITEMS
from crmbooks.sync.plan import (
    CLOSE_EVIDENCE,
    EXACT_EVIDENCE,
    PLAN_COLUMNS,
    plan_counts,
    plan_events,
    plan_kind,
    plan_module,
)
from mappings.schema import default_mapping

CUST = default_mapping("customers")
ACCOUNTS = CUSTOMERS.kind("accounts")
ITEMS_MAP = default_mapping("items")
PRODUCTS = ITEMS.kind("products")


def settings(module="customers", **kw):
    return parse_module_settings(module, kw)


def crm_accounts(*rows):
    frame = pd.DataFrame([{"id": i, "Account_Name": n, **kw} for i, n, kw in rows])
    return to_books(frame, CUST, ACCOUNTS, CUSTOMERS)[0]


def books_customers(*rows):
    frame = pd.DataFrame([{"contact_id": i, "contact_name": n, "contact_type": "customer",
                           "customer_sub_type": "business", **kw} for i, n, kw in rows])
    return to_crm(frame, CUST, ACCOUNTS, CUSTOMERS)[0]


def plan_accounts(s, crm=None, books=None, links=None, **kw):
    return plan_kind(CUSTOMERS, ACCOUNTS, s, CUST, crm=crm, books=books, links=links, **kw)


def by_key(plan):
    return {r["record_key"]: r for r in plan.to_dict("records")}


def link(crm_id, books_id, crm_values, books_values, kind="accounts"):
    return {"crm_id": crm_id, "books_id": books_id, "kind": kind, "crm_values": crm_values,
            "books_values": books_values, "parent_crm_id": None, "parent_books_id": None}


# ------------------------------------------------------------------------------- scope
def test_fetch_scope_creates_in_books_and_never_plans_towards_crm():
    plan = plan_accounts(settings(scope="fetch"),
                         crm=crm_accounts(("1", "Zylker", {})),
                         books=books_customers(("b9", "Only In Books", {})))
    assert list(plan.columns) == PLAN_COLUMNS
    rows = by_key(plan)
    assert list(rows) == ["crm/Accounts/1"]
    row = rows["crm/Accounts/1"]
    assert (row["action"], row["target"]) == ("create", "books")
    assert row["books_payload"]["custom_fields"] == [{"api_name": "cf_crm_id", "value": "1"}]


def test_both_scope_creates_each_side_and_crm_goes_first_for_customers():
    plan = plan_accounts(settings(), crm=crm_accounts(("1", "Zylker", {})),
                         books=books_customers(("b9", "Only In Books", {})))
    assert plan.record_key.tolist() == ["crm/Accounts/1", "books/contacts/b9"]
    books_row = by_key(plan)["books/contacts/b9"]
    assert (books_row["action"], books_row["target"]) == ("create", "crm")
    assert books_row["crm_payload"] == {"Account_Name": "Only In Books", "Books_Id__c": "b9"}


def test_items_push_books_first():
    crm = to_books(pd.DataFrame([{"id": "7", "Product_Name": "A", "Unit_Price": "1"}]),
                   ITEMS_MAP, PRODUCTS, ITEMS)[0]
    books = to_crm(pd.DataFrame([{"item_id": "i1", "name": "B", "rate": 2}]), ITEMS_MAP,
                   PRODUCTS, ITEMS)[0]
    plan = plan_kind(ITEMS, PRODUCTS, settings("items"), ITEMS_MAP, crm=crm, books=books)
    assert plan.record_key.tolist() == ["books/items/i1", "crm/Products/7"]


# -------------------------------------------------------------------------- duplicates
@pytest.mark.parametrize(("policy", "action", "target"), [
    ("skip", "skip", "none"), ("clone", "clone", "books"), ("overwrite", "overwrite", "books")])
def test_duplicates_policy_for_customers(policy, action, target):
    crm = crm_accounts(("1", "Acme Inc", {"Billing_City": "Austin"}))
    books = books_customers(("b2", "ACME  inc", {}))
    plan = plan_accounts(settings(duplicates=policy), crm=crm, books=books)
    # skip / overwrite settle the pair; clone keeps both on both sides (two-way)
    assert plan.action.tolist() == ([action] if policy != "clone" else [action, action])
    row = plan.iloc[0]
    assert (row.action, row.target) == (action, target)
    assert "Books already has 1 record(s) named 'Acme Inc'" in row.reason
    if policy == "overwrite":
        assert row.books_id == "b2"
        assert row.books_payload == {"contact_name": "Acme Inc", "company_name": "Acme Inc",
                                     "billing_address": {"city": "Austin"},
                                     "custom_fields": [{"api_name": "cf_crm_id",
                                                        "value": "1"}]}
        assert row.crm_values["Account_Name"] == "Acme Inc"
    if policy == "clone":
        # Books refuses a second customer of the same name: the copy takes the clone suffix
        # there, and the link keeps it as Books' value (no change to send back next run).
        assert row.books_id is None and row.books_payload["contact_name"] == "Acme Inc (2)"
        assert row.books_values["contact_name"] == "Acme Inc (2)"
        assert "named 'Acme Inc (2)' in Books" in row.reason
        assert plan.iloc[1].target == "crm" and plan.iloc[1].crm_payload["Books_Id__c"] == "b2"
        assert plan.iloc[1].crm_payload["Account_Name"] == "ACME  inc"  # the CRM takes it


def test_review_queues_exact_and_close_names_and_creates_nothing():
    crm = crm_accounts(("1", "Acme Inc", {}), ("2", "Zylker Ltd.", {}), ("3", "Fresh", {}))
    books = books_customers(("b2", "ＡＣＭＥ  inc ", {}), ("b3", "Zylker", {}))
    plan = plan_accounts(settings(duplicates="review"), crm=crm, books=books)
    rows = by_key(plan)
    assert list(rows) == ["crm/Accounts/1", "crm/Accounts/2", "crm/Accounts/3"]  # one per pair
    exact, close = rows["crm/Accounts/1"], rows["crm/Accounts/2"]
    assert (exact["action"], exact["books_payload"]) == ("skip", None)
    assert exact["review"] == {"side": "crm", "record_id": "1", "evidence": [EXACT_EVIDENCE],
                               "candidates": [{"id": "b2", "name": "ＡＣＭＥ  inc"}]}
    assert close["action"] == "skip" and close["review"]["evidence"] == [CLOSE_EVIDENCE]
    assert "waits for review" in close["reason"]
    assert rows["crm/Accounts/3"]["action"] == "create" and rows["crm/Accounts/3"]["review"] is None


def test_review_queues_a_likely_match_by_email_phone_or_website_domain():
    crm = crm_accounts(("1", "Initech", {"Website": "https://www.initech.com/about"}),
                       ("2", "Hooli", {"Phone": "+1 (555) 010-2030"}), ("3", "Fresh", {}))
    books = books_customers(("b1", "Initech Holdings Group", {"website": "initech.com"}),
                            ("b2", "Hooli XYZ", {"billing_address": {"phone": "555 010 2030"}}))
    rows = by_key(plan_accounts(settings(duplicates="review"), crm=crm, books=books))
    assert rows["crm/Accounts/1"]["review"]["evidence"] == ["same website domain"]
    assert rows["crm/Accounts/1"]["review"]["candidates"] == [
        {"id": "b1", "name": "Initech Holdings Group"}]
    assert rows["crm/Accounts/2"]["review"]["evidence"] == ["same phone number"]
    assert rows["crm/Accounts/3"]["action"] == "create"
    # Other policies keep doing what they did: a likely match is no duplicate by name.
    rows = by_key(plan_accounts(settings(duplicates="skip"), crm=crm, books=books))
    assert rows["crm/Accounts/1"]["action"] == "create"


def test_decisions_on_queued_records_skip_or_separate_them():
    crm = crm_accounts(("1", "Acme Inc", {}), ("2", "Zylker", {}))
    books = books_customers(("b2", "Acme Inc", {}), ("b3", "Zylker", {}))
    decided = {"crm/Accounts/1": ("skip", None), "crm/Accounts/2": ("separate", None)}
    plan = plan_accounts(settings(duplicates="review", clone_suffix="[copy]"), crm=crm,
                         books=books, decisions=decided)
    rows = by_key(plan)
    assert rows["crm/Accounts/1"]["action"] == "skip"
    assert "left out by decision" in rows["crm/Accounts/1"]["reason"]
    separate = rows["crm/Accounts/2"]
    assert (separate["action"], separate["target"]) == ("clone", "books")
    assert separate["books_payload"]["contact_name"] == "Zylker [copy]"


def test_first_sync_of_a_pair_made_by_hand_stamps_both_ids():
    crm = crm_accounts(("1", "Acme Inc", {}))
    books = books_customers(("b2", "Acme Inc", {}))
    plan = plan_accounts(settings(), crm=crm, books=books, links=pd.DataFrame(
        [link("1", "b2", {}, {})]))
    [row] = plan.to_dict("records")
    assert (row["action"], row["target"]) == ("update", "both")
    assert row["crm_payload"] == {"id": "1", "Books_Id__c": "b2"}
    assert row["books_payload"]["custom_fields"] == [{"api_name": "cf_crm_id", "value": "1"}]


def test_books_display_name_that_exists_is_skipped_by_default_not_crashed():
    crm = crm_accounts(("1", "Zylker", {}), ("2", "Fresh", {}))
    index = pd.DataFrame([{"id": "b5", "kind": "accounts", "name": "zylker", "ref_id": None,
                           "parent_id": None}])
    plan = plan_accounts(settings(scope="fetch"), crm=crm, books_index=index)
    assert plan.action.tolist() == ["skip", "create"]


def test_overwrite_for_items_in_two_way_mode_lets_books_win():
    crm = to_books(pd.DataFrame([{"id": "7", "Product_Name": "Widget", "Unit_Price": "1"}]),
                   ITEMS_MAP, PRODUCTS, ITEMS)[0]
    books = to_crm(pd.DataFrame([{"item_id": "i1", "name": "widget", "rate": 2.5}]),
                   ITEMS_MAP, PRODUCTS, ITEMS)[0]
    plan = plan_kind(ITEMS, PRODUCTS, settings("items", duplicates="overwrite"), ITEMS_MAP,
                     crm=crm, books=books)
    assert len(plan) == 1
    row = plan.iloc[0]
    assert (row.action, row.target, row.crm_id, row.books_id) == ("overwrite", "crm", "7", "i1")
    assert row.crm_payload == {"id": "7", "Product_Name": "widget",
                               "Unit_Price": Decimal("2.50"), "Books_Id__c": "i1"}


def test_overwrite_never_steals_a_record_linked_elsewhere():
    links = pd.DataFrame([link("9", "b2", {"Account_Name": "Acme"},
                               {"contact_name": "Acme"})])
    index = pd.DataFrame([{"id": "b2", "kind": "accounts", "name": "Acme", "ref_id": None,
                           "parent_id": None}])
    plan = plan_accounts(settings(duplicates="overwrite", scope="fetch"),
                         crm=crm_accounts(("1", "Acme", {})), links=links, books_index=index)
    assert plan.iloc[0].action == "skip" and "already linked" in plan.iloc[0].reason


# ------------------------------------------------------------------------------ merges
BASE_CRM = {"Account_Name": "Zylker", "Billing_City": "Austin", "Description": "old"}
BASE_BOOKS = {"contact_name": "Zylker", "company_name": "Zylker",
              "billing_address.city": "Austin", "notes": "old"}


def linked_plan(crm_kw, books_kw, scope="both"):
    links = pd.DataFrame([link("1", "b1", BASE_CRM, BASE_BOOKS)])
    crm = crm_accounts(("1", "Zylker", {"Billing_City": "Austin", "Description": "old",
                                        **crm_kw}))
    books = books_customers(("b1", "Zylker", {"company_name": "Zylker", "notes": "old",
                                              "billing_address": {"city": "Austin"},
                                              **books_kw}))
    return plan_accounts(settings(scope=scope), crm=crm, books=books, links=links).iloc[0]


def test_linked_and_unchanged_is_nothing():
    row = linked_plan({}, {})
    assert (row.action, row.target) == ("nothing", "none")


def test_linked_different_fields_merge_to_both_sides():
    row = linked_plan({"Billing_City": "Dallas"}, {"notes": "new"})
    assert (row.action, row.target) == ("update", "both")
    assert row.books_payload == {"billing_address": {"city": "Dallas"}}
    assert row.crm_payload == {"id": "1", "Description": "new"}


def test_linked_same_field_changed_on_both_is_a_conflict_won_by_crm():
    row = linked_plan({"Description": "crm"}, {"notes": "books"})
    assert row.action == "conflict-merge" and row.target == "books"
    assert row.conflicts == [{"field": "notes", "crm": "crm", "books": "books",
                              "winner": "crm"}]
    assert row.books_payload == {"notes": "crm"}


def test_cleared_field_is_sent_as_empty_string_to_books():
    row = linked_plan({"Description": None}, {})
    assert row.books_payload == {"notes": ""}


def test_only_books_fetched_uses_the_link_as_crm_current_values():
    links = pd.DataFrame([link("1", "b1", BASE_CRM, BASE_BOOKS)])
    books = books_customers(("b1", "Zylker", {"notes": "new", "company_name": "Zylker",
                                              "billing_address": {"city": "Austin"}}))
    row = plan_accounts(settings(), books=books, links=links).iloc[0]
    assert row.crm_payload == {"id": "1", "Description": "new"}


def test_stored_id_recovers_a_lost_link_without_a_second_create():
    # Crash after Books created the customer, before the link was stored (exactly-once).
    crm = crm_accounts(("1", "Zylker", {}))
    books = books_customers(("b1", "Zylker", {"company_name": "Zylker",
                                              "custom_fields": [{"api_name": "cf_crm_id",
                                                                 "value": "1"}]}))
    plan = plan_accounts(settings(), crm=crm, books=books)
    assert len(plan) == 1
    row = plan.iloc[0]
    assert (row.action, row.match, row.crm_id, row.books_id) == ("nothing", "ref", "1", "b1")


def test_replaying_a_plan_after_its_links_are_stored_plans_nothing():
    crm = crm_accounts(("1", "Zylker", {"Billing_City": "Austin"}))
    first = plan_accounts(settings(scope="fetch"), crm=crm)
    assert first.iloc[0].action == "create"
    stored = first.assign(books_id="b1")[["crm_id", "books_id", "kind", "crm_values",
                                           "books_values"]]
    again = plan_accounts(settings(scope="fetch"), crm=crm, links=stored)
    assert again.iloc[0].action == "nothing"


# ---------------------------------------------------------------------- module + persons
def test_accounts_and_contacts_plan_with_inline_persons_and_failures():
    s = settings(crm_module="accounts+contacts", include_unassociated_contacts=True)
    accounts = pd.DataFrame([{"id": "1", "Account_Name": "New Co"},
                             {"id": "2", "Account_Name": "Old Co"}])
    contacts = pd.DataFrame([
        {"id": "9", "First_Name": "Ann", "Last_Name": "Lee", "Account_Name": {"id": "1"}},
        {"id": "10", "First_Name": "Cy", "Last_Name": "Oh", "Account_Name": {"id": "2"}},
        {"id": "11", "First_Name": "Solo", "Last_Name": "Person", "Account_Name": None},
        {"id": "12", "First_Name": "No", "Last_Name": None, "Account_Name": {"id": "1"}}])
    routed = route_crm_contacts(contacts, s)
    acc, f1 = to_books(accounts, CUST, ACCOUNTS, CUSTOMERS)
    per, f2 = to_books(routed["contact_persons"], CUST, CUSTOMERS.kind("contact_persons"),
                       CUSTOMERS)
    ind, f3 = to_books(routed["contacts"], CUST, CUSTOMERS.kind("contacts"), CUSTOMERS)
    links = pd.DataFrame([link("2", "b2", {"Account_Name": "Old Co"},
                               {"contact_name": "Old Co"})])
    plan = plan_module(CUSTOMERS, s, CUST, crm={"accounts": acc, "contact_persons": per,
                                                 "contacts": ind},
                       books={}, links=links, failures=pd.concat([f1, f2, f3]))
    rows = by_key(plan)
    assert rows["crm/Accounts/1"]["action"] == "create"
    assert rows["crm/Accounts/1"]["books_payload"]["contact_persons"] == [
        {"first_name": "Ann", "last_name": "Lee"}]
    assert rows["crm/Contacts/9"]["inline"] is True
    person = rows["crm/Contacts/10"]
    assert (person["action"], person["parent_books_id"]) == ("create", "b2")
    assert rows["crm/Contacts/11"]["kind"] == "contacts"
    assert rows["crm/Contacts/12"]["action"] == "fail"
    assert "Last_Name is empty" in rows["crm/Contacts/12"]["reason"]
    counts = plan_counts(plan)
    assert counts["books"]["created"] == 4 and counts["books"]["failed"] == 1


@pytest.mark.parametrize(("scope", "kind"), [("fetch", "unsynced"), ("both", "contacts")])
def test_books_individuals_go_to_contacts_two_way_even_when_only_accounts_are(scope, kind):
    books = pd.DataFrame([{"contact_id": "b7", "contact_name": "Ann Lee",
                           "contact_type": "customer", "customer_sub_type": "individual"}])
    routed = route_books(CUSTOMERS, settings(scope=scope), books)
    assert routed[kind].contact_id.tolist() == ["b7"] and routed["accounts"].empty


def test_counts_and_events_of_a_dry_run():
    row = linked_plan({"Description": "crm"}, {"notes": "books"})
    plan = pd.DataFrame([row])
    assert plan_counts(plan)["books"]["conflicts"] == 1
    events = plan_events(plan)
    assert events == [{"side": "books", "record_key": "crm/Accounts/1", "crm_id": "1",
                       "books_id": "b1", "name": "Zylker", "action": "conflict",
                       "message": row.reason,
                       "changes": [{"side": "books", "field": "notes", "before": "books",
                                    "after": "crm"}],
                       "conflicts": row.conflicts}]


def test_plan_then_store_links_then_replan_is_idempotent(tmp_path):
    from crmbooks.store import Store, make_engine
    from crmbooks.sync.plan import link_fields

    store = Store(make_engine(f"sqlite:///{tmp_path / 's.db'}"), org_id="1")
    s = settings()
    crm = crm_accounts(("1", "Zylker", {"Billing_City": "Austin"}))
    books = books_customers(("b9", "Books Only", {}))
    first = plan_accounts(s, crm=crm, books=books, links=store.links("customers"))
    for row in first.to_dict("records"):  # pretend every push succeeded
        ids = {"books_id": "b1"} if row["target"] == "books" else {"crm_id": "c9"}
        store.upsert_link("customers", **link_fields(CUSTOMERS, row, **ids))
    books_after = books_customers(("b9", "Books Only", {}),
                                  ("b1", "Zylker", {"company_name": "Zylker",
                                                    "billing_address": {"city": "Austin"}}))
    again = plan_accounts(s, crm=crm, books=books_after, links=store.links("customers"))
    assert again.action.tolist() == ["nothing", "nothing"]


def test_contact_persons_pair_by_name_within_their_parent():
    persons_kind = CUSTOMERS.kind("contact_persons")
    s = settings(crm_module="accounts+contacts")
    crm = to_books(pd.DataFrame([{"id": "9", "First_Name": "Ann", "Last_Name": "Lee",
                                  "Email": "ann@x.com", "Account_Name": {"id": "1"}}]),
                   CUST, persons_kind, CUSTOMERS)[0]
    books = to_crm(pd.DataFrame([
        {"contact_person_id": "p1", "first_name": "Ann", "last_name": "Lee",
         "parent_books_id": "b1"},
        {"contact_person_id": "p2", "first_name": "Ann", "last_name": "Lee",
         "parent_books_id": "b2"}]), CUST, persons_kind, CUSTOMERS)[0]
    plan = plan_kind(CUSTOMERS, persons_kind, s, CUST, crm=crm, books=books,
                     parents={"1": "b1", "2": "b2"})
    first = plan.iloc[0]
    assert (first.action, first.books_id, first.parent_books_id) == ("update", "p1", "b1")
    assert first.books_payload == {"email": "ann@x.com"}
    other = plan.iloc[1]  # Ann Lee of the other account is someone else
    assert (other.record_key, other.action, other.target) == ("books/contact_persons/p2",
                                                              "create", "crm")
    assert other.crm_payload["Account_Name"] == {"id": "2"}


@pytest.mark.parametrize(("policy", "second"), [
    ("skip", "skip"), ("overwrite", "skip"), ("review", "skip"), ("clone", "clone")])
def test_names_differing_only_by_case_spaces_or_form_make_one_books_customer(policy, second):
    crm = crm_accounts(("1", "Foo Bar", {}), ("2", "FOO  bar ", {}), ("3", "Ｆｏｏ Bar", {}))
    rows = list(by_key(plan_accounts(settings(scope="fetch", duplicates=policy),
                                     crm=crm)).values())
    assert [r["action"] for r in rows] == ["create", second, second]
    if policy == "clone":  # each copy gets a name of its own
        assert [r["books_payload"]["contact_name"] for r in rows] == [
            "Foo Bar", "FOO  bar (2)", "Ｆｏｏ Bar (3)"]
    else:
        assert all("same name as crm/Accounts/1" in r["reason"] for r in rows[1:])
    if policy == "review":
        assert rows[1]["review"]["candidates"] == []
