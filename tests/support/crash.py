"""Helpers of tests/flows/test_crash.py: the launcher that forks the syncs to kill, the
emulator probes that time an outside kill, and the comparison of what a run left behind.

Kept apart so that the test file reads as its list of kill points.
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
from collections.abc import Callable
from pathlib import Path

from emulators import Faults
from support.customers import clear_stats

ROOT = Path(__file__).resolve().parents[2]
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

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


def dropped_requests(emu) -> list[str]:
    """The API requests whose answer the emulator dropped since its stats were cleared."""
    with emu.stats.lock:
        return [f"{e['method']} {e['path']}" for e in emu.stats.log if e["status"] == 0]


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


def reset(emulator) -> None:
    """The emulator as `emu_reset` leaves it: same seed and sizes, no faults, zero counters."""
    emulator.emu.reset(seed=7)
    emulator.emu.set_faults(Faults())


# ------------------------------------------------------------------------------ the world


def crm_record_name(module: str, record: dict) -> str:
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


def world(emu, store, modules: str | tuple[str, ...]) -> tuple[dict, list[str]]:
    """Both sides and the links of a module (or of each of `modules`), without ids (ids
    differ from run to run), and the problems that need no reference: duplicate keys, links
    to nothing."""
    if isinstance(modules, str):
        return _world(emu, store, modules)
    out: dict[str, list] = {}
    problems: list[str] = []
    for module in modules:
        got, found = _world(emu, store, module)
        out.update({f"{module}: {key}": value for key, value in got.items()})
        problems += [f"{module}: {p}" for p in found]
    return out, problems


def _world(emu, store, module: str) -> tuple[dict, list[str]]:
    org = emu.books.org()
    crm_modules = CRM_MODULES[module]
    crm = {m: emu.crm.records(m) for m in crm_modules}
    crm_names = {i: crm_record_name(m, r) for m in crm_modules for i, r in crm[m].items()}
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
        # name, the CRM ids it carries (ours, Zoho's), a value (edited by one scenario)
        out[f"Books {resource}"] = sorted(
            (r.get("contact_name") or r.get("name"), crm_name(_cf_crm_id(r)),
             crm_name(_ref(r.get("zcrm_account_id"))), crm_name(_ref(r.get("zcrm_contact_id"))),
             r.get("website"))
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
        out[f"CRM {m}"] = sorted(  # name, parent account (contacts), Books id, a value
            (crm_record_name(m, r),
             crm_name(_ref(r.get("Account_Name"))) if m == "Contacts" else None,
             books_name(_ref(r.get("Books_Id__c"))), r.get("Website")) for r in records.values())
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
    """The same records and links as the reference (as multisets), and no problem."""
    assert not problems, problems
    assert sorted(got) == sorted(reference)
    for key in reference:
        extra = Counter(got[key]) - Counter(reference[key])
        missing = Counter(reference[key]) - Counter(got[key])
        assert not extra and not missing, (
            f"{key}: {sum(extra.values())} more than the fault-free run {sorted(extra)}, "
            f"{sum(missing.values())} missing {sorted(missing)}")


# --------------------------------------------------------------------------------- a crash

# A launcher process that imports Prefect and the flows once (about 2-3 s) and then forks one
# fresh child per crash, so a kill point costs a run, not an interpreter start. Nothing has
# started a thread when it forks (checked below). A job is one JSON line on its stdin: the
# child's environment (connect_to's CRMBOOKS_* variables), the flow, where to log, and
# optionally `die_after`; it answers the child's pid, then the child's wait status.
LAUNCHER = r"""
import json, os, signal, sys, threading, traceback

import crmbooks.runtime as runtime
import flows.pipeline as pipeline
from crmbooks.connectors.zoho_books import BooksClient
from crmbooks.connectors.zoho_crm import CrmClient
from crmbooks.store import Store
from flows.customers import sync_customers
from flows.items import sync_items
from flows.operations import sync_now
from flows.vendors import sync_vendors

_config = runtime.config_from_store
def _unpaced(*args, **kwargs):
    return _config(*args, **kwargs).model_copy(update={"books_requests_per_minute": 100_000})
runtime.config_from_store = _unpaced
FLOWS = {"customers": sync_customers, "vendors": sync_vendors, "items": sync_items,
         "all": sync_now}
# where a child can die: right after the n-th call of one of these returned (successful
# writes only), or, for a generator, right after it yielded its n-th page
HOOKS = {"books": (BooksClient, "upsert_by_custom_field"), "crm": (CrmClient, "upsert"),
         "person": (BooksClient, "create_contact_person"), "books-update": (BooksClient, "update"),
         "crm-update": (CrmClient, "update"), "books-delete": (BooksClient, "delete"),
         "crm-page": (CrmClient, "iter_records"), "books-page": (BooksClient, "iter_pages"),
         "books-get": (BooksClient, "get"), "link": (Store, "upsert_link"),
         "cursor": (Store, "advance_cursor"), "report": (pipeline, "report")}
MODULE = [None]  # the module whose run is under way (sync-now runs several)

def _die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)

def die_after(spec):
    # "[module/]hook:n": SIGKILL this process as soon as the n-th counted call of the hook
    # (in `module`'s run) has returned: the remote applied the write, nothing of its answer
    # was used (no link, no outcome). "report" dies as the report is called, before it runs.
    module, _, rest = spec.rpartition("/")
    hook, n = rest.split(":")
    owner, name = HOOKS[hook]
    original, seen = getattr(owner, name), [0]

    def counts(result=True):
        if module and MODULE[0] != module:
            return False
        results = result if isinstance(result, list) else [result]
        if not any(getattr(r, "ok", True) for r in results):
            return False
        seen[0] += 1
        return seen[0] == int(n)

    def wrapped(*args, **kwargs):
        if hook == "report":
            if counts():
                _die()
            return original(*args, **kwargs)
        result = original(*args, **kwargs)
        if counts(result):
            _die()
        return result

    def pages(*args, **kwargs):
        for page in original(*args, **kwargs):
            if counts():
                _die()
            yield page

    setattr(owner, name, pages if hook.endswith("-page") else wrapped)
    start = pipeline.start_run
    def start_run(module, *args, **kwargs):
        MODULE[0] = module
        return start(module, *args, **kwargs)
    pipeline.start_run = start_run

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
            FLOWS[job["flow"]](return_state=True)
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

    def start(self, flow: str, log: Path, die_after: str | None = None) -> int:
        """Fork a child that runs `flow` (a module, or "all": sync-now) in this test's
        environment; its pid."""
        env = {k: os.environ[k] for k in CHILD_ENV}
        job = {"env": env, "flow": flow, "log": str(log), "die_after": die_after}
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
        """End the launcher (it exits when its stdin closes)."""
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def crash(launcher: Launcher, emulator, flow: str, log: Path, *,
          kill_when: Callable[[object], bool] | None = None,
          die_after: str | None = None) -> None:
    """Run `flow` in a child process and make sure it dies by SIGKILL: sent by this test as
    soon as `kill_when(emulator.emu)` holds (e.g. the emulator answered k writes), or by the
    child itself at a hook (`die_after`, see LAUNCHER)."""
    clear_stats(emulator)
    pid = launcher.start(flow, log, die_after)
    deadline = time.monotonic() + 120
    status = None
    while status is None:
        if kill_when is not None and kill_when(emulator.emu):
            os.kill(pid, signal.SIGKILL)
            kill_when = None
        status = launcher.line(timeout=0.002 if kill_when is not None else 1.0)
        assert time.monotonic() < deadline, "the child neither reached its kill point nor died"
    status = int(status)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
        f"the child ended by itself (status {status}, {len(applied_writes(emulator.emu))} "
        "writes) "
        f"before its kill point; its output: {log.read_text()[-3000:]}")
    wait_idle(emulator)
