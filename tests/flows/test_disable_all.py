"""End to end: `crmbooks disable` removes from the CRM what crmbooks put there for
transactions and figures — the transaction records it created (and so their deal relations),
the Books data on records a CRM user made, the deal's quote, the customers' figures — and
nothing else (a user-made quote stays, Books is untouched); `crmbooks enable` and the next
runs bring each back once; a crash between a CRM delete and the retirement of its link
deletes and creates nothing twice. Everything read back through the emulators."""

from __future__ import annotations

from decimal import Decimal

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.runtime import get_runtime
from crmbooks.store import Store
from crmbooks.sync import figures as fig
from flows.customers import sync_customers
from support.customers import clear_stats, sync, writes
from support.deals import new_deal
from support.transactions import ALL, crm_by_books_id, crm_create, lines, run, run_books

pytestmark = pytest.mark.settings(transactions={"enabled": True, "modules": ALL})

MODULES = ("Quotes", "Sales_Orders", "Invoices", "Purchase_Orders")


def cli(*args: str, answer: str | None = None):
    """`crmbooks ARGS`, with ``answer`` typed at the question (None: no input at all)."""
    return CliRunner().invoke(app, list(args), input=answer)


def books_state(server) -> dict:
    """Every Books transaction with its modified stamp: what "Books untouched" compares."""
    org = server.emu.books.org()
    return {resource: {i: r.get("last_modified_time") for i, r in
                       org.records.get(resource, {}).items()}
            for resource in ("estimates", "salesorders", "invoices", "purchaseorders")}


def crm_shown(server) -> dict[str, set[str]]:
    """{CRM module: Books ids shown on its records}."""
    return {m: {str(r["Books_Id__c"]) for r in server.emu.crm.records(m).values()
                if r.get("Books_Id__c")} for m in MODULES}


def on_deal(deal_id: str) -> list[dict]:
    """The deal's related quotes, as the CRM serves them (GET /Deals/{id}/Quotes)."""
    reply = get_runtime().crm.http.request(
        "GET", "/crm/v8/Deals/{id}/Quotes", path={"id": deal_id},
        params={"fields": "Subject,Books_Id__c"})
    return [] if reply.status == 204 else (reply.body or {}).get("data") or []


def figures_of(record: dict) -> dict:
    return {f: record.get(f) for f in fig.FIELDS}


def test_disable_removes_only_what_crmbooks_made_and_enable_brings_it_back_once(
        store, emu_reset, linked):
    crm, books = emu_reset.emu.crm, get_runtime().books
    # A world synced before: the customers and the seeded CRM transactions were read, so the
    # runs here read what the test makes (and, after `enable`, what `disable` rewound).
    now = emu_reset.emu.now()
    for side in ("crm", "books"):
        store.advance_cursor("customers", side, now)
    for module in MODULES:
        store.advance_cursor(f"transactions:{module}", "crm", now)
    account = crm.records("Accounts")[linked["account"]]
    deal_id = new_deal(account)
    line = [{"item_id": linked["item"], "quantity": 1, "rate": Decimal("80")}]
    estimate = books.create("estimates", {"customer_id": linked["customer"],
                                          "zcrm_potential_id": deal_id, "line_items": line}
                            ).record
    invoice = books.create("invoices", {"customer_id": linked["customer"],
                                        "line_items": line}).record
    assert books.mark("invoices", invoice["invoice_id"], "sent").ok
    own = crm_create("Quotes", {"Subject": "Made by a salesperson",
                                "Account_Name": {"id": linked["account"]},
                                "Quoted_Items": lines(linked)})
    run()  # the catch-up both ways: the Books records to the CRM, the salesperson's to Books
    sync_customers(figures_of=[linked["customer"]], return_state=True)
    figures = figures_of(account)
    assert figures["Books_Outstanding__c"] and figures["Books_Currency__c"]
    made: dict[str, set[str]] = {}
    for module, crm_id, _books_id in store.created_in_crm("transactions"):
        made.setdefault(module, set()).add(crm_id)
    assert set(made) == {"Quotes", "Invoices"} and own not in made["Quotes"]
    shown, books_before = crm_shown(emu_reset), books_state(emu_reset)
    [quote] = on_deal(deal_id)
    assert quote["Books_Id__c"] == estimate["estimate_id"]
    own_books_id = crm.records("Quotes")[own]["Books_Id__c"]
    assert own_books_id

    # Declined, or no answer (a script without --yes): nothing removed, still enabled.
    clear_stats(emu_reset)
    declined = cli("disable", answer="n\n")
    assert declined.exit_code == 0, declined.output
    total = sum(len(ids) for ids in made.values())
    assert f"{len(made['Quotes'])} Quotes" in declined.output
    assert "Nothing removed; crmbooks stays enabled." in declined.output
    silent = cli("disable")
    assert silent.exit_code == 2 and "pass --yes" in silent.output, silent.output
    assert not store.connection().disabled and writes(emu_reset, "crm") == []

    done = cli("disable", answer="y\n")

    assert done.exit_code == 0, done.output
    assert store.connection().disabled
    for module, ids in made.items():
        assert not ids & set(crm.records(module)), module  # every one crmbooks made is gone
    kept = crm.records("Quotes")[own]  # the salesperson's quote stays, without Books' data
    assert (kept.get("Books_Id__c"), kept.get("Books_Number__c"), kept.get("Books_URL__c")) \
        == (None, None, None)
    assert all(v in (None, "") for v in figures_of(account).values())
    assert on_deal(deal_id) == []
    assert books_state(emu_reset) == books_before  # Books untouched
    deletes = [w for w in writes(emu_reset, "crm") if w["method"] == "DELETE"]
    assert len(deletes) == len(made)  # one call per module (up to 100 records each)
    assert not store.created_in_crm("transactions")

    clear_stats(emu_reset)
    again = cli("disable", "--yes")  # a rerun finds nothing left to write
    assert again.exit_code == 0, again.output
    assert writes(emu_reset, "crm") == []
    assert cli("sync", "customers").exit_code == 3

    enabled = cli("enable")
    assert enabled.exit_code == 0, enabled.output
    sync(store)
    run()

    assert crm_shown(emu_reset) == shown  # each Books record shown again, on one record
    for module, ids in shown.items():
        for books_id in ids:
            assert len(crm_by_books_id(emu_reset, module, books_id)) == 1, (module, books_id)
    [back] = on_deal(deal_id)
    assert back["Books_Id__c"] == quote["Books_Id__c"] and back["id"] != quote["id"]
    assert crm.records("Quotes")[own]["Books_Id__c"] == own_books_id
    assert figures_of(account) == figures
    assert len(store.created_in_crm("transactions")) == total

    clear_stats(emu_reset)
    sync(store)
    run()
    assert writes(emu_reset) == []  # a rerun writes nothing, on either side


class Crash(Exception):
    """The process dies between a CRM delete and the retirement of its link."""


def test_a_crash_between_the_delete_and_its_link_deletes_and_creates_nothing_twice(
        store, emu_reset, linked, monkeypatch):
    crm = emu_reset.emu.crm
    books = get_runtime().books
    invoice = books.create("invoices", {
        "customer_id": linked["customer"],
        "line_items": [{"item_id": linked["item"], "quantity": 2, "rate": Decimal("12.50")}]}
    ).record
    books_id = invoice["invoice_id"]
    assert run_books("invoices", books_id)["counts"]["crm"]["created"] == 1
    [(_module, crm_id, _b)] = store.created_in_crm("transactions")

    def crash(self, module, crm_ids):
        raise Crash("killed")

    with monkeypatch.context() as patched:
        patched.setattr(Store, "retire_removed", crash)
        crashed = cli("disable", "--yes")
    assert crashed.exit_code != 0
    assert crm_id not in crm.records("Invoices")  # deleted, but its link is still there
    assert store.find_link("transactions", crm_id=crm_id) is not None

    refused = cli("enable")  # an unfinished disable: enabling now would lose the record
    assert refused.exit_code == 2 and "disable --yes" in refused.output, refused.output
    assert store.connection().disabled

    clear_stats(emu_reset)
    rerun = cli("disable", "--yes")
    assert rerun.exit_code == 0, rerun.output
    assert store.find_link("transactions", crm_id=crm_id) is None
    assert [d["id"] for d in crm.stores["Invoices"].deleted].count(crm_id) == 1  # once

    assert cli("enable").exit_code == 0
    assert run_books("invoices", books_id)["counts"]["crm"]["created"] == 1
    [again] = crm_by_books_id(emu_reset, "Invoices", books_id)
    assert again["id"] != crm_id
    clear_stats(emu_reset)
    assert run_books("invoices", books_id)["counts"]["crm"]["created"] == 0
    assert writes(emu_reset) == []
