"""What `crmbooks disable` relies on, without the emulators: the store's marks of the CRM
records crmbooks created, their retirement with what is remembered of them, the plan that
creates a removed record again instead of updating it, and the removal in words."""

from __future__ import annotations

from decimal import Decimal

from crmbooks.disabling import Removal, plan
from crmbooks.sync.transactions_plan import map_to_crm, plan_to_crm

PRESENT = ["Subject", "Account_Name", "Deal_Name", "Status", "Quoted_Items", "Books_Id__c",
           "Books_Number__c", "Books_URL__c"]


def test_retiring_a_removed_record_drops_its_link_once_and_remembers_it(store):
    store.upsert_link("transactions", crm_id="5700001", books_id="4600001", kind="estimates",
                      crm_module="Quotes", crm_created=True)
    store.upsert_link("transactions", crm_id="5700002", books_id="4600002", kind="estimates",
                      crm_module="Quotes")  # a quote a CRM user made
    # a later update of the link keeps the mark
    store.upsert_link("transactions", crm_id="5700001", books_id="4600001",
                      books_values={"a": 1})
    assert store.created_in_crm("transactions") == [("Quotes", "5700001", "4600001")]
    assert store.made_in_crm("transactions") == [("Quotes", "5700002")]

    assert store.retire_removed("transactions", ["5700001"]) == 1
    assert store.retire_removed("transactions", ["5700001"]) == 0  # a rerun: already retired
    assert store.find_link("transactions", crm_id="5700001") is None
    assert store.removed_crm_ids("transactions") == {"5700001"}
    assert store.created_in_crm("transactions") == []

    store.upsert_link("transactions", crm_id="5700002", books_id="4600002", books_values={"x": 1},
                      books_modified="2026-01-01T00:00:00+0000")
    assert store.forget_shown("transactions", ["5700002"]) == 1
    link = store.find_link("transactions", crm_id="5700002")
    assert (link.books_values, link.books_modified) == (None, None)


def test_a_rewound_cursor_reads_from_the_start_again(store):
    from datetime import UTC, datetime

    store.advance_cursor("figures", "books", datetime(2026, 1, 1, tzinfo=UTC))
    assert store.rewind_cursor("figures", "books") is True
    assert store.cursor("figures", "books") is None
    assert store.rewind_cursor("figures", "books") is False


def test_a_books_record_naming_a_removed_crm_record_creates_it_again():
    record = {"estimate_id": "E1", "estimate_number": "EST-7", "status": "sent",
              "customer_id": "BA1", "total": Decimal("21.00"),
              "custom_fields": [{"api_name": "cf_crm_id", "value": "5700001"}],
              "line_items": [{"item_id": "I1", "name": "Widget", "quantity": Decimal(2),
                              "rate": Decimal("10.50"), "item_total": Decimal("21.00")}]}
    answer = map_to_crm(record, "estimates", parties={"BA1": {"Account_Name": {"id": "A1"}}},
                        items={"I1": "P1"}, picklist=None, present=set(PRESENT), maps=[])

    def planned(removed):
        [row] = plan_to_crm({"estimates": [record]}, {"estimates:E1": answer}, links={},
                            present={"Quotes": PRESENT}, accounts={},
                            written_in_books=set(), removed=removed)
        return row["action"], row["crm_id"]

    # Its link was lost: the CRM record it names is updated (it is there) ...
    assert planned(frozenset()) == ("update", "5700001")
    # ... unless `disable` removed it: then a create, by an upsert on the Books id.
    assert planned(frozenset({"5700001"})) == ("create", None)


def test_the_removal_is_said_in_words_from_the_store_alone(store):
    store.upsert_link("transactions", crm_id="5700001", books_id="4600001", kind="invoices",
                      crm_module="Invoices", crm_created=True)
    store.upsert_link("transactions", crm_id="5700002", books_id="4600002", kind="estimates",
                      crm_module="Quotes")
    store.upsert_link("customers", crm_id="A1", books_id="BA1", kind="accounts",
                      crm_module="Accounts")
    planned = plan(store)
    assert (planned.created, planned.shown, planned.deals, planned.customers) == (
        {"Invoices": 1}, {"Quotes": 1}, 0, 1)
    assert planned.sentences(planned=True) == [
        "1 Invoices record(s) crmbooks created from Books, deleted (with their deal "
        "relations)",
        "the Books id, number and web address on up to 1 Quotes record(s) made in the CRM "
        "(the records stay)",
        "the accounting figures on up to 1 CRM customer(s)"]
    assert Removal().empty() and Removal().sentences(planned=False) == []
