"""What every module of the one pipeline must do, shown for all five over the emulators:

* a dry run writes nothing (on either side, nor a link), yet plans what a sync would do;
* a second run right after a sync writes nothing;
* a crash between a remote write and the link that records it converges on the rerun: no
  record twice on either side, and the run after that writes nothing.

Customers, vendors and items sync seeded data; transactions sync a quote and a purchase order
made in the CRM for records the record modules linked; deal triggers make the quote of a deal
at the quote stage.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import httpx
import pytest

from crmbooks.connectors.zoho_books import BooksClient
from crmbooks.connectors.zoho_crm import CrmClient
from crmbooks.runtime import get_runtime, reset_runtime_cache
from crmbooks.store import Store
from crmbooks.sync.lifecycle import RecordsFailed
from crmbooks.sync.registry import MODULE_ORDER, document_types
from flows.customers import sync_customers
from flows.deal_triggers import sync_deal_triggers
from flows.items import sync_items
from flows.transactions import sync_transactions
from flows.vendors import sync_vendors
from support.customers import unpaced

FLOWS = {"customers": sync_customers, "vendors": sync_vendors, "items": sync_items,
         "transactions": sync_transactions, "deals": sync_deal_triggers}
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
PROPOSAL = "Proposal/Price Quote"


@pytest.fixture
def world(connected, emu_reset, monkeypatch):
    """Connected, Books unpaced; returns prepare(module) that readies a module's first run."""
    unpaced(monkeypatch)
    reset_runtime_cache()

    def prepare(module: str) -> None:
        if module in ("transactions", "deals"):
            for parties in (sync_customers, sync_vendors, sync_items):
                summary(parties(return_state=True))
        if module == "transactions":
            connected.save_settings("transactions", {"enabled": True,
                                                     "modules": list(document_types())})
            account, vendor, product = (_linked(connected, m) for m in
                                        ("customers", "vendors", "items"))
            line = [{"Product_Name": {"id": product}, "Quantity": 2,
                     "List_Price": Decimal("10.50")}]
            crm = get_runtime().crm
            for module_name, body in (
                    ("Quotes", {"Subject": "Conformance quote", "Account_Name": {"id": account},
                                "Quoted_Items": line}),
                    ("Purchase_Orders", {"Subject": "Conformance PO",
                                         "Vendor_Name": {"id": vendor}, "Purchase_Items": line})):
                [made] = crm.create(module_name, [body])
                assert made.ok, made
        if module == "deals":
            connected.save_settings("deals", {"enabled": True, "mode": "quote",
                                              "create_stage": PROPOSAL})
            account = _linked(connected, "customers", kind="accounts")
            [made] = get_runtime().crm.create("Deals", [{
                "Deal_Name": "Conformance deal", "Stage": PROPOSAL, "Amount": Decimal("990"),
                "Account_Name": {"id": account}}])
            assert made.ok, made
        emu_reset.emu.stats.clear()

    return prepare


def _linked(store, module: str, kind: str | None = None) -> str:
    links = store.links(module, kind)
    assert not links.empty, f"nothing linked in {module}"
    return str(sorted(links["crm_id"])[0])


def summary(state) -> dict:
    """A run's summary, whether all its records synced or some failed."""
    try:
        return state.result()
    except RecordsFailed as exc:
        return exc.summary


def writes(server) -> list[dict]:
    """Requests that changed data since the log was last cleared."""
    log = httpx.get(f"{server.base_url}/__emulator__/log", params={"limit": 5000}).json()
    return [r for r in log["requests"] if r["method"] in WRITE_METHODS and r["status"] < 400
            and not r["path"].startswith(("/oauth", "/__emulator__"))]


def written(result: dict) -> int:
    return sum(result["counts"][s][k] for s in ("books", "crm") for k in ("created", "updated"))


def link_count(store) -> int:
    return sum(len(store.links(m)) for m in MODULE_ORDER)


@pytest.mark.parametrize("module", MODULE_ORDER)
def test_a_dry_run_writes_nothing_but_plans(module, world, connected, emu_reset):
    world(module)
    links = link_count(connected)
    plan = summary(FLOWS[module](dry_run=True, return_state=True))
    assert writes(emu_reset) == []
    assert link_count(connected) == links
    assert written(plan) > 0, plan  # it does say what a sync would write


@pytest.mark.parametrize("module", MODULE_ORDER)
def test_a_second_run_writes_nothing(module, world, emu_reset):
    world(module)
    first = summary(FLOWS[module](return_state=True))
    assert written(first) > 0, first
    emu_reset.emu.stats.clear()
    second = summary(FLOWS[module](return_state=True))
    assert written(second) == 0, second
    assert writes(emu_reset) == []


class Killed(BaseException):
    """The process died between a remote write and the link that records it."""


@pytest.mark.parametrize("module", MODULE_ORDER)
def test_a_crash_between_a_write_and_its_link_converges(module, world, emu_reset):
    world(module)
    wrote = {"armed": False}
    originals = [(owner, name, getattr(owner, name)) for owner, names in (
        (BooksClient, ("upsert_by_custom_field", "update", "create", "create_contact_person",
                       "mark")),
        (CrmClient, ("upsert", "update", "create"))) for name in names]
    originals.append((Store, "upsert_link", Store.upsert_link))
    real_link = Store.upsert_link

    def dies_after_a_write(self, *args, **kwargs):
        if wrote["armed"]:
            raise Killed("killed between the write and its link")
        return real_link(self, *args, **kwargs)

    try:
        for owner, name, method in originals[:-1]:
            setattr(owner, name, _arming(method, wrote))
        Store.upsert_link = dies_after_a_write
        with pytest.raises(Killed):
            FLOWS[module]()
    finally:
        for owner, name, method in originals:
            setattr(owner, name, method)
    reset_runtime_cache()

    summary(FLOWS[module](return_state=True))  # the rerun
    assert_no_twice(emu_reset)
    emu_reset.emu.stats.clear()
    assert written(summary(FLOWS[module](return_state=True))) == 0
    assert writes(emu_reset) == []


def _arming(method, wrote: dict):
    def wrapped(*args, **kwargs):
        result = method(*args, **kwargs)
        results = result if isinstance(result, list) else [result]
        if any(getattr(r, "ok", False) for r in results):
            wrote["armed"] = True
        return result

    return wrapped


def assert_no_twice(server) -> None:
    """No CRM id twice among a Books resource's records, no Books id twice among a CRM
    module's records: nothing was created a second time."""
    org = server.emu.books.org()
    for resource, records in org.records.items():
        keys = Counter(_cf(r, "cf_crm_id") for r in records.values())
        keys.pop("", None)
        assert not [k for k, n in keys.items() if n > 1], f"Books {resource} twice: {keys}"
    for module in server.emu.crm.stores:
        keys = Counter(str(r.get("Books_Id__c") or "") for r in
                       server.emu.crm.records(module).values())
        keys.pop("", None)
        assert not [k for k, n in keys.items() if n > 1], f"CRM {module} twice: {keys}"


def _cf(record: dict, api_name: str) -> str:
    for field in record.get("custom_fields") or []:
        if isinstance(field, dict) and field.get("api_name") == api_name:
            return str(field.get("value") or "")
    return ""
