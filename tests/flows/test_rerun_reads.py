"""A rerun after a run that stopped mid-push reads again only what changed since.

A run that dies before its report (killed, or a step that failed) leaves its cursors where
they were, so the rerun lists the same records again. The full Books contacts the stopped run
had read one by one are kept in the state database with their stamps: the rerun reads in full
only the contacts whose stamp or listed values changed since, and syncs those changes.

The stop is a CRM upsert that raises, after the Books writes: the run fails before its report,
which leaves the state database as a kill there would (tests/flows/test_crash.py kills runs
for real and checks that reruns converge).
"""

from __future__ import annotations

import pytest

from crmbooks.connectors.zoho_crm import CrmClient
from flows.customers import sync_customers
from support.customers import books_customers, books_put, clear_stats, request_log

pytestmark = pytest.mark.books_customers(12)
DETAIL = "/books/v3/contacts/"  # GET /books/v3/contacts/{id}: one contact in full


def detail_reads(server) -> list[str]:
    """The Books contacts read in full, one request each, since the counters were cleared."""
    return sorted(r["path"].removeprefix(DETAIL) for r in request_log(server)
                  if r["method"] == "GET" and r["path"].startswith(DETAIL)
                  and "/" not in r["path"].removeprefix(DETAIL))


def stop_at_crm_upsert(monkeypatch) -> list[bool]:
    """Make CRM upserts raise while the returned flag holds True."""
    original, stopping = CrmClient.upsert, [True]

    def upsert(self, *args, **kwargs):
        if stopping[0]:
            raise RuntimeError("stopped before the CRM upsert")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CrmClient, "upsert", upsert)
    return stopping


def test_the_rerun_reads_in_full_only_the_contact_changed_since(
        store, emu_reset, books_http, monkeypatch):
    emu = emu_reset.emu
    # Business customers no CRM account is named like: the rerun creates their CRM twins.
    accounts = {r["Account_Name"] for r in emu.crm.records("Accounts").values()}
    new = {i for i, r in books_customers(emu_reset, "business").items()
           if not r.get("zcrm_account_id") and r["contact_name"] not in accounts}
    stopping = stop_at_crm_upsert(monkeypatch)
    clear_stats(emu_reset)
    assert sync_customers(return_state=True).is_failed()
    read_first = detail_reads(emu_reset)
    assert new <= set(read_first)
    assert store.cursor("customers", "books") is None  # the stopped run moved no cursor
    stopping[0] = False

    # One contact the stopped run had read changes in Books, in a later second.
    emu.advance_clock(2)
    edited = sorted(set(read_first) & new)[0]
    books_put(books_http, emu_reset, edited, {"website": "https://changed.example.com"})
    clear_stats(emu_reset)
    state = sync_customers(return_state=True)
    assert state.is_completed(), state.message
    assert detail_reads(emu_reset) == [edited]
    twin = store.find_link("customers", books_id=edited)
    assert emu.crm.records("Accounts")[twin.crm_id]["Website"] == "https://changed.example.com"
    # the cursor moved past them: nothing is kept any more
    assert store.kept_records("customers", "books", read_first) == {}
