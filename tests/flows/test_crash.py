"""B2 (issues 4, 5): a sync killed at any moment and run again duplicates nothing, loses nothing.

Each case runs the sync in a child process (forked from a launcher that imported the flows
once) against the session emulator and the session Prefect API, and kills it with SIGKILL:

* from outside, once the emulator has answered `k` writes, with 20 ms of emulator latency so
  the push is under way: at the first write, in the middle of the Books pushes, during the CRM
  upsert batch, and once with dropped connections (answers lost after the write was applied,
  the upserts retried) at the last third. Where such a kill lands is up to the scheduler: just
  before the next write, or between a write and its link;
* from inside, right after a write returned (the child kills itself): the exactly-once window
  of the design, where the remote applied the write and nothing of its answer was stored. Once
  for a Books contact with inline persons, once each for the CRM accounts and contacts
  batches (the contacts need their new accounts as parents), once for a contact
  person added to a linked Books contact (no unique key: looked up before it is added), once
  for items (Books first, then CRM).

A second run, in-process and fault-free, must then converge to exactly what fault-free runs
make from the same seed (the reference): the same records on both sides, compared by name and by
the other side's id they carry, no second record for any id, and the same links, every one
pointing at records that exist. Kill points are named, not numbered: they are resolved against
the writes of the reference run, so new seed data moves them along.

The Books client normally paces itself to 100 requests a minute (the real limit); here it is
unpaced (the emulator's limit is lifted by `emu_reset` too), in this process and in the child.
Cost: about 3 s of CPU per case, plus the session harness, the launcher and the references once.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from connect_support import connect_to

from emulators.core import Faults
from flows.customers import sync_customers
from flows.items import sync_items

ROOT = Path(__file__).resolve().parents[2]
FLOWS = {"customers": sync_customers, "items": sync_items}
SETTINGS = {
    # two-way, CRM accounts and contacts: Books creates (contacts with inline persons,
    # individuals) then CRM upserts (accounts, then their contacts) in one run
    "customers": {"crm_module": "accounts+contacts", "include_unassociated_contacts": True},
    "items": {},  # Books first, then CRM
}
LATENCY = {"latency_ms": 20}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def unpaced(config_from_store):
    """`config_from_store` with the Books pacer lifted (tests are not about pacing)."""

    def _config(*args, **kwargs):
        return config_from_store(*args, **kwargs).model_copy(
            update={"books_requests_per_minute": 100_000})

    return _config


@pytest.fixture(autouse=True)
def _unpaced_books(monkeypatch):
    import crmbooks.runtime as runtime

    monkeypatch.setattr(runtime, "config_from_store", unpaced(runtime.config_from_store))


# ------------------------------------------------------------------------- emulator probes


def applied_writes(emu) -> list[str]:
    """The write requests the emulator has answered (or dropped) since its stats were cleared,
    read from its request log in this process (no request of ours competes with the child's).

    Refused writes (4xx, e.g. the unique-key probe of `crmbooks.metadata`) are left out.
    """
    with emu.stats.lock:
        log = list(emu.stats.log)
    return [f"{e['method']} {e['path']}" for e in log
            if e["method"] in WRITE_METHODS and e["path"].startswith(("/books/", "/crm/"))
            and (e["status"] == 0 or e["status"] < 400)]


def wait_idle(emulator, timeout: float = 30.0) -> None:
    """Wait until the emulator has finished every request, also those of a killed client.

    A write whose client died after sending it is still applied (uvicorn runs the app to the
    end); the rerun must start after it, as it would in real life minutes later.
    """
    state = emulator._server.server_state
    deadline = time.monotonic() + timeout
    while state.tasks:
        assert time.monotonic() < deadline, "the emulator kept requests running"
        time.sleep(0.005)


def clear_stats(emulator) -> None:
    httpx.post(f"{emulator.base_url}/__emulator__/stats/clear").raise_for_status()


# ------------------------------------------------------------------------------ the world


def _crm_name(module: str, record: dict) -> str:
    if module == "Accounts":
        return record.get("Account_Name") or ""
    if module == "Products":
        return record.get("Product_Name") or ""
    if module == "Vendors":
        return record.get("Vendor_Name") or ""
    return f"{record.get('First_Name') or ''} {record.get('Last_Name') or ''}".strip()


def _ref(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if value not in (None, "") else None


def _cf_crm_id(record: dict) -> str | None:
    value = (record.get("custom_field_hash") or {}).get("cf_crm_id")
    if value is None:
        value = next((f.get("value") for f in record.get("custom_fields") or []
                      if f.get("api_name") == "cf_crm_id"), None)
    return _ref(value)


CRM_MODULES = {"customers": ("Accounts", "Contacts"), "vendors": ("Vendors",),
               "items": ("Products",)}
CONTACT_TYPE = {"customers": "customer", "vendors": "vendor"}


def world(emu, store, module: str) -> tuple[dict, list[str]]:
    """Both sides and the links of `module` without ids (ids differ from run to run), and the
    problems that need no reference: duplicate keys, links to records that do not exist."""
    org = emu.books.org()
    crm_modules = CRM_MODULES[module]
    crm = {m: emu.crm.records(m) for m in crm_modules}
    crm_names = {i: _crm_name(m, r) for m in crm_modules for i, r in crm[m].items()}
    if module == "items":
        books = {"items": dict(org.records["items"])}
        books_names = {i: r.get("name") or "" for i, r in books["items"].items()}
    else:
        books = {"contacts": {i: r for i, r in org.records["contacts"].items()
                              if r.get("contact_type") == CONTACT_TYPE[module]}}
        books_names = {}
        for i, r in books["contacts"].items():
            books_names[i] = r["contact_name"]
            for p in r.get("contact_persons") or []:
                books_names[str(p["contact_person_id"])] = (
                    f"{r['contact_name']} / {p.get('first_name') or ''} "
                    f"{p.get('last_name') or ''}".strip())

    def books_name(ref):
        return None if ref is None else books_names.get(ref, f"missing Books record {ref}")

    def crm_name(ref):
        return None if ref is None else crm_names.get(ref, f"missing CRM record {ref}")

    out: dict[str, list] = {}
    problems: list[str] = []
    for resource, records in books.items():
        out[f"Books {resource}"] = sorted(  # name, the CRM ids it carries (ours, Zoho's)
            (r.get("contact_name") or r.get("name"), crm_name(_cf_crm_id(r)),
             crm_name(_ref(r.get("zcrm_account_id"))), crm_name(_ref(r.get("zcrm_contact_id"))))
            for r in records.values())
        twice = [k for k, n in Counter(filter(None, map(_cf_crm_id, records.values()))).items()
                 if n > 1]
        problems += [f"two Books {resource} carry cf_crm_id {k}" for k in twice]
        if resource == "contacts":
            out["Books contact persons"] = sorted(
                (r["contact_name"], p.get("first_name") or "", p.get("last_name") or "",
                 p.get("email") or "")
                for r in records.values() for p in r.get("contact_persons") or [])
    for m, records in crm.items():
        out[f"CRM {m}"] = sorted(
            (_crm_name(m, r), crm_name(_ref(r.get("Account_Name"))),
             books_name(_ref(r.get("Books_Id__c")))) for r in records.values())
        twice = [k for k, n in Counter(
            filter(None, (_ref(r.get("Books_Id__c")) for r in records.values()))).items()
            if n > 1]
        problems += [f"two CRM {m} carry Books_Id__c {k}" for k in twice]
    links = store.links(module)
    rows = [] if links.empty else links.to_dict("records")
    out["links"] = sorted((r["kind"], crm_name(str(r["crm_id"])), books_name(str(r["books_id"])))
                          for r in rows)
    for side in ("crm_id", "books_id"):
        twice = [k for k, n in Counter(str(r[side]) for r in rows).items() if n > 1]
        problems += [f"two links share {side} {k}" for k in twice]
    for r in rows:
        if str(r["crm_id"]) not in crm.get(r["crm_module"], {}):
            problems.append(f"link {r['kind']} {r['crm_id']}: no such CRM {r['crm_module']}")
        if str(r["books_id"]) not in books_names:
            problems.append(f"link {r['kind']} {r['books_id']}: no such Books record")
    return out, problems


def assert_converged(got: dict, problems: list[str], reference: dict) -> None:
    assert not problems, problems
    for key in reference:
        extra = Counter(got[key]) - Counter(reference[key])
        missing = Counter(reference[key]) - Counter(got[key])
        assert not extra and not missing, (
            f"{key}: {sum(extra.values())} more than the fault-free run {sorted(extra)}, "
            f"{sum(missing.values())} missing {sorted(missing)}")


# -------------------------------------------------------------------------- the reference


def add_persons(emulator, store) -> None:
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


# scenario: (module, what happens before the run that is killed)
SCENARIOS = {
    "customers": ("customers", None),
    "customers-new-persons": ("customers", add_persons),
    "items": ("items", None),
}
_REFERENCE: dict[str, tuple[dict, list[str]]] = {}


def reset(emulator) -> None:
    """The emulator as `emu_reset` leaves it: same seed and sizes, no faults, zero counters."""
    emulator.emu.reset(seed=7)
    emulator.emu.set_faults(Faults())


def prepare(scenario: str, emulator, monkeypatch, home: Path, database_url: str):
    """A fresh emulator, crmbooks connected to it with the scenario's settings; the Store."""
    module, before = SCENARIOS[scenario]
    reset(emulator)
    store = connect_to(emulator, monkeypatch, home, database_url)
    store.save_settings(module, SETTINGS[module])
    if before is not None:
        before(emulator, store)
    clear_stats(emulator)
    return store


def reference(scenario: str, emulator, monkeypatch, tmp_path) -> tuple[dict, list[str]]:
    """What one fault-free run of the scenario makes, and the writes it sends (computed once
    per session: it does not depend on the state database)."""
    if scenario not in _REFERENCE:
        module = SCENARIOS[scenario][0]
        store = prepare(scenario, emulator, monkeypatch, tmp_path / "reference",
                        f"sqlite:///{tmp_path / 'reference.db'}")
        state = FLOWS[module](return_state=True)
        assert state.is_completed(), state.message
        writes = applied_writes(emulator.emu)
        got, problems = world(emulator.emu, store, module)
        assert not problems, problems
        _REFERENCE[scenario] = (got, writes)
    return _REFERENCE[scenario]


def kill_point(name: str, writes: list[str]) -> int:
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
    """The launcher's `die_after` spec for a named point (see LAUNCHER)."""
    side, _, point = name.partition(":")
    return f"{side}:{point if point.isdigit() else kill_point(point, writes)}"


# --------------------------------------------------------------------------------- a crash

# A launcher process that imports Prefect and the flows once (about 2-3 s) and then forks one
# fresh child per crash, so a kill point costs a run, not an interpreter start. Nothing has
# started a thread when it forks (checked below). A job is one JSON line on its stdin: the
# child's environment (connect_to's CRMBOOKS_* variables), the module, where to log, and
# optionally `die_after`; it answers the child's pid, then the child's wait status.
LAUNCHER = r"""
import json, os, signal, sys, threading, traceback

import crmbooks.runtime as runtime
from crmbooks.connectors.zoho_books import BooksClient
from crmbooks.connectors.zoho_crm import CrmClient
from flows.customers import sync_customers
from flows.items import sync_items

_config = runtime.config_from_store
def _unpaced(*args, **kwargs):
    return _config(*args, **kwargs).model_copy(update={"books_requests_per_minute": 100_000})
runtime.config_from_store = _unpaced
FLOWS = {"customers": sync_customers, "items": sync_items}
WRITES = {"books": (BooksClient, "upsert_by_custom_field"), "crm": (CrmClient, "upsert"),
          "person": (BooksClient, "create_contact_person")}

def die_after(spec):
    # SIGKILL this process as soon as the n-th successful write of a side has returned:
    # the remote applied it, nothing of its answer was used (no link, no outcome).
    side, n = spec.split(":")
    cls, name = WRITES[side]
    write, seen = getattr(cls, name), [0]
    def wrapped(self, *args, **kwargs):
        result = write(self, *args, **kwargs)
        results = result if isinstance(result, list) else [result]
        seen[0] += any(r.ok for r in results)
        if seen[0] == int(n):
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    setattr(cls, name, wrapped)

assert threading.active_count() == 1, threading.enumerate()  # safe to fork
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(log, 1)
        os.dup2(log, 2)
        code = 0
        try:
            os.environ.update(job["env"])
            if job.get("die_after"):
                die_after(job["die_after"])
            FLOWS[job["module"]](return_state=True)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""
CHILD_ENV = ("CRMBOOKS_HOME", "CRMBOOKS_DATABASE_URL", "CRMBOOKS_CLIENT_SECRET",
             "CRMBOOKS_REFRESH_TOKEN")


class Launcher:
    """The launcher process, seen from the test."""

    def __init__(self):
        from prefect.settings import PREFECT_API_URL

        api = PREFECT_API_URL.value()
        assert api, "the session Prefect harness sets PREFECT_API_URL"
        env = {k: v for k, v in os.environ.items() if k not in CHILD_ENV}
        env.update(PREFECT_API_URL=api, PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   DO_NOT_TRACK="1", PREFECT_LOGGING_LEVEL="WARNING", PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([sys.executable, "-c", LAUNCHER], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._buffer = b""

    def start(self, module: str, log: Path, die_after: str | None = None) -> int:
        """Fork a child that runs the sync of `module` in this test's environment."""
        env = {k: os.environ[k] for k in CHILD_ENV}
        job = {"env": env, "module": module, "log": str(log), "die_after": die_after}
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")
        self.proc.stdin.flush()
        return int(self.line(timeout=30))

    def line(self, timeout: float) -> str | None:
        """The launcher's next line, or None when none came within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            assert chunk, "the launcher died"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def launcher(prefect_harness):
    launcher = Launcher()
    yield launcher
    launcher.close()


def crash(launcher: Launcher, emulator, module: str, log: Path, *, kill_after: int | None = None,
          die_after: str | None = None) -> None:
    """Run the sync of `module` in a child process and make sure it dies by SIGKILL: sent by
    this test once the emulator has answered `kill_after` writes, or by the child itself
    right after a write returned (`die_after`, see LAUNCHER)."""
    clear_stats(emulator)
    pid = launcher.start(module, log, die_after)
    deadline = time.monotonic() + 120
    status = None
    while status is None:
        if kill_after is not None and len(applied_writes(emulator.emu)) >= kill_after:
            os.kill(pid, signal.SIGKILL)
            kill_after = None
        status = launcher.line(timeout=0.002 if kill_after is not None else 1.0)
        assert time.monotonic() < deadline, "the child neither reached its kill point nor died"
    status = int(status)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
        f"the child ended by itself (status {status}, {len(applied_writes(emulator.emu))} "
        "writes) "
        f"before its kill point; its output: {log.read_text()[-3000:]}")
    wait_idle(emulator)


# (scenario, kill once the emulator answered this many writes | None, or let the child die
# right after this write returned | None, emulator faults)
CASES = [
    pytest.param("customers", "first-write", None, {}, id="customers-first-write"),
    pytest.param("customers", "books-middle", None, {}, id="customers-books-middle"),
    pytest.param("customers", "crm-upsert-batch", None, {}, id="customers-crm-upsert-batch"),
    # answers lost after the write was applied (the upserts are retried), then the kill
    pytest.param("customers", "books-last-third", None, {"drop_rate": 0.15, "seed": 3},
                 id="customers-lost-answers-last-third"),
    # the exactly-once window itself: the remote applied the write, nothing of it was stored
    pytest.param("customers", None, "books:books-middle", {}, id="customers-books-unread"),
    pytest.param("customers", None, "crm:1", {}, id="customers-crm-batch-unread"),
    pytest.param("customers", None, "crm:2", {}, id="customers-crm-contacts-unread"),
    pytest.param("customers-new-persons", None, "person:1", {}, id="customers-person-unread"),
    pytest.param("items", None, "crm:1", {}, id="items-crm-unread"),
]


@pytest.mark.parametrize(("scenario", "point", "die_after", "faults"), CASES)
def test_a_killed_run_then_a_rerun_equals_one_clean_run(
        scenario, point, die_after, faults, launcher, emu_reset, database_url, monkeypatch,
        tmp_path):
    module = SCENARIOS[scenario][0]
    expected, writes = reference(scenario, emu_reset, monkeypatch, tmp_path)
    store = prepare(scenario, emu_reset, monkeypatch, tmp_path, database_url)
    emu_reset.emu.set_faults(Faults.from_dict({**LATENCY, **faults}))

    crash(launcher, emu_reset, module, tmp_path / "child.log",
          kill_after=kill_point(point, writes) if point else None,
          die_after=die_point(die_after, writes) if die_after else None)

    if faults.get("drop_rate"):
        with emu_reset.emu.stats.lock:
            dropped = [e for e in emu_reset.emu.stats.log if e["status"] == 0
                       and e["method"] in WRITE_METHODS]
        assert dropped, "no write lost its answer before the kill: pick another fault seed"
    emu_reset.emu.set_faults(Faults())
    state = FLOWS[module](return_state=True)
    assert state.is_completed(), state.message
    got, problems = world(emu_reset.emu, store, module)
    assert_converged(got, problems, expected)
    # the killed run's history row was closed when the rerun took over its run lock
    assert [r.state for r in store.list_runs(module) if r.state == "running"] == []
