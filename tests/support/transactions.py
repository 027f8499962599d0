"""Shared by the transactions tests (a conftest is not importable): a connected store with
transactions on, linked parties and products, and runs of the flow both ways.

Customers, vendors and items are linked the way their syncs link them (an upsert by cf_crm_id
plus a link row), which keeps these tests fast.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.runtime import get_runtime
from flows.transactions import sync_transactions

ALL = ["estimates", "salesorders", "invoices", "purchaseorders"]


def link(store, module: str, kind: str, crm_module: str, crm_id: str, resource: str,
         body: dict) -> str:
    """Link a CRM record to a new Books record as that module's sync would."""
    books = get_runtime().books
    result = books.upsert_by_custom_field(resource, "cf_crm_id", crm_id, body)
    assert result.ok, result
    store.upsert_link(module, crm_id=crm_id, books_id=result.id, kind=kind,
                      crm_module=crm_module, made_by="sync")
    return result.id


def crm_create(module: str, body: dict) -> str:
    [result] = get_runtime().crm.create(module, [body])
    assert result.ok, result
    return result.id


def _summary(state) -> dict:
    try:
        return state.result()
    except Exception as exc:
        if getattr(exc, "summary", None) is None:
            raise
        return exc.summary


def run(module: str | None = None, *ids: str, **kwargs) -> dict:
    """A CRM → Books run for these CRM ids (an event), or the catch-up both ways."""
    return _summary(sync_transactions(crm_module=module, crm_ids=list(ids) or None,
                                      return_state=True, **kwargs))


def run_books(resource: str, *ids: str, **kwargs) -> dict:
    """A Books → CRM run for these Books ids (a Books webhook)."""
    return _summary(sync_transactions(books_resource=resource, books_ids=list(ids),
                                      return_state=True, **kwargs))


def books_by_crm_id(server, resource: str, crm_id: str) -> list[dict]:
    org = server.emu.books.org()
    return [r for r in org.records.get(resource, {}).values()
            if any(cf.get("api_name") == "cf_crm_id" and cf.get("value") == crm_id
                   for cf in r.get("custom_fields", []))]


def crm_by_books_id(server, module: str, books_id: str) -> list[dict]:
    return [r for r in server.emu.crm.records(module).values()
            if r.get("Books_Id__c") == books_id]


@pytest.fixture
def linked(store, emu_reset):
    """One linked account, vendor and product; one unlinked product."""
    crm = emu_reset.emu.crm
    account = sorted(crm.records("Accounts").values(), key=lambda r: r["id"])[0]
    vendor = sorted(crm.records("Vendors").values(), key=lambda r: r["id"])[0]
    product, other = sorted(crm.records("Products").values(), key=lambda r: r["id"])[:2]
    ids = {
        "account": account["id"], "vendor": vendor["id"], "product": product["id"],
        "unlinked_product": other["id"], "unlinked_name": other["Product_Name"],
        "customer": link(store, "customers", "accounts", "Accounts", account["id"], "contacts",
                         {"contact_name": f"{account['Account_Name']} (t)",
                          "contact_type": "customer"}),
        "books_vendor": link(store, "vendors", "vendors", "Vendors", vendor["id"], "contacts",
                             {"contact_name": f"{vendor['Vendor_Name']} (t)",
                              "contact_type": "vendor"}),
        "item": link(store, "items", "products", "Products", product["id"], "items",
                     {"name": f"{product['Product_Name']} (t)", "rate": Decimal("1.00")}),
    }
    return ids


def lines(ids: dict, *products: str, quantity=2, price="10.50") -> list[dict]:
    return [{"Product_Name": {"id": p}, "Quantity": quantity, "List_Price": Decimal(price)}
            for p in products or (ids["product"],)]


def cli_json(*args: str) -> tuple[int, dict | str]:
    """`crmbooks ARGS --json`: the exit code and the printed JSON (or the text)."""
    result = CliRunner().invoke(app, [*args, "--json"])
    try:
        return result.exit_code, json.loads(result.output)
    except json.JSONDecodeError:
        return result.exit_code, result.output
