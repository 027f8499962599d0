"""Hostile records and settings (tests/corpus/hostile.yaml) each give a clear failure
row or a configuration error before any write — never a crash — and lose nothing.

Record cases of one module are put on a freshly seeded emulator together (through each side's
API, then, for `raw` values, straight into its stored record: what a misconfigured custom
field really returns) and synced in one run. Then each case has its expected outcome: synced
(linked), or a failure row of its own naming the field; no other record failed, every hostile
record is still on its side, and every other record synced (linked, or skipped as a duplicate
by the settings). Settings and emulator cases run one by one: the run fails with a message
naming the problem, records it in the history, and writes nothing.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from flows.customers import sync_customers
from flows.items import sync_items
from flows.vendors import sync_vendors
from support.crash import applied_writes, crm_record_name
from support.customers import clear_stats, unpaced
from support.vendors_items import books_create

CORPUS = yaml.safe_load((Path(__file__).parents[1] / "corpus" / "hostile.yaml").read_text())
FLOWS = {"customers": sync_customers, "vendors": sync_vendors, "items": sync_items}
SETTINGS = {"customers": {"crm_module": "accounts+contacts",
                          "include_unassociated_contacts": True},
            "vendors": {}, "items": {}}
CRM_MODULES = {"customers": ("Accounts", "Contacts"), "vendors": ("Vendors",),
               "items": ("Products",)}
RECORD_SIDES = ("crm", "books")


def _groups() -> list:
    """One parameter per module for the record cases, one per settings/emulator case."""
    params = []
    for module in FLOWS:
        cases = [c for c in CORPUS if c["module"] == module
                 and c["where"].split(":")[0] in RECORD_SIDES]
        if cases:
            params.append(pytest.param(module, cases, id=f"records-{module}"))
    params += [pytest.param(c["module"], [c], id=c["id"]) for c in CORPUS
               if c["where"].split(":")[0] not in RECORD_SIDES]
    return params


def test_the_corpus_is_big_and_well_formed():
    ids = [c["id"] for c in CORPUS]
    assert len(ids) == len(set(ids)) and len(ids) >= 50
    for case in CORPUS:
        assert case["module"] in FLOWS and case["what"], case["id"]
        expect = case["expect"]
        assert expect == "synced" or (isinstance(expect, dict) and len(expect) == 1
                                      and {*expect} <= {"failure", "config_error"}), case["id"]


# --------------------------------------------------------------------------- applying cases


def _value(value, case_id: str):
    """`@long:N`: a readable text of N characters."""
    if isinstance(value, str) and value.startswith("@long:"):
        size = int(value.split(":")[1])
        return (f"{case_id} " + "lorem ipsum dolor sit amet " * (size // 20 + 1))[:size]
    return value


def crm_put_record(emu, module: str, case: dict) -> str:
    """Create the case's record in the emulated CRM, then apply its raw values; its id."""
    crm = emu.crm
    with emu.lock:
        values = dict(case["record"])
        doomed = None
        if values.get("Account_Name") == "@account":
            values["Account_Name"] = sorted(crm.records("Accounts"))[0]
        elif values.get("Account_Name") == "@deleted_account":
            doomed = crm.create("Accounts", {"Account_Name": f"{case['id']} gone"}, 0)[0]["id"]
            values["Account_Name"] = doomed
        try:
            rec, _ = crm.create(module, values, 0)
        except Exception as exc:
            raise AssertionError(f"{case['id']}: the CRM refuses {values}: {exc!r}") from exc
        if doomed:
            crm.delete("Accounts", doomed)
        if case.get("raw"):
            old = dict(rec)
            rec.update({k: _value(v, case["id"]) for k, v in case["raw"].items()})
            crm.stores[module].touch(rec, old["Modified_Time"], old)
    return rec["id"]


def books_put_record(emu, books_http, resource: str, case: dict) -> str:
    """Create the case's record through the Books API, then apply its raw values; its id."""
    org_id = org_of_emu(emu)
    created = books_create(books_http, org_id, resource, case["record"])
    record_id = str(created["contact_id" if resource == "contacts" else "item_id"])
    if case.get("raw"):
        with emu.lock:
            org = emu.books.org()
            org.records[resource][record_id].update(
                {k: _value(v, case["id"]) for k, v in case["raw"].items()})
            org.version += 1
    return record_id


def org_of_emu(emu) -> str:
    return emu.config.books_org_ids[0]


def change_emulator(emu, monkeypatch, change: dict) -> None:
    """Apply a change made on the Zoho side after crmbooks was set up."""
    if "books_currency" in change:
        org = emu.books.org()
        code = change["books_currency"]
        for currency in org.currencies.values():
            currency["is_base_currency"] = currency["currency_code"] == code
        monkeypatch.setitem(org.info, "currency_code", code)
    if "delete_crm_field" in change:
        module, field = change["delete_crm_field"]
        active = emu.crm.active_fields

        def without(name: str):
            fields = active(name)
            return [f for f in fields if not (name == module and f.api_name == field)]

        monkeypatch.setattr(emu.crm, "active_fields", without)
    if "delete_view" in change:
        module, name = change["delete_view"]
        views = emu.crm.views[module]
        views[:] = [v for v in views if v["name"] != name]


# ---------------------------------------------------------------------------------- checks


def _text(row: dict) -> str:
    return " ".join(str(row.get(k) or "") for k in ("code", "field", "message", "hint"))


def _mine(row: dict, side: str, record_id: str) -> bool:
    return str(row.get(f"{side}_id") or "") == record_id or record_id in str(row["record_key"])


def still_there(emu, side: str, where: str, record_id: str) -> bool:
    if side == "crm":
        return record_id in emu.crm.records(where)
    return record_id in emu.books.org().records[where]


@pytest.fixture
def store(connected, monkeypatch):
    unpaced(monkeypatch)
    return connected


@pytest.mark.parametrize(("module", "cases"), _groups())
def test_hostile_input_fails_clearly_and_loses_nothing(module, cases, store, emu_reset,
                                                        books_http, monkeypatch):
    emu = emu_reset.emu
    store.save_settings(module, SETTINGS[module])
    placed: dict[str, tuple[str, str, str]] = {}  # case id -> (side, where, record id)
    for case in copy.deepcopy(cases):
        side, _, where = case["where"].partition(":")
        if side == "crm":
            placed[case["id"]] = (side, where, crm_put_record(emu, where, case))
        elif side == "books":
            placed[case["id"]] = (side, where, books_put_record(emu, books_http, where, case))
        else:
            if "settings" in case:
                store.save_settings(module, case["settings"])
            change_emulator(emu, monkeypatch, case.get("change") or {})
    clear_stats(emu_reset)

    state = FLOWS[module](return_state=True)

    run = store.list_runs(module=module, limit=1)
    if not placed:  # a settings or emulator case: a configuration error, nothing written
        (case,) = cases
        fragment = case["expect"]["config_error"]
        assert not state.is_completed(), f"{case['id']}: the run went through"
        assert fragment.casefold() in (state.message or "").casefold(), (case["id"],
                                                                        state.message)
        assert "Traceback" not in state.message
        assert applied_writes(emu) == [], f"{case['id']}: written before the error"
        return
    assert run and run[0].state in ("completed", "completed_with_failures"), (
        f"the run crashed: {state.message}")
    failures = store.failures(module=module).to_dict("records")
    for row in failures:
        assert row["code"] and row["message"], row
    expected_failures = set()
    problems = []
    for case in cases:
        side, where, record_id = placed[case["id"]]
        if not still_there(emu, side, where, record_id):
            problems.append(f"{case['id']}: the record is gone from {side} {where}")
        own = [r for r in failures if _mine(r, side, record_id)]
        if case["expect"] == "synced":
            if own or store.find_link(module, **{f"{side}_id": record_id}) is None:
                problems.append(f"{case['id']}: not synced ({[_text(r) for r in own]})")
            continue
        fragment = case["expect"]["failure"]
        expected_failures |= {r["id"] for r in own}
        if not any(fragment.casefold() in _text(r).casefold() for r in own):
            problems.append(f"{case['id']}: expected a failure naming {fragment!r}, got "
                            f"{[_text(r) for r in own] or 'none'}")
    others = [_text(r) for r in failures if r["id"] not in expected_failures]
    problems += [f"an unexpected failure: {t}" for t in others]
    problems += _unsynced(emu, store, module, run[0].id, placed)
    # a stamp from a clock gone wrong must not move a cursor into the future: every later
    # change would be missed
    horizon = datetime.now(UTC) + timedelta(days=1)
    for side in RECORD_SIDES:
        cursor = store.cursor(module, side)
        if cursor is not None and cursor > horizon:
            problems.append(f"the {side} cursor moved to {cursor}")
    assert not problems, "\n".join(problems)


def _unsynced(emu, store, module: str, run_id: str, placed: dict) -> list[str]:
    """Records of the module, not hostile ones, that are neither linked nor skipped."""
    hostile = {record_id for _, _, record_id in placed.values()}
    links = store.links(module)
    linked = set(links["crm_id"]) | set(links["books_id"]) if not links.empty else set()
    events = store.events(run_id=run_id)
    skips = events[events["action"] == "skipped"]
    # a duplicate skipped by the settings: its event may name the other side's record
    skipped = set(skips["crm_id"].dropna()) | set(skips["name"].dropna())
    out = []
    for crm_module in CRM_MODULES[module]:
        for record_id, rec in emu.crm.records(crm_module).items():
            if not {record_id, crm_record_name(crm_module, rec)} & (hostile | linked | skipped):
                rec = emu.crm.records(crm_module)[record_id]
                seen = events[events["crm_id"] == record_id][["action", "message"]]
                out.append(f"CRM {crm_module} {record_id} was not synced: {rec} "
                           f"{seen.to_dict('records')}")
    return out



def test_a_stamp_from_a_clock_gone_wrong_does_not_hide_later_changes(store, emu_reset):
    """A record stamped in the year 9999 syncs, and the cursor stays at credible stamps: a
    change made after that run still syncs on the next one (the cursor would otherwise jump
    to 9999 and every later change look old)."""
    emu = emu_reset.emu
    store.save_settings("vendors", SETTINGS["vendors"])
    future = crm_put_record(emu, "Vendors", {
        "id": "vendor-far-future", "record": {"Vendor_Name": "Tomorrow Supplies"},
        "raw": {"Modified_Time": "9999-12-31T23:59:59+00:00"}})
    state = sync_vendors(return_state=True)
    assert state.is_completed(), state.message
    assert store.find_link("vendors", crm_id=future) is not None
    assert store.cursor("vendors", "crm") < datetime.now(UTC) + timedelta(days=1)

    later = crm_put_record(emu, "Vendors", {"id": "vendor-after",
                                            "record": {"Vendor_Name": "Afterwards Supplies"}})
    state = sync_vendors(return_state=True)
    assert state.is_completed(), state.message
    assert store.find_link("vendors", crm_id=later) is not None
