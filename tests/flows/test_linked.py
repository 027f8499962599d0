"""The customers and vendors linked to the CRM, in the store and in Books' own filter.

After a two-way sync every linked Books contact carries Zoho's link field (zcrm_account_id,
zcrm_contact_id, zcrm_vendor_id), so Books' `filter_by=Status.Crm` lists exactly what
`crmbooks linked` lists, plus the contacts Zoho's own integration had linked before.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.reporting import linked_rows
from flows.customers import sync_customers
from flows.vendors import sync_vendors
from support.customers import clear_stats, unpaced, writes

LINK_FIELD = {"Accounts": "zcrm_account_id", "Contacts": "zcrm_contact_id",
              "Vendors": "zcrm_vendor_id"}


def crm_filtered(books_http, org: str, contact_type: str) -> dict[str, dict]:
    """Books' own "CRM" filter: the contacts of one type that Books says are linked."""
    out, page = {}, 1
    while True:
        answer = books_http.get("/books/v3/contacts", params={
            "organization_id": org, "filter_by": "Status.Crm", "contact_type": contact_type,
            "page": page, "per_page": 200}).json()
        out.update({c["contact_id"]: c for c in answer["contacts"]})
        if not answer["page_context"]["has_more_page"]:
            return out
        page += 1


def test_linked_matches_books_crm_filter_after_a_sync(connected, emu_reset, books_http,
                                                      monkeypatch):
    unpaced(monkeypatch)
    store, org = connected, emu_reset.emu.config.books_org_ids[0]
    before = {t: set(crm_filtered(books_http, org, t)) for t in ("customer", "vendor")}
    store.save_settings("customers", {"crm_module": "accounts+contacts",
                                      "include_unassociated_contacts": True})
    assert sync_customers(return_state=True).is_completed()
    assert sync_vendors(return_state=True).is_completed()

    runner = CliRunner()
    for what, contact_type in (("customers", "customer"), ("vendors", "vendor")):
        result = runner.invoke(app, ["linked", what, "--json"])
        assert result.exit_code == 0, result.output
        listed = json.loads(result.output)[what]
        assert listed == linked_rows(store, what) and listed
        assert {r["linked_by"] for r in listed} == {"sync"}
        filtered = crm_filtered(books_http, org, contact_type)
        # Books' filter = what we linked + what Zoho's own integration had linked before.
        assert set(filtered) == {r["books_id"] for r in listed} | before[contact_type]
        stored = emu_reset.emu.books.org(org).records["contacts"]  # the full records
        for r in listed:
            assert stored[r["books_id"]][LINK_FIELD[r["crm_module"]]] == r["crm_id"]
    kinds = {r["crm_module"] for r in linked_rows(store, "customers")}
    assert kinds == {"Accounts", "Contacts"}  # both link fields are exercised

    # Marking the Books records linked is remembered as our own write: nothing is re-synced.
    clear_stats(emu_reset)
    assert sync_customers(return_state=True).is_completed()
    assert sync_vendors(return_state=True).is_completed()
    assert writes(emu_reset) == []


def test_linked_refuses_an_unknown_kind_and_org(connected):
    runner = CliRunner()
    assert runner.invoke(app, ["linked", "items"]).exit_code == 2
    result = runner.invoke(app, ["linked", "customers", "--org", "123"])
    assert result.exit_code == 2 and "not connected" in result.output
    result = runner.invoke(app, ["linked", "vendors"])
    assert result.exit_code == 0 and "vendors linked to the CRM" in result.output
