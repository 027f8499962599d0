"""A new document type is configuration: retainer invoices, added in YAML alone (a
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

RETAINER_INVOICES = """
document_types:
  retainerinvoices:
    noun: retainer invoice
    books:
      resource: retainerinvoices
      record_key: retainerinvoice
      id_field: retainerinvoice_id
      number_field: retainerinvoice_number
      party: customer
      date_field: due_date
      status_actions: [open, void]
    crm:
      module: Retainer_Invoices
      subform: Retainer_Items
      date_field: Due_Date
    deal: false
    status_to_crm: {draft: Draft, open: Open, void: Void}
    closed_statuses: [void]
    uneditable_statuses: [void]
"""
EMULATOR_TYPE = {"resource": "retainerinvoices", "label": "Retainer Invoice", "party": "customer",
                 "number_prefix": "RET-", "statuses": ["draft", "open", "void"],
                 "date_field": "due_date", "crm_module": "Retainer_Invoices",
                 "crm_subform": "Retainer_Items"}


@pytest.fixture
def retainer_invoices(monkeypatch, tmp_path):
    """Retainer invoices declared to crmbooks in YAML alone, and served by an emulator of its own;
    crmbooks connected to it."""
    from support.connect import connect_to
    from support.customers import unpaced

    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "transactions.yaml").write_text(RETAINER_INVOICES, encoding="utf-8")
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


def test_a_document_type_added_in_yaml_syncs_both_ways(retainer_invoices):
    store, server = retainer_invoices
    assert "retainerinvoices" in document_types()
    summary(sync_customers(return_state=True))
    summary(sync_items(return_state=True))
    store.save_settings("transactions", {"enabled": True, "modules": ["retainerinvoices"]})
    account = str(sorted(store.links("customers", "accounts")["crm_id"])[0])
    product = str(sorted(store.links("items", "products")["crm_id"])[0])
    customer = str(store.find_link("customers", crm_id=account).books_id)
    item = str(store.find_link("items", crm_id=product).books_id)
    runtime = get_runtime()

    # CRM → Books: a retainer invoice made in the CRM becomes a Books retainer invoice,
    # exactly once.
    [made] = runtime.crm.create("Retainer_Invoices", [{
        "Subject": "CN for returned goods", "Account_Name": {"id": account},
        "Retainer_Items": [{"Product_Name": {"id": product}, "Quantity": 2,
                            "List_Price": Decimal("12.25")}]}])
    assert made.ok, made
    first = summary(sync_transactions(crm_module="Retainer_Invoices", crm_ids=[made.id],
                                      return_state=True))
    assert first["counts"]["books"]["created"] == 1, first
    notes = [n for n in server.emu.books.org().records["retainerinvoices"].values()
             if any(cf.get("value") == made.id for cf in n.get("custom_fields") or [])]
    assert len(notes) == 1
    [note] = notes
    assert note["customer_id"] == customer and Decimal(str(note["total"])) == Decimal("24.50")
    assert server.emu.crm.records("Retainer_Invoices")[made.id]["Books_Id__c"] == \
        note["retainerinvoice_id"]

    # Books → CRM: one made in Books reaches the CRM once, its total to the cent.
    result = runtime.books.create("retainerinvoices", {
        "customer_id": customer, "reference_number": "Made in Books",
        "line_items": [{"item_id": item, "quantity": 3, "rate": Decimal("9.99")}]})
    assert result.ok, result
    back = summary(sync_transactions(books_resource="retainerinvoices", books_ids=[result.id],
                                     return_state=True))
    assert back["counts"]["crm"]["created"] == 1, back
    [crm_note] = [r for r in server.emu.crm.records("Retainer_Invoices").values()
                  if r.get("Books_Id__c") == result.id]
    assert Decimal(str(crm_note["Grand_Total"])) == Decimal("29.97")
    assert crm_note["Subject"] == "Made in Books"

    # Its status moves in Books: the CRM follows, through the declared status map.
    assert runtime.books.mark("retainerinvoices", result.id, "open").ok
    summary(sync_transactions(books_resource="retainerinvoices", books_ids=[result.id],
                              return_state=True))
    assert server.emu.crm.records("Retainer_Invoices")[crm_note["id"]]["Status"] == "Open"

    # The catch-up both ways then writes nothing.
    summary(sync_transactions(return_state=True))
    quiet = summary(sync_transactions(return_state=True))
    assert sum(quiet["counts"][s][k] for s in ("books", "crm")
               for k in ("created", "updated")) == 0, quiet
