"""What a CRM transaction record shows of its Books record, as pure functions: its deal (from
the Books record, cleared when Books has none), its Books number and web address; the start
check of the CRM fields that hold them; a trigger's key is never taken for a CRM id."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crmbooks.settings import SettingsError, parse_module_settings
from crmbooks.sync.transactions_crm import books_web_base, crm_body, web_address
from crmbooks.sync.transactions_plan import map_to_crm, plan_to_crm
from tasks.documents.start import check_shown_fields

WEB = "https://books.zoho.eu/app/20099001"
PRESENT = {"Subject", "Account_Name", "Deal_Name", "Status", "Adjustment", "Quoted_Items",
           "Books_Id__c", "Books_Number__c", "Books_URL__c"}


def estimate(**kw) -> dict:
    return {"estimate_id": "E1", "estimate_number": "EST-7", "status": "draft",
            "customer_id": "BA1", "total": Decimal("21.00"),
            "line_items": [{"item_id": "I1", "name": "Widget", "quantity": Decimal(2),
                            "rate": Decimal("10.50"), "item_total": Decimal("21.00")}], **kw}


def crm(record: dict, present=PRESENT, resource="estimates") -> dict:
    body, why = crm_body(record, resource, party={"Account_Name": {"id": "A1"}},
                         items_back={"I1": "P1"}, picklist=None, present=set(present),
                         web_base=WEB)
    assert why is None
    return body


@pytest.mark.parametrize(("accounts", "web"), [
    ("https://accounts.zoho.eu", "https://books.zoho.eu/app/1"),
    ("https://accounts.zoho.com.au", "https://books.zoho.com.au/app/1"),
    ("https://accounts.zohocloud.ca/", "https://books.zohocloud.ca/app/1"),
    ("http://127.0.0.1:8900", "http://127.0.0.1:8900/app/1"),  # the emulators
])
def test_the_books_web_app_lives_beside_the_accounts_server_of_its_data_centre(accounts, web):
    assert books_web_base(accounts, "1") == web


def test_the_web_address_uses_the_books_app_names_of_each_type():
    assert web_address(WEB, "estimates", "E1") == f"{WEB}#/quotes/E1"
    assert web_address(WEB, "invoices", "I9") == f"{WEB}#/invoices/I9"
    assert web_address(WEB, "purchaseorders", "P2") == f"{WEB}#/purchaseorders/P2"


def test_a_books_transaction_shows_its_deal_number_and_web_address_in_the_crm():
    body = crm(estimate(zcrm_potential_id="D1", zcrm_potential_name="Big deal"))
    assert body["Deal_Name"] == {"id": "D1"}
    assert (body["Books_Number__c"], body["Books_URL__c"]) == ("EST-7", f"{WEB}#/quotes/E1")


def test_without_a_deal_in_books_the_crm_deal_is_cleared_and_absent_fields_are_not_sent():
    assert crm(estimate(zcrm_potential_id=""))["Deal_Name"] is None  # after `deals unlink`
    body = crm(estimate(zcrm_potential_id="D1"), present=PRESENT - {
        "Deal_Name", "Books_Number__c", "Books_URL__c"})
    assert not {"Deal_Name", "Books_Number__c", "Books_URL__c"} & set(body)


def test_a_purchase_order_carries_no_deal():
    order = {"purchaseorder_id": "P2", "purchaseorder_number": "PO-2", "status": "draft",
             "vendor_id": "BV", "total": Decimal("21.00"), "zcrm_potential_id": "D1",
             "line_items": estimate()["line_items"]}
    body, why = crm_body(order, "purchaseorders", party={"Vendor_Name": {"id": "V1"}},
                         items_back={"I1": "P1"}, picklist=None,
                         present={"Deal_Name", "Purchase_Items", "Books_URL__c"}, web_base=WEB)
    assert why is None and "Deal_Name" not in body
    assert body["Books_URL__c"] == f"{WEB}#/purchaseorders/P2"


def test_a_deal_triggers_key_is_not_a_crm_id_and_is_never_overwritten():
    record = estimate(zcrm_potential_id="D1",
                      custom_fields=[{"api_name": "cf_crm_id", "value": "D1:estimate"}])
    answer = map_to_crm(record, "estimates", parties={"BA1": {"Account_Name": {"id": "A1"}}},
                        items={"I1": "P1"}, picklist=None, present=PRESENT, maps=[],
                        web_base=WEB)
    [row] = plan_to_crm({"estimates": [record]}, {"estimates:E1": answer}, links={},
                        present={"Quotes": sorted(PRESENT)}, accounts={},
                        written_in_books=set())
    # a create by upsert on Books_Id__c (not an update of a record with id "D1:estimate"),
    # and the trigger's key stays in Books
    assert (row["action"], row["crm_id"], row["keep_cf"]) == ("create", None, True)
    assert row["body"]["Deal_Name"] == {"id": "D1"}


def meta(**changed) -> dict:
    fields = {"Books_Number__c": {"data_type": "text"},
              "Books_URL__c": {"data_type": "website"}}
    for name, value in changed.items():
        if value is None:
            fields.pop(name)
        else:
            fields[name] = value
    return {"Quotes": fields}


def test_the_crm_fields_for_the_books_number_and_address_are_checked_before_any_write():
    check_shown_fields(meta())  # as they should be: no error
    with pytest.raises(SettingsError, match="CRM Quotes have no field Books_URL__c: create a "
                                            "URL field 'Books URL'") as missing:
        check_shown_fields(meta(Books_URL__c=None))
    assert "nothing was written" in str(missing.value)
    with pytest.raises(SettingsError, match="Quotes.Books_Number__c is of type integer: it "
                                            "must be a single line"):
        check_shown_fields(meta(Books_Number__c={"data_type": "integer"}))
    with pytest.raises(SettingsError, match="Quotes.Books_URL__c is read-only"):
        check_shown_fields(meta(Books_URL__c={"data_type": "website", "read_only": True}))


def test_the_item_of_a_deal_triggers_line_must_be_a_books_id():
    assert parse_module_settings("deals", {"enabled": True, "mode": "invoice",
                                           "item": "460000000038080"}).item == "460000000038080"
    with pytest.raises(SettingsError, match="item"):
        parse_module_settings("deals", {"enabled": True, "mode": "invoice", "item": "Widget"})
