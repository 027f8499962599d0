"""Crash safety: a sync killed at any moment and run again duplicates nothing, loses
nothing, on SQLite and on PostgreSQL.

Each case runs a sync in a child process (forked from a launcher that imported the flows
once, tests/flows/crash_support.py) against the session emulator and the session Prefect API,
and kills it with SIGKILL at one of these named points, spread over a full sync:

* customers, a first two-way sync of CRM accounts and contacts (Books creates contacts with
  inline persons and individuals, then CRM upserts accounts, then their contacts):
  - reading, before any write: right after the first CRM page (accounts read, contacts not),
    and while the Books contacts are read one by one (`crm-read`, `books-read`);
  - from outside once the emulator has answered `k` writes, with 20 ms of emulator latency so
    the push is under way: at the first write, in the middle of the Books pushes, during the
    CRM upsert batch, and with dropped connections (answers lost after the write was applied,
    the upserts retried) at the last third. Where such a kill lands is up to the scheduler:
    just before the next write, or between a write and its link;
  - from inside (the child kills itself, no latency needed), in the exactly-once window of the
    design, where the remote applied a write and nothing of its answer was stored: right
    after a Books contact with inline persons was written (`books-unread`); right after the
    first link row was stored, its inline persons' links not (`after-a-link`); right after
    the CRM accounts batch and the contacts batch (the contacts need their new accounts as
    parents), once with dropped connections; right after Zoho's own CRM link was set on a
    Books contact whose CRM twin was just created, before the pair's link row
    (`crm-link-mark-unread`);
  - in the report, after the last push: between its CRM and its Books cursor move;
* customers again, an incremental run after a clean sync (its cursors set), where two new CRM
  contacts become contact persons of linked Books contacts (no unique key: looked up before
  they are added): right after the first add; from outside while the push waits to retry
  an add whose answer was lost (applied, so not replayed); after the last push, before the
  report;
* customers again, an incremental run after a clean sync that updates both ways (a Website
  changed on two CRM accounts and on one Books contact): right after the first Books update
  and right after the CRM update returned, before the links hold the values they synced;
* vendors (the third module): right after the first Books write, after the CRM upsert, and
  after the CRM upsert with dropped connections;
* items: right after the second Books write and after the CRM upsert;
* a full sync (`sync_now`, every module in dependency order in one flow run), killed in its
  second module (vendors, right after its CRM upsert) once customers had finished.

A second run, in-process and fault-free, must then converge to exactly what fault-free runs
make from the same seed (the reference): the same records on both sides, compared by name, by
the other side's id they carry and by the edited value, no second record for any id, and the
same links, every one pointing at records that exist. A kill before a module's report must also
have left its cursors where they were (a cursor past unlinked work would hide it from the
rerun), and a kill while reading must have written nothing. Kill points are named; those given
by a position in the push (the middle of the Books writes, the CRM batch) are resolved against
the writes of the reference run, so new seed data moves them along.

The Books client normally paces itself to 100 requests a minute (the real limit); here it is
unpaced (the emulator's limit is lifted by `emu_reset` too), in this process and in the child.
Cost: about 1-3 s per case (an inside kill needs no latency; the incremental and the full-sync
scenarios run a clean sync first), plus the session harness, the launcher and each scenario's
reference once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crmbooks.sync.registry import RECORD_MODULES
from emulators import Faults
from flows.customers import sync_customers
from flows.items import sync_items
from flows.operations import sync_now
from flows.vendors import sync_vendors
from support.connect import connect_to
from support.crash import (
    Launcher,
    applied_writes,
    assert_converged,
    crash,
    dropped_requests,
    reset,
    world,
)
from support.customers import clear_stats, unpaced

FLOWS = {"customers": sync_customers, "vendors": sync_vendors, "items": sync_items,
         "all": sync_now}
MODULES = {"customers": ("customers",), "vendors": ("vendors",), "items": ("items",),
           # sync-now runs every module; transactions and deal triggers are off here
           "all": tuple(RECORD_MODULES)}
SETTINGS = {
    # two-way, CRM accounts and contacts: Books creates (contacts with inline persons,
    # individuals) then CRM upserts (accounts, then their contacts) in one run
    "customers": {"crm_module": "accounts+contacts", "include_unassociated_contacts": True},
    "vendors": {},
    "items": {},  # Books first, then CRM
}
LATENCY = {"latency_ms": 20}
READ_HOOKS = ("crm-page", "books-page", "books-get")


@pytest.fixture(autouse=True)
def _unpaced_books(monkeypatch):
    unpaced(monkeypatch)


# -------------------------------------------------------------------------- the reference


def add_persons(emulator, store, monkeypatch) -> None:
    """After a first clean sync, two new CRM contacts under accounts it linked: the next run
    adds them to the Books contacts as contact persons, the one Books create that has no
    unique key (push looks them up by email / name before adding)."""
    from crmbooks.runtime import get_runtime

    state = sync_customers(return_state=True)
    assert state.is_completed(), state.message
    links = store.links("customers", kind="accounts")
    accounts = emulator.emu.crm.records("Accounts")
    parents = sorted(i for i in links["crm_id"] if i in accounts)[:2]
    new = [{"First_Name": first, "Last_Name": "Crashtest", "Account_Name": {"id": parent},
            "Email": f"{first.lower()}.crashtest@example.com"}
           for first, parent in zip(("Nadia", "Oskar"), parents, strict=True)]
    assert all(r.ok for r in get_runtime().crm.create("Contacts", new))


def edit_both_sides(emulator, store, monkeypatch) -> None:
    """After a first clean sync, a changed Website on two CRM accounts and on one Books
    contact: the next run updates their twins (Books first, then CRM), where a kill comes
    between the remote update and the link that remembers the values it synced."""
    from datetime import timedelta

    from crmbooks.runtime import get_runtime

    state = sync_customers(return_state=True)
    assert state.is_completed(), state.message
    # Zoho stamps have whole seconds: edits in the second of the sync's own writes would carry
    # their stamps (echoes). The emulator's clock moves on instead of the test sleeping.
    emu, now = emulator.emu, emulator.emu.now
    monkeypatch.setattr(emu, "now", lambda: now() + timedelta(seconds=2))
    links = store.links("customers", kind="accounts").sort_values("crm_id")
    pairs = list(zip(links["crm_id"], links["books_id"], strict=True))[:3]
    runtime = get_runtime()
    assert all(r.ok for r in runtime.crm.update("Accounts", [
        {"id": crm_id, "Website": f"https://crm-{n}.example.com"}
        for n, (crm_id, _) in enumerate(pairs[:2])]))
    assert runtime.books.update("contacts", pairs[2][1],
                                {"website": "https://books.example.com"}).ok


def added_persons(emu) -> list[str]:
    """The contact persons `add_persons` made Books contacts get, by first name."""
    return sorted(p.get("first_name") for r in emu.books.org().records["contacts"].values()
                  for p in r.get("contact_persons") or [] if p.get("last_name") == "Crashtest")


# scenario: (flow, what happens before the run that is killed)
SCENARIOS = {
    "customers": ("customers", None),
    "customers-new-persons": ("customers", add_persons),
    "customers-edits": ("customers", edit_both_sides),
    "vendors": ("vendors", None),
    "items": ("items", None),
    "sync-now": ("all", None),
}
_REFERENCE: dict[str, tuple[dict, list[str]]] = {}


def prepare(scenario: str, emulator, monkeypatch, home: Path, database_url: str):
    """A fresh emulator, crmbooks connected to it with the scenario's settings; the Store."""
    flow, before = SCENARIOS[scenario]
    reset(emulator)
    store = connect_to(emulator, monkeypatch, home, database_url)
    for module in MODULES[flow]:
        store.save_settings(module, SETTINGS[module])
    if before is not None:
        before(emulator, store, monkeypatch)
    clear_stats(emulator)
    return store


def reference(scenario: str, emulator, monkeypatch, tmp_path) -> tuple[dict, list[str]]:
    """What one fault-free run of the scenario makes, and the writes it sends (computed once
    per session: it does not depend on the state database)."""
    if scenario not in _REFERENCE:
        flow = SCENARIOS[scenario][0]
        store = prepare(scenario, emulator, monkeypatch, tmp_path / "reference",
                        f"sqlite:///{tmp_path / 'reference.db'}")
        state = FLOWS[flow](return_state=True)
        assert state.is_completed(), state.message
        writes = applied_writes(emulator.emu)
        got, problems = world(emulator.emu, store, MODULES[flow])
        assert not problems, problems
        _REFERENCE[scenario] = (got, writes)
    return _REFERENCE[scenario]


def kill_point(name: str, writes: list[str]):
    """When to kill from outside, by name, for one reference write sequence: a test of the
    emulator (the child is killed as soon as it holds)."""
    if name == "lost-person-answer":
        # a contact person's add lost its answer: not idempotent, so the client does not
        # replay it, and the push task waits (10 s) for its retry
        return lambda emu: any(r.startswith("POST /books/v3/contacts/contactpersons")
                               for r in dropped_requests(emu))
    count = answered_writes(name, writes)
    return lambda emu: len(applied_writes(emu)) >= count


def answered_writes(name: str, writes: list[str]) -> int:
    """How many answered writes to wait for before the kill, by name, for one write sequence."""
    books = [w for w in writes if w.split(" ")[1].startswith("/books/")]
    first_crm = next(i for i, w in enumerate(writes) if w.split(" ")[1].startswith("/crm/"))
    points = {
        "first-write": 1,
        "books-middle": max(1, len(books) // 2),
        "books-last-third": max(1, len(books) * 5 // 6),
        # the first CRM upsert (accounts) is answered; its links, the contacts' upsert and
        # their links are still to come
        "crm-upsert-batch": first_crm + 1,
    }
    return points[name]


def die_point(name: str, writes: list[str]) -> str:
    """The launcher's `die_after` spec for a named point (see crash_support.LAUNCHER)."""
    hook, _, point = name.partition(":")
    return f"{hook}:{point if point.isdigit() else answered_writes(point, writes)}"


# --------------------------------------------------------------------------------- a crash


@pytest.fixture(scope="module")
def launcher(prefect_harness):
    launcher = Launcher()
    yield launcher
    launcher.close()


def cursors(store, modules) -> dict:
    """Every cursor of `modules`: {(module, side): value or None}."""
    return {(m, side): store.cursor(m, side) for m in modules for side in ("crm", "books")}


def frozen_modules(flow: str, die_after: str | None) -> tuple[str, ...]:
    """The modules whose cursors the killed run must have left alone: the one it was killed in
    and those after it (a sync-now finishes the modules before). None when the kill came after
    a cursor move."""
    hook = (die_after or "").rpartition("/")[2].partition(":")[0]
    if hook == "cursor":
        return ()
    modules = MODULES[flow]
    killed_in = (die_after or "").rpartition("/")[0] or modules[0]
    return modules[modules.index(killed_in):]


# (scenario, kill once the emulator answered this many writes | None, or let the child die at
# this hook ("[module/]hook:n or hook:named point", see crash_support.LAUNCHER) | None,
# emulator faults)
CASES = [
    # reading, before any write
    pytest.param("customers", None, "crm-page:1", {}, id="customers-crm-read"),
    pytest.param("customers", None, "books-get:3", {}, id="customers-books-read"),
    # from outside, while the writes go
    pytest.param("customers", "first-write", None, {}, id="customers-first-write"),
    pytest.param("customers", "books-middle", None, {}, id="customers-books-middle"),
    pytest.param("customers", "crm-upsert-batch", None, {}, id="customers-crm-upsert-batch"),
    # answers lost after the write was applied (the upserts are retried), then the kill
    pytest.param("customers", "books-last-third", None, {"drop_rate": 0.15, "seed": 3},
                 id="customers-lost-answers-last-third"),
    # the exactly-once window itself: the remote applied the write, nothing of it was stored
    pytest.param("customers", None, "books:books-middle", {}, id="customers-books-unread"),
    pytest.param("customers", None, "link:1", {}, id="customers-after-a-link"),
    pytest.param("customers", None, "crm:1", {}, id="customers-crm-batch-unread"),
    pytest.param("customers", None, "crm:2", {}, id="customers-crm-contacts-unread"),
    pytest.param("customers", None, "crm:2", {"drop_rate": 0.1, "seed": 5},
                 id="customers-crm-lost-answers"),
    pytest.param("customers", None, "books-update:1", {}, id="customers-crm-link-mark-unread"),
    # everything pushed and linked: the report (cursors, history) still to come or half done
    pytest.param("customers", None, "cursor:1", {}, id="customers-between-cursors"),
    # an incremental run (cursors set by a clean sync): contact persons added to linked Books
    # contacts; killed right after an add, and before the report (its cursors must not move)
    pytest.param("customers-new-persons", None, "person:1", {}, id="customers-person-unread"),
    pytest.param("customers-new-persons", None, "report:1", {},
                 id="customers-persons-before-report"),
    pytest.param("customers-new-persons", "lost-person-answer", None,
                 {"drop_rate": 0.3, "seed": 1}, id="customers-person-lost-answer"),
    # an incremental run: updates both ways, killed before the link holds the synced values
    pytest.param("customers-edits", None, "books-update:1", {}, id="customers-update-unread"),
    pytest.param("customers-edits", None, "crm-update:1", {},
                 id="customers-crm-update-unread"),
    pytest.param("vendors", None, "books:1", {}, id="vendors-books-unread"),
    pytest.param("vendors", None, "crm:1", {}, id="vendors-crm-unread"),
    pytest.param("vendors", None, "crm:1", {"drop_rate": 0.3, "seed": 1},
                 id="vendors-crm-lost-answers"),
    pytest.param("items", None, "books:2", {}, id="items-books-unread"),
    pytest.param("items", None, "crm:1", {}, id="items-crm-unread"),
    # a full sync, killed in its second module (the first finished, the third not started)
    pytest.param("sync-now", None, "vendors/crm:1", {}, id="sync-now-second-module"),
]


#: The cases also run on PostgreSQL: those whose window is a database transaction of
#: crmbooks' own (a link, the journal, the cursors, a module finished before the kill).
#: The others test what the providers answered, the same on either database; running every
#: case twice cost about a minute of the suite for nothing more.
ON_POSTGRES = {"customers-books-unread", "customers-after-a-link", "customers-crm-batch-unread",
               "customers-between-cursors", "customers-persons-before-report",
               "customers-lost-answers-last-third", "sync-now-second-module"}
CASES_BY_DATABASE = [
    pytest.param(*case.values, database, id=f"{database}-{case.id}")
    for case in CASES for database in ("sqlite", "postgres")
    if database == "sqlite" or case.id in ON_POSTGRES]


@pytest.mark.parametrize(("scenario", "point", "die_after", "faults", "database_url"),
                         CASES_BY_DATABASE, indirect=["database_url"])
def test_a_killed_run_then_a_rerun_equals_one_clean_run(
        scenario, point, die_after, faults, launcher, emu_reset, database_url, monkeypatch,
        tmp_path):
    flow = SCENARIOS[scenario][0]
    expected, writes = reference(scenario, emu_reset, monkeypatch, tmp_path)
    store = prepare(scenario, emu_reset, monkeypatch, tmp_path, database_url)
    before = cursors(store, MODULES[flow])
    # latency only to let an outside kill land while the writes go; a kill from inside needs none
    emu_reset.emu.set_faults(Faults.from_dict({**(LATENCY if point else {}), **faults}))

    crash(launcher, emu_reset, flow, tmp_path / "child.log",
          kill_when=kill_point(point, writes) if point else None,
          die_after=die_point(die_after, writes) if die_after else None)

    if faults.get("drop_rate"):
        assert any(r.split(" ")[0] != "GET" for r in dropped_requests(emu_reset.emu)), (
            "no write lost its answer before the kill: pick another fault seed")
    if point == "lost-person-answer":
        assert added_persons(emu_reset.emu), (
            "the add whose answer was lost had not been applied: pick another fault seed")
    if die_after and die_after.partition(":")[0] in READ_HOOKS:
        assert applied_writes(emu_reset.emu) == [], "a kill while reading came after a write"
    frozen = frozen_modules(flow, die_after)
    after = cursors(store, frozen)
    assert after == {k: v for k, v in before.items() if k in after}, (
        "a cursor moved in a run killed before its report")
    emu_reset.emu.set_faults(Faults())
    state = FLOWS[flow](return_state=True)
    assert state.is_completed(), state.message
    got, problems = world(emu_reset.emu, store, MODULES[flow])
    assert_converged(got, problems, expected)
    # the killed run's history row was closed when the rerun took over its run lock
    assert [r.state for r in store.list_runs() if r.state == "running"] == []
