"""A new document type is configuration: credit notes, added in YAML alone (a
transactions.yaml in the folder CRMBOOKS_MAPPINGS_DIR names), sync both ways once the
emulators serve the resource — no line of crmbooks changes.

The emulator here is the test's own (a declared type stays on its emulator).
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from crmbooks.runtime import get_runtime, reset_runtime_cache
from crmbooks.sync.lifecycle import RecordsFailed
from crmbooks.sync.registry import document_types, reload
from emulators import EmulatorServer, Sizes
from flows.customers import sync_customers
from flows.items import sync_items
from flows.transactions import sync_transactions

CREDIT_NOTES = """
document_types:
  creditnotes:
    noun: credit note
    books:
      resource: creditnotes
      record_key: creditnote
      id_field: creditnote_id
      number_field: creditnote_number
      party: customer
      date_field: due_date
      status_actions: [open, void]
    crm:
      module: Credit_Notes
      subform: Credited_Items
      date_field: Due_Date
    deal: false
    status_to_crm: {draft: Draft, open: Open, void: Void}
    closed_statuses: [void]
    uneditable_statuses: [void]
"""
EMULATOR_TYPE = {"resource": "creditnotes", "label": "Credit Note", "party": "customer",
                 "number_prefix": "CN-", "statuses": ["draft", "open", "void"],
                 "date_field": "due_date", "crm_module": "Credit_Notes",
                 "crm_subform": "Credited_Items"}


@pytest.fixture
def credit_notes(monkeypatch, tmp_path):
    """Credit notes declared to crmbooks in YAML alone, and served by an emulator of its own;
    crmbooks connected to it."""
    from support.connect import connect_to
    from support.customers import unpaced

    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "transactions.yaml").write_text(CREDIT_NOTES, encoding="utf-8")
    monkeypatch.setenv("CRMBOOKS_MAPPINGS_DIR", str(folder))
    reload()
    with EmulatorServer() as server:
        server.emu.reset(seed=7, sizes=Sizes(accounts=3, contacts_per_account=1, vendors=1,
                                             products=2, deals=0, books_customers=1,
                                             books_vendors=0, books_items=1))
        server.emu.config.books_rate_limit = 100_000
        answer = httpx.post(f"{server.base_url}/__emulator__/document-types",
                            json=EMULATOR_TYPE)
        assert answer.status_code == 201, answer.text
        store = connect_to(server, monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'state.db'}")
        unpaced(monkeypatch)
        reset_runtime_cache()
        yield store, server
        reset_runtime_cache()
    monkeypatch.delenv("CRMBOOKS_MAPPINGS_DIR")
    reload()


def summary(state) -> dict:
    try:
        return state.result()
    except RecordsFailed as exc:
        return exc.summary


def test_a_document_type_added_in_yaml_syncs_both_ways(credit_notes):
    store, server = credit_notes
    assert "creditnotes" in document_types()
    summary(sync_customers(return_state=True))
    summary(sync_items(return_state=True))
    store.save_settings("transactions", {"enabled": True, "modules": ["creditnotes"]})
    account = str(sorted(store.links("customers", "accounts")["crm_id"])[0])
    product = str(sorted(store.links("items", "products")["crm_id"])[0])
    customer = str(store.find_link("customers", crm_id=account).books_id)
    item = str(store.find_link("items", crm_id=product).books_id)
    runtime = get_runtime()

    # CRM → Books: a credit note made in the CRM becomes a Books credit note, exactly once.
    [made] = runtime.crm.create("Credit_Notes", [{
        "Subject": "CN for returned goods", "Account_Name": {"id": account},
        "Credited_Items": [{"Product_Name": {"id": product}, "Quantity": 2,
                            "List_Price": Decimal("12.25")}]}])
    assert made.ok, made
    first = summary(sync_transactions(crm_module="Credit_Notes", crm_ids=[made.id],
                                      return_state=True))
    assert first["counts"]["books"]["created"] == 1, first
    notes = [n for n in server.emu.books.org().records["creditnotes"].values()
             if any(cf.get("value") == made.id for cf in n.get("custom_fields") or [])]
    assert len(notes) == 1
    [note] = notes
    assert note["customer_id"] == customer and Decimal(str(note["total"])) == Decimal("24.50")
    assert server.emu.crm.records("Credit_Notes")[made.id]["Books_Id__c"] == \
        note["creditnote_id"]

    # Books → CRM: one made in Books reaches the CRM once, its total to the cent.
    result = runtime.books.create("creditnotes", {
        "customer_id": customer, "reference_number": "Made in Books",
        "line_items": [{"item_id": item, "quantity": 3, "rate": Decimal("9.99")}]})
    assert result.ok, result
    back = summary(sync_transactions(books_resource="creditnotes", books_ids=[result.id],
                                     return_state=True))
    assert back["counts"]["crm"]["created"] == 1, back
    [crm_note] = [r for r in server.emu.crm.records("Credit_Notes").values()
                  if r.get("Books_Id__c") == result.id]
    assert Decimal(str(crm_note["Grand_Total"])) == Decimal("29.97")
    assert crm_note["Subject"] == "Made in Books"

    # Its status moves in Books: the CRM follows, through the declared status map.
    assert runtime.books.mark("creditnotes", result.id, "open").ok
    summary(sync_transactions(books_resource="creditnotes", books_ids=[result.id],
                              return_state=True))
    assert server.emu.crm.records("Credit_Notes")[crm_note["id"]]["Status"] == "Open"

    # The catch-up both ways then writes nothing.
    summary(sync_transactions(return_state=True))
    quiet = summary(sync_transactions(return_state=True))
    assert sum(quiet["counts"][s][k] for s in ("books", "crm")
               for k in ("created", "updated")) == 0, quiet
