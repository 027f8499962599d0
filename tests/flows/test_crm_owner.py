"""Records crmbooks creates in the CRM are owned by the user chosen at `connect --crm-owner`
(by default the connecting user), and a new choice applies to records created afterwards."""

from __future__ import annotations

from decimal import Decimal

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.runtime import get_runtime
from support.customers import sync
from support.transactions import ALL, crm_by_books_id, run_books

pytestmark = pytest.mark.settings(transactions={"enabled": True, "modules": ALL})


def _connect(server, owner: str) -> None:
    config = server.emu.config
    result = CliRunner().invoke(app, [
        "connect", "--api-url", server.base_url, "--accounts-url", server.base_url,
        "--client-id", config.client_id, "--books-org", config.books_org_ids[0],
        "--crm-owner", owner])
    assert result.exit_code == 0, result.output


def _pushed(server, resource: str, ids: dict, rate: str) -> dict:
    """A transaction made in Books, then its Books → CRM run (a Books webhook): the CRM
    record it created."""
    made = get_runtime().books.create(resource, {
        "customer_id": ids["customer"],
        "line_items": [{"item_id": ids["item"], "quantity": 1, "rate": Decimal(rate)}]})
    assert made.ok, made
    books_id = made.record[f"{resource[:-1]}_id"]
    summary = run_books(resource, books_id)
    assert summary["counts"]["crm"]["created"] == 1, summary
    [record] = crm_by_books_id(server, {"invoices": "Invoices", "estimates": "Quotes"}[resource],
                               books_id)
    return record


def test_records_created_in_the_crm_are_owned_by_the_chosen_user(store, emu_reset, linked):
    crm = emu_reset.emu.crm
    me = crm.directory.current_user_id
    kenji, amelia = sorted((u for u in crm.directory.users.values()
                            if u["status"] == "active" and u["id"] != me),
                           key=lambda u: u["id"])
    # By default the connecting user owns them (no Owner sent: Zoho's own default).
    invoice = _pushed(emu_reset, "invoices", linked, "120")
    assert invoice["Owner"] == me

    _connect(emu_reset, kenji["email"])
    owners = {i: a["Owner"] for i, a in crm.records("Accounts").items()}
    state, run = sync(store, scope="both", duplicates="clone")
    assert run.counts["crm"]["created"] >= 1, run.counts
    created = {i: a for i, a in crm.records("Accounts").items() if i not in owners}
    assert created and {a["Owner"] for a in created.values()} == {kenji["id"]}
    assert {i: crm.records("Accounts")[i]["Owner"] for i in owners} == owners  # not updates

    _connect(emu_reset, amelia["email"])  # applies to what is created from now on
    quote = _pushed(emu_reset, "estimates", linked, "80")
    assert quote["Owner"] == amelia["id"]
    assert crm.records("Invoices")[invoice["id"]]["Owner"] == me
    assert {crm.records("Accounts")[i]["Owner"] for i in created} == {kenji["id"]}
