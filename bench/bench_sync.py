"""Sync benchmark: API calls, time and memory of the pipeline vs a naive sync.

    .venv/bin/python bench/bench_sync.py                 # full sizes, a few minutes on 2 cores
    .venv/bin/python bench/bench_sync.py --quick         # 10x smaller: a smoke run
    .venv/bin/python bench/bench_sync.py --markdown FILE # also write the tables as Markdown

Per module (customers: accounts + contacts as contact persons, scope both; vendors; items;
then transactions: the CRM quotes, sales orders, invoices and purchase orders the emulator
seeds, both ways; and deal triggers: a quote at the proposal stage, accepted and invoiced when
won, over the seeded deals), three runs: the initial sync, an incremental run after 1% of the
CRM records (at least one per CRM module) were changed through the CRM API, and a run with
nothing changed. For each run: API calls per side split
into data reads, writes, metadata and token calls; the minimum the APIs allow; calls/minimum;
wall time; records/s (records the run had to sync: the dataset, then the changed ones, per
second); peak RSS of the sync process; and the minutes real Zoho Books' 100 requests/minute
would take by pacing alone.

How it runs:

* the emulator is a subprocess (`python -m emulators`, bench/common.py), with Books' rate and
  daily limits raised through POST /__emulator__/limits; the Books client's own pacing is raised
  to match in the sync process (otherwise it paces itself to real Zoho's 100/minute);
* each sync run is its own child process (`bench_sync.py --worker sync MODULE`) running the
  module's Prefect flow in-process, exactly what `crmbooks sync MODULE` runs, against one
  temporary Prefect API (`prefect_test_harness`, started once here) and one temporary crmbooks
  home (SQLite state, metadata cache). A process per run is what makes `getrusage` peak RSS a
  per-run figure; calls are read from the connectors' CallCounter per endpoint, which
  `crmbooks sync --json` does not show; calls made inside the start-run task are metadata;
* transactions and deal triggers run after the other three, whose links (accounts, vendors,
  products) their documents need; their calls are counted by the emulator itself (its request
  counters and log, cleared before each run), which does not depend on how the code under test
  counts or names its steps, so the same figures can be taken of an older commit; metadata
  there is told by the route (settings, org, users). The deal triggers' first catch-up starts
  when they were turned on, so the parent changes every seeded deal once before it (not
  counted). They have no naive baseline and no computed minimum (NO_MINIMUM);
* the naive baseline (`--worker naive MODULE`) uses the same connectors, one record per call,
  no cursors: list ids, then per record read it, look it up on the other side (a Books list
  filtered by name / a CRM search) and write it, then the same from Books to CRM. It runs on a
  freshly reset emulator (same seed and sizes) over the first `--naive-cap` records of each
  module and is extrapolated per record to the full size (stated in the output).

The run stops by itself and always stops the emulator and the Prefect API it started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402  (after the path is set)
from bench.common import BOOKS_ORG, CLIENT_ID, CLIENT_SECRET, REFRESH  # noqa: E402

SEED = 7
RECORDS = ("customers", "vendors", "items")  # the modules with a naive baseline
# The document modules run after the record modules, whose links (accounts, vendors, products)
# their documents and deals need; their calls are counted by the emulator (its request log).
DOCUMENTS = ("transactions", "deal_triggers")
MODULES = RECORDS + DOCUMENTS
RUNS = ("initial", "incremental", "no change")
REAL_BOOKS_PER_MINUTE = 100  # real Books' limit per organization (docs/zoho-api-notes.md)
CRM_PAGE, CRM_WRITE = 200, 100
# What changes before the incremental run (1%): CRM module -> field -> new value prefix.
CHANGED_FIELD = {"Accounts": "Description", "Contacts": "Department", "Vendors": "Description",
                 "Products": "Description", "Quotes": "Subject", "Sales_Orders": "Subject",
                 "Invoices": "Subject", "Purchase_Orders": "Subject", "Deals": "Description"}
# The CRM modules of each benchmarked module (what the incremental run changes 1% of).
CRM_MODULES = {"customers": ("Accounts", "Contacts"), "vendors": ("Vendors",),
               "items": ("Products",),
               "transactions": ("Quotes", "Sales_Orders", "Invoices", "Purchase_Orders"),
               "deal_triggers": ("Deals",)}
# The dataset of a size N (`python -m bench --sizes`): N accounts with CONTACTS_PER_ACCOUNT
# contacts each, N / VENDORS_PER vendors, N products, N / DEALS_PER deals (and the documents the
# emulator seeds with them, see `documents`). This script alone runs N = 2,000.
CONTACTS_PER_ACCOUNT, VENDORS_PER, DEALS_PER = 2, 4, 4
# The deal triggers' settings: a draft quote at the proposal stage, accepted and invoiced when
# the deal is won (as `crmbooks configure deals` would store them).
DEAL_TRIGGERS = {"enabled": True, "mode": "quote", "create_stage": "Proposal/Price Quote",
                 "accept_stage": "Closed Won", "invoice_on_accept": True}
NAIVE_CAP = {"customers": 100, "vendors": 50, "items": 100}
HEAP_ENV = "CRMBOOKS_BENCH_HEAP"  # "1": the sync workers also trace the Python heap's peak
PREPARED = ":prepared"  # a run name suffix: the parent already made the incremental changes
KILLED = "killed:"  # a run name prefix: the child kills itself after that many Books writes
RERUN = "rerun after kill"  # the run after an initial customers sync killed mid-push


def sizes_for(customers: int) -> dict:
    """The CRM dataset of a benchmark size: accounts, vendors, products and deals (contacts
    and documents follow)."""
    return {"accounts": customers, "vendors": max(1, customers // VENDORS_PER),
            "products": customers, "deals": max(1, customers // DEALS_PER)}


def documents(sizes: dict) -> dict[str, int]:
    """The CRM documents the emulator seeds for these sizes (emulators/crm: its seed plan),
    each with 1 to 3 lines of seeded products, for seeded accounts or vendors."""
    deals = sizes["deals"]
    return {"Quotes": max(1, deals // 2) if deals else 0, "Sales_Orders": deals // 3,
            "Invoices": deals // 3, "Purchase_Orders": sizes["vendors"] // 3}


FULL = sizes_for(2000)


# ============================================================================================
# The parent: emulator, Prefect API, children, tables
# ============================================================================================


def emulator_flags(sizes: dict) -> list[str]:
    """Only the benchmark's records on the CRM side; Books starts empty (a first sync)."""
    return ["--seed", str(SEED), "--accounts", str(sizes["accounts"]),
            "--contacts-per-account", str(CONTACTS_PER_ACCOUNT), "--unassociated-contacts", "0",
            "--vendors", str(sizes["vendors"]), "--products", str(sizes["products"]),
            "--deals", str(sizes["deals"]), "--books-customers", "0", "--books-vendors", "0",
            "--books-items", "0"]


def reset_sizes(sizes: dict) -> dict:
    return {"seed": SEED, "accounts": sizes["accounts"],
            "contacts_per_account": CONTACTS_PER_ACCOUNT,
            "unassociated_contacts": 0, "vendors": sizes["vendors"],
            "products": sizes["products"], "deals": sizes["deals"], "books_customers": 0,
            "books_vendors": 0, "books_items": 0}


def crm_client(base: str, max_concurrency: int = 10):
    from crmbooks.connectors.zoho_crm import CrmClient

    return CrmClient(zoho_config(base, crm_max_concurrency=max_concurrency))


def zoho_config(base: str, **overrides):
    from pydantic import SecretStr

    from crmbooks.connectors.config import ZohoConfig

    values = dict(accounts_url=base, api_url=base, client_id=CLIENT_ID,
                  client_secret=SecretStr(CLIENT_SECRET), refresh_token=SecretStr(REFRESH),
                  books_org_id=BOOKS_ORG)
    values.update(overrides)
    return ZohoConfig(**values)


def pick_changes(base: str, module: str, fraction: float = 0.01) -> dict[str, list[str]]:
    """The ids of the CRM records to change before the incremental run (seeded choice)."""
    crm = crm_client(base)
    rng = random.Random(SEED)
    picks = {}
    for crm_module in CRM_MODULES[module]:
        pages = crm.iter_records(crm_module, ["Modified_Time"])
        ids = sorted(str(r["id"]) for page in pages for r in page)
        picks[crm_module] = sorted(rng.sample(ids, max(1, round(len(ids) * fraction))))
    crm.close()
    return picks


def inactive_products(base: str) -> int:
    """How many seeded CRM products are inactive (not counted): Books creates every item
    active (its create body has no status), so each one costs a mark-inactive call of its own,
    part of the initial sync's minimum."""
    crm = crm_client(base)
    count = sum(1 for page in crm.iter_records("Products", ["Product_Active"]) for r in page
                if r.get("Product_Active") is False)
    crm.close()
    return count


def touch_deals(base: str) -> None:
    """Change every deal once (not counted): the triggers' first catch-up starts when they
    were turned on (at connect), so the seeded deals, older, would trigger nothing."""
    crm = crm_client(base)
    ids = sorted(str(r["id"]) for page in crm.iter_records("Deals", ["Modified_Time"])
                 for r in page)
    crm.close()
    apply_changes(base, {"Deals": ids}, "initial")


def apply_changes(base: str, picks: dict[str, list[str]], label: str) -> dict:
    """Change one mapped field of each picked record through the CRM API (not counted).

    Deals are changed a second after the last run at the earliest: the deal triggers read the
    deals modified at or after their cursor, a whole second (If-Modified-Since), so a deal
    changed within the second the previous run wrote the quote ids back onto its deals would
    hold the cursor there and the next quiet run would read all those deals, and each one's
    Books documents, again (31 calls instead of 1 at N = 200), by the clock's chance."""
    if "Deals" in picks:
        time.sleep(1.0)
    crm = crm_client(base)
    parents = set()
    for crm_module, ids in picks.items():
        field = CHANGED_FIELD[crm_module]
        records = [{"id": i, field: f"bench {label} {i}"[:100]} for i in ids]
        failed = [r for r in crm.update(crm_module, records) if not r.ok]
        if failed:
            raise SystemExit(f"changing {crm_module} failed: {failed[:3]}")
        if crm_module == "Contacts":
            for i in ids:
                record = crm.get_record("Contacts", i, ["Account_Name"]) or {}
                parents.add(str((record.get("Account_Name") or {}).get("id")))
    crm.close()
    return {"parents": sorted(parents)}


def minimum(module: str, run: str, sizes: dict, picks: dict,
            parents: list[str], inactive: int = 0) -> dict | None:
    """The fewest data calls the APIs allow for this run, per side: reads and writes; None for
    the document modules (NO_MINIMUM says why).

    Reads: one page of 200 per changed CRM module (at least one, to learn nothing changed);
    Books: one page (contacts: sorted by last_modified_time, nothing changed there), but items
    have no modified filter or sort, so every run pages through all of them.
    Writes: Books one per customer (persons inline) / vendor / item, plus, in the items'
    initial run, one mark-inactive per `inactive` product (Books' item create takes no
    status); CRM: none (Books starts empty and is only changed by the sync).
    """
    if module in DOCUMENTS:
        return None
    pages = lambda n: max(1, math.ceil(n / CRM_PAGE))  # noqa: E731
    if module == "customers":
        accounts, contacts = sizes["accounts"], sizes["accounts"] * CONTACTS_PER_ACCOUNT
        if run == "initial":
            crm_reads, books_writes = pages(accounts) + pages(contacts), accounts
        elif run == "incremental":
            changed_accounts = set(picks["Accounts"])
            crm_reads = pages(len(changed_accounts)) + pages(len(picks["Contacts"]))
            books_writes = len(changed_accounts | set(parents))
        else:
            crm_reads, books_writes = 2, 0
        books_reads = 1
    else:
        n = sizes["vendors" if module == "vendors" else "products"]
        changed = len(next(iter(picks.values()))) if picks else 0
        crm_reads = pages(n if run == "initial" else changed if run == "incremental" else 0)
        books_writes = {"initial": n, "incremental": changed, "no change": 0}[run]
        if module == "items" and run == "initial":
            books_writes += inactive
        books_in_books = 0 if run == "initial" else n
        books_reads = pages(books_in_books) if module == "items" else 1
    return {"crm": {"reads": crm_reads, "writes": 0},
            "books": {"reads": books_reads, "writes": books_writes}}


NO_MINIMUM = ("not computed for transactions and deal triggers: their fewest calls hang on each "
              "seeded document's status and each deal's stage (a status change, a quote's "
              "acceptance or an invoice from it is a Books call of its own per document)")


def rerun_minimum(sizes: dict, side: str, written: int, before: dict, after: dict) -> dict:
    """The fewest data calls of the rerun after an initial customers sync was killed right
    after its `written`-th write to `side`, before it stored anything of that write's answer;
    `before` / `after`: what both sides held after the kill and after the rerun (`holdings`).

    The cursors did not move (the killed run had not finished): the source is listed again, a
    page per 200 records, and nothing is read one by one (what the killed run read in full is
    unchanged since). The target: one scan of what the killed run created there. Writes: what
    was never written, plus the last write, which the rerun cannot know was applied (an
    upsert, replayed). CRM → Books: a Books write per customer (persons inline). Books → CRM: a
    CRM upsert per 100 records of each CRM module, and, on each Books contact the rerun
    linked to its CRM twin, Zoho's own link field (one write each).
    """
    pages = lambda n: max(1, math.ceil(n / CRM_PAGE))  # noqa: E731
    accounts = sizes["accounts"]
    if side == "books":
        return {"crm": {"reads": pages(accounts) + pages(accounts * CONTACTS_PER_ACCOUNT),
                        "writes": 0},
                "books": {"reads": pages(written), "writes": accounts - written + 1}}
    crm = before["crm"]
    return {"crm": {"reads": sum(pages(n) for n in crm.values()),
                    "writes": sum(math.ceil((after["crm"][m] - n) / CRM_WRITE)
                                  for m, n in crm.items())},
            "books": {"reads": pages(before["books"]),
                      "writes": after["marked"] - before["marked"]}}


def holdings(base: str) -> dict:
    """What the emulator holds (not counted: the worker clears the counters): CRM accounts and
    contacts, Books customers, and those of them that carry Zoho's own CRM link."""
    from crmbooks.connectors.zoho_books import BooksClient

    crm, books = crm_client(base), BooksClient(zoho_config(base))
    try:
        counts = {m: sum(len(page) for page in crm.iter_records(m, ["Modified_Time"]))
                  for m in ("Accounts", "Contacts")}
        contacts = [r for page in books.iter_pages("contacts", {"contact_type": "customer"})
                    for r in page]
    finally:
        crm.close()
        books.close()
    return {"crm": counts, "books": len(contacts),
            "marked": sum(1 for r in contacts if r.get("is_linked_with_zohocrm"))}


def kill_runs(base: str, env: dict, sizes: dict, side: str) -> dict:
    """The customers initial sync on a fresh emulator and home, killed (SIGKILL) right after
    half of its writes to `side`, then run again to the end: the entry of that rerun.

    `side` "books": the CRM holds the customers, Books is empty (one Books write each);
    "crm": Books holds them (no persons), the CRM is empty (a CRM upsert per 100)."""
    reset = reset_sizes(sizes)
    if side == "crm":
        reset.update(accounts=0, books_customers=sizes["accounts"], deals=0)
    httpx.post(f"{base}/__emulator__/reset", json=reset, timeout=600).raise_for_status()
    common.raise_limits(base)
    home = tempfile.mkdtemp(prefix="bench-kill-")
    env = {**env, "CRMBOOKS_HOME": f"{home}/crmbooks",
           "CRMBOOKS_DATABASE_URL": f"sqlite:///{home}/crmbooks.db"}
    connect(base, env)
    per_call = 1 if side == "books" else CRM_WRITE
    written = max(1, sizes["accounts"] // per_call // 2)
    timeout = child_timeout(dataset("customers", sizes))
    started = time.monotonic()
    run_child(["sync", "customers", base, f"{KILLED}{side}:{written}"], env, timeout,
              killed=True)
    print(f"  customers killed after {written} {side} writes: process "
          f"{time.monotonic() - started:.1f} s", flush=True)
    before = holdings(base)
    run = f"{RERUN} ({side})"
    result = run_child(["sync", "customers", base, run], env, timeout)["runs"][run]
    after = holdings(base)
    print(f"  customers {run}: {result['wall']:.1f} s, cpu {result['cpu']:.1f} s, "
          f"peak RSS {result['maxrss_mb']:.0f} MB, {result['summary']['counts']}", flush=True)
    # the records of the whole sync: CRM accounts and contacts, or Books customers and persons
    records = sizes["accounts"] * (1 + CONTACTS_PER_ACCOUNT) if side == "books" \
        else sum(after["crm"].values())
    return {"module": "customers", "run": run, "result": result,
            "mins": rerun_minimum(sizes, side, written, before, after), "records": records,
            "dataset": records}


def run_child(args: list[str], env: dict, timeout: float, killed: bool = False) -> dict:
    """Run `bench_sync.py --worker …` in a child process; returns the JSON it wrote (with
    `killed`, the child must die by SIGKILL, and nothing is returned)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = out.name
    try:
        done = subprocess.run([sys.executable, __file__, "--worker", *args, "--out", path],
                              cwd=REPO, env=env, timeout=timeout, capture_output=True,
                              text=True)
        if killed and done.returncode == -9:
            return {}
        if done.returncode != 0 or killed:
            raise SystemExit(f"worker {args} failed ({done.returncode}):\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
        return json.loads(Path(path).read_text())
    finally:
        Path(path).unlink(missing_ok=True)


def classify(calls: dict[str, int], start_calls: dict[str, int]) -> dict:
    """Calls per side split into reads / writes / meta (start-run) / token."""
    out = {side: {"reads": 0, "writes": 0, "meta": 0, "token": 0} for side in ("crm", "books")}
    for key, n in calls.items():
        side_name, method, path = key.split(" ", 2)
        side = "books" if key.startswith("B ") else "crm"
        system = side_name if side == "crm" else method
        if side == "books":
            method, path = path.split(" ", 1)
        meta = start_calls.get(key, 0)
        if system == "accounts" or "oauth" in path:
            out[side]["token"] += n
            continue
        out[side]["meta"] += meta
        rest = n - meta
        read = method == "GET" or path.endswith("/coql")
        out[side]["reads" if read else "writes"] += rest
    return out


def data_calls(entry: dict) -> dict:
    """A pipeline entry's calls per side split into reads / writes / meta / token: the record
    modules' as their clients counted them, the document modules' as the emulator did."""
    if entry["module"] in DOCUMENTS:
        return classify_served(entry["result"]["served"])
    return classify(entry["result"]["calls"], entry["result"]["start_calls"])


# The first path segment after the API version of the metadata endpoints (fields, modules,
# layouts, views, the organization, users, currencies), as the emulator names its routes.
METADATA = {"settings", "org", "organizations", "users"}


def classify_served(served: dict[str, int]) -> dict:
    """Requests per emulator route ("GET /crm/v8/{module}") split like `classify`; metadata is
    told by its route, not by the start-run task, and token calls are put on the CRM side
    (the emulator's accounts server does not know which client asked)."""
    out = {side: {"reads": 0, "writes": 0, "meta": 0, "token": 0} for side in ("crm", "books")}
    for key, n in served.items():
        method, path = key.split(" ", 1)
        side = "books" if path.startswith("/books/") else "crm"
        parts = path.split("/")
        if "/oauth/" in path:
            kind = "token"
        elif len(parts) > 3 and parts[3] in METADATA:
            kind = "meta"
        else:
            kind = "reads" if method == "GET" or path.endswith("/coql") else "writes"
        out[side][kind] += n
    return out


def served_calls(base: str, clear: bool = False) -> dict:
    """The emulator's requests per route and its request log (last 5,000), then, with
    `clear`, both zeroed; its test controls are not counted."""
    stats = httpx.get(f"{base}/__emulator__/stats", timeout=60).json()["requests"]
    log = httpx.get(f"{base}/__emulator__/log", params={"limit": 5000}, timeout=60).json()
    if clear:
        httpx.post(f"{base}/__emulator__/stats/clear", timeout=60).raise_for_status()
    return {"requests": stats, "log": [f"{r['method']} {r['path']} {r['status']}"
                                       for r in log["requests"]]}


def least(mins: dict | None) -> int | None:
    """The minimum data calls of both sides (None: not computed)."""
    return None if mins is None else sum(mins[s]["reads"] + mins[s]["writes"] for s in mins)


def ratio(calls: int, mins: dict | None) -> str:
    """calls/minimum, or "-" when the minimum is not computed."""
    return "-" if mins is None else f"{calls / max(1, least(mins)):.2f}"


def sync_rows(entry: dict) -> dict:
    """The detailed row of one pipeline run (reads/writes per side, meta, token, pacing)."""
    module, run, result, mins, records = (entry[k] for k in ("module", "run", "result", "mins",
                                                             "records"))
    split = data_calls(entry)
    data = sum(split[s]["reads"] + split[s]["writes"] for s in split)
    books_all = sum(split["books"].values())
    return {
        "module": module, "run": run, "sync": "pipeline",
        "CRM r/w (min)": f"{split['crm']['reads']}/{split['crm']['writes']} "
                         + (f"({mins['crm']['reads']}/{mins['crm']['writes']})" if mins
                            else "(-)"),
        "Books r/w (min)": f"{split['books']['reads']}/{split['books']['writes']} "
                           + (f"({mins['books']['reads']}/{mins['books']['writes']})" if mins
                              else "(-)"),
        "meta C/B": f"{split['crm']['meta']}/{split['books']['meta']}",
        "token": split["crm"]["token"] + split["books"]["token"],
        "calls/min": ratio(data, mins),
        "wall s": f"{result['wall']:.1f}",
        "rec/s": f"{records / result['wall']:.1f}" if records else "-",
        "peak RSS MB": f"{result['maxrss_mb']:.0f} ({result['rss_before_mb']:.0f})",
        "Books @100/min": f"{books_all / REAL_BOOKS_PER_MINUTE:.1f} min",
    }


def naive_figures(entry: dict) -> dict:
    """A capped naive run extrapolated per record to the module's full size.

    Calls and seconds scale by full / sampled records, except what the full-size run does once,
    whatever the sample: its CRM list pages (counted at the full size) and the seconds spent
    paging through every contact to find the sampled accounts' ones (not scaled); token
    requests are not scaled either.
    """
    result = entry["result"]
    scale = entry["full"] / max(1, result["records"])
    list_key = "crm GET /crm/v8/{module}"
    calls = {k: (entry["pages"] if k == list_key else v if "oauth" in k else v * scale)
             for k, v in result["calls"].items()}
    split = classify(calls, {})
    crm = {k: round(v) for k, v in split["crm"].items()}
    books = {k: round(v) for k, v in split["books"].items()}
    once = result.get("list_wall", 0.0)
    return {"scale": scale, "crm": crm, "books": books,
            "data": crm["reads"] + crm["writes"] + books["reads"] + books["writes"],
            "token": crm["token"] + books["token"],
            "wall": (result["wall"] - once) * scale + once,
            "cpu": result.get("cpu", 0.0) * scale}


def naive_row(entry: dict) -> dict:
    """The detailed row of one naive run, extrapolated (see naive_figures)."""
    naive, mins, records = naive_figures(entry), entry["mins"], entry["records"]
    crm, books = naive["crm"], naive["books"]
    return {
        "module": entry["module"], "run": entry["run"], "sync": f"naive (x{naive['scale']:.0f})",
        "CRM r/w (min)": f"{crm['reads']}/{crm['writes']}",
        "Books r/w (min)": f"{books['reads']}/{books['writes']}",
        "meta C/B": "0/0", "token": naive["token"],
        "calls/min": f"{naive['data'] / max(1, least(mins)):.2f}",
        "wall s": f"{naive['wall']:.1f}",
        "rec/s": f"{records / naive['wall']:.1f}" if records else "-",
        "peak RSS MB": f"{entry['result']['maxrss_mb']:.0f}",
        "Books @100/min": f"{(books['reads'] + books['writes']) / REAL_BOOKS_PER_MINUTE:.1f} min",
    }


def compact_row(size: int, entry: dict, naive: dict | None) -> dict:
    """One row of `python -m bench`'s table: a pipeline run and its naive baseline side by side.

    Per record means per record the run had to sync (the dataset at first, then the changed
    ones; "-" for the run with nothing changed). Calls are data calls of both sides; metadata
    and token requests are shown apart.
    """
    result, records = entry["result"], entry["records"]
    split = data_calls(entry)
    data = sum(split[s]["reads"] + split[s]["writes"] for s in split)
    per = (lambda v, fmt: format(v / records, fmt) if records else "-")  # noqa: E731
    row = {
        "N": f"{size:,}", "module": entry["module"], "run": entry["run"],
        "records": f"{records:,}",
        "calls (min)": f"{data:,} ({least(entry['mins']):,})"
                       if entry["mins"] else f"{data:,} (-)",
        "meta+token": f"{split['crm']['meta'] + split['books']['meta']}"
                      f"+{split['crm']['token'] + split['books']['token']}",
        "calls/min": ratio(data, entry["mins"]),
        "calls/rec": per(data, ".3f"),
        "wall s": f"{result['wall']:.1f}",
        "CPU s": f"{result['cpu']:.1f}",
        "CPU ms/rec": per(result["cpu"] * 1000, ".2f"),
        "peak RSS MB (run)": f"{result['maxrss_mb']:.0f} "
                             f"(+{result['maxrss_mb'] - result['rss_before_mb']:.0f})",
    }
    if result.get("heap_mb") is not None:
        row["heap peak MB"] = f"{result['heap_mb']:.0f}"
    if naive is not None:
        figures = naive_figures(naive)
        row["naive calls (/rec)"] = (f"{figures['data']:,} ({figures['data'] / records:.2f})"
                                     if records else f"{figures['data']:,}")
        row["naive wall s"] = f"{figures['wall']:.1f}"
    return row


def dataset(module: str, sizes: dict) -> int:
    """The module's CRM records (customers: accounts and their contacts)."""
    return {"customers": sizes["accounts"] * (1 + CONTACTS_PER_ACCOUNT),
            "vendors": sizes["vendors"], "items": sizes["products"],
            "transactions": sum(documents(sizes).values()),
            "deal_triggers": sizes["deals"]}[module]


def needed(module: str, run: str, sizes: dict, picks: dict) -> int:
    """Records the run had to sync: the whole dataset at first, then the changed ones."""
    if run == "initial":
        return dataset(module, sizes)
    return sum(len(ids) for ids in picks.values()) if run == "incremental" else 0


def list_pages(module: str, sizes: dict) -> int:
    """CRM list pages of the whole dataset (what the naive sync pages through for ids)."""
    pages = lambda n: math.ceil(n / CRM_PAGE)  # noqa: E731
    return {"customers": pages(sizes["accounts"])
            + pages(sizes["accounts"] * CONTACTS_PER_ACCOUNT),
            "vendors": pages(sizes["vendors"]), "items": pages(sizes["products"])}[module]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller sizes (smoke run)")
    parser.add_argument("--markdown", type=Path, help="also write the tables as Markdown here")
    parser.add_argument("--naive-cap", type=float, default=1.0,
                        help="scale the naive baseline's record cap (default 1: 100/50/100)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--details", action="store_true", help="print calls per endpoint")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.out)

    divisor = 10 if args.quick else 1
    sizes = {k: v // divisor for k, v in FULL.items()}
    caps = naive_caps(args.naive_cap, divisor)
    info = common.machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    started = time.monotonic()
    pipeline, naive, details = measure(sizes, caps, args.details, per_run=not args.quick,
                                       naive=not args.no_naive)
    rows = [sync_rows(e) for e in pipeline] + [naive_row(e) for e in naive]
    rows.sort(key=lambda r: (MODULES.index(r["module"]), RUNS.index(r["run"]),
                             r["sync"] != "pipeline"))
    print()
    print(common.table(rows, markdown=False))
    for line in details:
        print(line)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if args.markdown:
        text = ["Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "",
                f"Sizes: {sizes}; naive baseline capped at {caps} records per module and "
                "extrapolated per record.", "",
                common.table(rows, markdown=True, text_columns=("module", "run", "sync")), "",
                *details, ""]
        args.markdown.write_text("\n".join(text), encoding="utf-8")
        print(f"wrote {args.markdown}")
    return 0


def naive_caps(factor: float = 1.0, divisor: int = 1) -> dict:
    """Records per module the naive baseline runs before it is extrapolated."""
    return {k: max(10, int(v * factor) // divisor) for k, v in NAIVE_CAP.items()}


def measure(sizes: dict, caps: dict, show_details: bool = False, per_run: bool = True,
            naive: bool = True, modules: tuple[str, ...] = MODULES, kill: bool = False,
            ) -> tuple[list[dict], list[dict], list[str]]:
    """The whole benchmark at one size: a fresh emulator seeded with `sizes`, a fresh crmbooks
    home and Prefect API, the three pipeline runs of each module, then the naive baseline.

    With `kill`, then the customers initial sync killed at half of its Books writes and its
    rerun (`kill_runs`). Returns (pipeline entries, naive entries, calls-per-endpoint lines);
    an entry holds the module, the run, the worker's result, the minimum calls and the records
    to sync.
    """
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as home:
        env = child_env(home)
        with common.subprocess_emulator(emulator_flags(sizes), start_timeout=600) as base:
            limits = common.raise_limits(base)
            print(f"emulator: subprocess on {base}, sizes {sizes}; limits raised: "
                  f"{ {k: limits[k] for k in ('books_rate_limit', 'books_daily_limit')} }",
                  flush=True)
            pipeline, details = pipeline_runs(base, env, sizes, show_details, per_run, modules,
                                              kill)
            baseline = naive_runs(base, env, sizes, caps, modules) if naive else []
    return pipeline, baseline, details


def child_env(home: str) -> dict:
    return {**os.environ, "CRMBOOKS_HOME": f"{home}/crmbooks",
            "CRMBOOKS_DATABASE_URL": f"sqlite:///{home}/crmbooks.db",
            "CRMBOOKS_CLIENT_SECRET": CLIENT_SECRET, "CRMBOOKS_REFRESH_TOKEN": REFRESH,
            "PREFECT_HOME": f"{home}/prefect", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1", "PREFECT_LOGGING_LEVEL": "WARNING", "NO_COLOR": "1"}


def child_timeout(records: int) -> float:
    """Seconds a child may take: generous, growing with the records it syncs (busy machine)."""
    return 900 + 0.2 * records


def pipeline_runs(base: str, env: dict, sizes: dict, show_details: bool, per_run: bool,
                  modules: tuple[str, ...] = MODULES, kill: bool = False,
                  ) -> tuple[list[dict], list[str]]:
    """Connect once (as `crmbooks connect` does), then 3 runs per module: a child process per
    run (`per_run`), or one per module (--quick: peak RSS is then the module's running max)."""
    # The harness's server process inherits this process's environment: this size's home.
    saved = {k: os.environ.get(k) for k in env if k.startswith(("PREFECT_", "DO_NOT"))}
    os.environ.update({k: env[k] for k in saved})
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    entries, details = [], []
    connect(base, env)
    started = time.monotonic()
    with prefect_test_harness(server_startup_timeout=120), restored_environ(saved):
        print(f"  Prefect API (prefect_test_harness) up after {time.monotonic() - started:.0f} s",
              flush=True)
        env = {**env, "PREFECT_API_URL": PREFECT_API_URL.value()}
        for module in modules:
            results, picks, parents = {}, {}, []
            inactive = inactive_products(base) if module == "items" else 0
            for group in ([[r] for r in RUNS] if per_run else [list(RUNS)]):
                child_started = time.monotonic()
                if module == "deal_triggers" and "initial" in group:
                    touch_deals(base)
                if group == ["incremental"]:
                    # Made here, not in the child: listing every id would be its peak RSS.
                    picks = pick_changes(base, module)
                    parents = apply_changes(base, picks, "pipeline")["parents"]
                    group = ["incremental" + PREPARED]
                answer = run_child(["sync", module, base, *group], env,
                                   timeout=child_timeout(dataset(module, sizes) * len(group)))
                print(f"  {module} {', '.join(group)}: process "
                      f"{time.monotonic() - child_started:.1f} s", flush=True)
                results.update(answer["runs"])
                picks, parents = answer["picks"] or picks, answer["parents"] or parents
            for run in RUNS:
                result = results[run]
                entries.append({"module": module, "run": run, "result": result,
                                "mins": minimum(module, run, sizes, picks, parents,
                                                inactive),
                                "records": needed(module, run, sizes, picks),
                                "dataset": dataset(module, sizes)})
                print(f"  {module} {run}: {result['wall']:.1f} s, cpu {result['cpu']:.1f} s, "
                      f"peak RSS {result['maxrss_mb']:.0f} MB, {result['summary']['counts']}",
                      flush=True)
                if show_details:
                    details.append(f"- {module} {run}: " + ", ".join(
                        f"{k} {v}" for k, v in result["calls"].items()))
        if kill:  # last: it resets the emulator, which the other modules' runs build on
            entries += [kill_runs(base, env, sizes, side) for side in ("books", "crm")]
    return entries, details


@contextlib.contextmanager
def restored_environ(saved: dict[str, str | None]):
    """Put these variables back as they were on the way out (None: unset them)."""
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def connect(base: str, env: dict) -> None:
    """Store the connection and the customers settings, in a child (like `crmbooks connect`)."""
    run_child(["connect", base], env, timeout=120)


def naive_runs(base: str, env: dict, sizes: dict, caps: dict,
               modules: tuple[str, ...] = MODULES) -> list[dict]:
    """The naive baseline on a freshly reset emulator with the same seed and sizes."""
    httpx.post(f"{base}/__emulator__/reset", json=reset_sizes(sizes),
               timeout=600).raise_for_status()
    common.raise_limits(base)
    entries = []
    for module in (m for m in modules if m in RECORDS):
        # One child runs the three naive runs (and makes the changes in between).
        results = run_child(["naive", module, base, str(caps[module])], env,
                            timeout=child_timeout(dataset(module, sizes)))
        for run in RUNS:
            result = {**results["runs"][run], "maxrss_mb": results["maxrss_mb"]}
            entries.append({"module": module, "run": run, "result": result,
                            "mins": minimum(module, run, sizes, results["picks"],
                                            results["parents"]),
                            "records": needed(module, run, sizes, results["picks"]),
                            "full": dataset(module, sizes), "pages": list_pages(module, sizes)})
            print(f"  naive {module} {run}: {result['records']} records, "
                  f"{result['wall']:.1f} s", flush=True)
    return entries


# ============================================================================================
# Workers (child processes)
# ============================================================================================


def worker(argv: list[str], out: str) -> int:
    kind, rest = argv[0], argv[1:]
    if kind == "connect":
        result = worker_connect(rest[0])
    elif kind == "sync":
        result = worker_sync(rest[0], rest[1], rest[2:])
    else:
        result = worker_naive(rest[0], rest[1], int(rest[2]))
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps(result, default=str))
    return 0


def worker_connect(base: str) -> dict:
    from crmbooks.connect import store_connection, verify
    from crmbooks.runtime import open_store
    from crmbooks.store import Store

    zoho = zoho_config(base)
    store = open_store()
    store_connection(store, zoho, verify(zoho))
    settings = Store(store.engine, org_id=BOOKS_ORG)
    settings.save_settings(
        "customers", {"crm_module": "accounts+contacts", "scope": "both", "duplicates": "skip"})
    settings.save_settings("transactions", {"enabled": True, "modules": [
        "estimates", "salesorders", "invoices", "purchaseorders"]})
    settings.save_settings("deals", DEAL_TRIGGERS)
    return {}


def worker_sync(module: str, base: str, runs: list[str]) -> dict:
    """Runs of the module's flow in this process (changes made before an incremental one)."""
    import importlib

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    import flows.pipeline as pipeline
    from crmbooks.connectors.http import CallCounter
    from crmbooks.connectors.zoho_books import BooksClient
    from crmbooks.runtime import get_runtime

    # Python heap peak per run (tracemalloc): only on request, it slows allocation-heavy code.
    heap = os.environ.get(HEAP_ENV) == "1"
    runtime = get_runtime()
    # The emulator's Books limit is raised; the client must not pace itself to 100/minute.
    runtime.books = BooksClient(runtime.config.model_copy(update={
        "books_requests_per_minute": 10**9, "books_max_concurrency": 10}))

    def calls() -> dict[str, int]:
        return {**runtime.crm.calls.snapshot(),
                **{f"B {k}": v for k, v in runtime.books.calls.snapshot().items()}}

    marks: dict[str, dict] = {}
    start_task = pipeline.start_run

    def start_run(*args, **kwargs):
        context = start_task(*args, **kwargs)
        marks["start"] = calls()
        return context

    pipeline.start_run = start_run
    for run in runs:
        if run.startswith(KILLED):
            side, count = run.removeprefix(KILLED).split(":")
            die_after_writes(side, int(count))
    steps: dict[str, dict] = {}
    if heap:
        trace_steps(pipeline, steps)
    flow = getattr(importlib.import_module(f"flows.{module}"), f"sync_{module}")
    out: dict = {"runs": {}, "picks": {}, "parents": []}
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        warm_up()  # a long-lived worker pays Prefect's first-flow costs once, not per run
        for run in runs:
            if run == "incremental":  # (":prepared": the parent made the changes)
                out["picks"] = pick_changes(base, module)
                out["parents"] = apply_changes(base, out["picks"], "pipeline")["parents"]
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            if heap:
                tracemalloc.start()
            served_calls(base, clear=True)  # the emulator counts this run alone
            before, cpu_before = calls(), cpu_seconds()
            started = time.perf_counter()
            state = flow(return_state=True)
            wall = time.perf_counter() - started
            cpu = cpu_seconds() - cpu_before
            heap_peak = tracemalloc.get_traced_memory()[1] / 2**20 if heap else None
            tracemalloc.stop()
            served = served_calls(base)
            try:
                summary = state.result()
            except Exception as exc:  # records failed: the summary rides on the exception
                summary = getattr(exc, "summary", None)
                if summary is None:
                    raise
            out["runs"][run.removesuffix(PREPARED)] = {
                "wall": wall, "cpu": cpu, "heap_mb": heap_peak, "steps": dict(steps),
                "calls": CallCounter.diff(calls(), before), "served": served["requests"],
                "served_log": served["log"],
                "start_calls": CallCounter.diff(marks.get("start", {}), before),
                "summary": summary, "rss_before_mb": rss_before,
                "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    return out


def die_after_writes(side: str, count: int) -> None:
    """Make this process SIGKILL itself right after `side` accepted its `count`-th upsert
    (Books: a record; CRM: a batch): the remote applied the write and nothing of its answer
    was stored (a kill in mid-push)."""
    import signal

    from crmbooks.connectors.zoho_books import BooksClient
    from crmbooks.connectors.zoho_crm import CrmClient

    owner, name = ((BooksClient, "upsert_by_custom_field") if side == "books"
                   else (CrmClient, "upsert"))
    original, seen = getattr(owner, name), [0]

    def counted(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if any(r.ok for r in (result if isinstance(result, list) else [result])):
            seen[0] += 1
            if seen[0] >= count:
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, counted)


# The pipeline's steps (flows.pipeline names) whose Python heap --heap reports.
STEPS = ("fetch_crm", "fetch_books", "map_records", "dedupe", "plan_changes", "push",
         "report")


def trace_steps(pipeline, out: dict) -> None:
    """Wrap each step of flows.pipeline to record, in `out[step]`, the Python heap still live
    when it returned (what the run holds from then on) and its peak during the step."""
    for name in STEPS:
        def traced(*args, _step=getattr(pipeline, name), _name=name, **kwargs):
            tracemalloc.reset_peak()
            value = _step(*args, **kwargs)
            live, peak = tracemalloc.get_traced_memory()
            out[_name] = {"live_mb": live / 2**20, "peak_mb": peak / 2**20}
            return value

        setattr(pipeline, name, traced)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all its threads; not its children,
    not the emulator's nor the Prefect API's process)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def warm_up() -> None:
    """One trivial flow with one task: Prefect's client, API and task runner get going."""
    from prefect import flow, task

    @task
    def nothing() -> int:
        return 0

    @flow(name="bench-warm-up")
    def warm() -> int:
        return nothing()

    warm()


# -------------------------------------------------------------------------- the naive sync


def worker_naive(module: str, base: str, cap: int) -> dict:
    """The three runs of the naive sync of one module (changes made before the second)."""
    runs, picks, parents = {}, {}, []
    for run in RUNS:
        if run == "incremental":
            picks = pick_changes(base, module)
            parents = apply_changes(base, picks, "naive")["parents"]
        runs[run] = naive_run(module, base, cap)
    return {"runs": runs, "picks": picks, "parents": parents}


def naive_run(module: str, base: str, cap: int) -> dict:
    """Per record: read it, look it up on the other side, write it; no batches, no cursors."""
    from crmbooks.connectors.zoho_books import BooksClient
    from crmbooks.connectors.zoho_crm import CrmClient

    config = zoho_config(base, books_requests_per_minute=10**9)
    crm, books = CrmClient(config), BooksClient(config)
    started, cpu_before = time.perf_counter(), cpu_seconds()
    listing = {"wall": 0.0}
    records, written = {"customers": naive_customers, "vendors": naive_vendors,
                        "items": naive_items}[module](crm, books, cap, listing)
    wall = time.perf_counter() - started
    calls = {**crm.calls.snapshot(), **{f"B {k}": v for k, v in books.calls.snapshot().items()}}
    crm.close()
    books.close()
    return {"wall": wall, "cpu": cpu_seconds() - cpu_before, "list_wall": listing["wall"],
            "calls": calls, "records": records, "written": written}


def _ids(crm, module: str, cap: int, fields=("Modified_Time",)) -> list[dict]:
    """The first `cap` records' ids (the naive sync lists them 200 per page too)."""
    out = []
    for page in crm.iter_records(module, list(fields)):
        out += page
        if len(out) >= cap:
            break
    return out[:cap]


def _books_find(books, resource: str, name: str, extra: dict) -> dict | None:
    key = "contact_name" if resource == "contacts" else "name"
    for page in books.iter_pages(resource, {**extra, key: name}):
        return page[0]
    return None


def _write_books(books, resource: str, id_field: str, found: dict | None, body: dict) -> bool:
    if found:
        return books.update(resource, str(found[id_field]), body).ok
    return books.create(resource, body).ok


def naive_customers(crm, books, cap: int, listing: dict) -> tuple[int, int]:
    """Accounts to Books customers, contacts to their persons, then Books back to CRM.

    The sampled accounts' contacts are found by paging through every contact: done once
    whatever the sample, so its seconds (`listing["wall"]`) are not extrapolated."""
    written = 0
    accounts = _ids(crm, "Accounts", cap)
    names = {}
    for row in accounts:
        record = crm.get_record("Accounts", row["id"], ["Account_Name", "Phone", "Description",
                                                         "Billing_City"]) or {}
        name = record.get("Account_Name") or row["id"]
        names[row["id"]] = name
        found = _books_find(books, "contacts", name, {"contact_type": "customer"})
        body = {"contact_name": name, "company_name": name, "contact_type": "customer",
                "notes": record.get("Description") or "",
                "billing_address": {"city": record.get("Billing_City") or ""}}
        written += _write_books(books, "contacts", "contact_id", found, body)
    listed = time.perf_counter()
    contacts = [c for page in crm.iter_records("Contacts", ["id", "Account_Name"])
                for c in page if str((c.get("Account_Name") or {}).get("id")) in names]
    listing["wall"] = time.perf_counter() - listed
    for row in contacts:
        record = crm.get_record("Contacts", row["id"], ["First_Name", "Last_Name", "Email",
                                                         "Department", "Account_Name"]) or {}
        parent_name = names[str((record.get("Account_Name") or {}).get("id"))]
        parent = _books_find(books, "contacts", parent_name, {"contact_type": "customer"})
        if parent is None:
            continue
        body = {"first_name": record.get("First_Name") or "",
                "last_name": record.get("Last_Name") or "x", "email": record.get("Email"),
                "department": record.get("Department") or ""}
        persons = books.contact_persons(str(parent["contact_id"]))
        same = next((p for p in persons if p.get("email") == body["email"]), None)
        if same:
            result = books.update_contact_person(str(same["contact_person_id"]),
                                                 str(parent["contact_id"]), body)
        else:
            result = books.create_contact_person(str(parent["contact_id"]), body)
        written += result.ok
    written += _books_to_crm(crm, books, "Accounts", "Account_Name", "customer")
    return len(accounts) + len(contacts), written


def naive_vendors(crm, books, cap: int, listing: dict) -> tuple[int, int]:
    written = 0
    vendors = _ids(crm, "Vendors", cap)
    for row in vendors:
        record = crm.get_record("Vendors", row["id"], ["Vendor_Name", "Email", "Description"])
        name = (record or {}).get("Vendor_Name") or row["id"]
        found = _books_find(books, "contacts", name, {"contact_type": "vendor"})
        body = {"contact_name": name, "company_name": name, "contact_type": "vendor",
                "notes": (record or {}).get("Description") or ""}
        written += _write_books(books, "contacts", "contact_id", found, body)
    written += _books_to_crm(crm, books, "Vendors", "Vendor_Name", "vendor")
    return len(vendors), written


def naive_items(crm, books, cap: int, listing: dict) -> tuple[int, int]:
    written = 0
    products = _ids(crm, "Products", cap)
    for row in products:
        record = crm.get_record("Products", row["id"], ["Product_Name", "Unit_Price",
                                                         "Description"]) or {}
        name = record.get("Product_Name") or row["id"]
        found = _books_find(books, "items", name, {})
        body = {"name": name, "rate": record.get("Unit_Price") or 0,
                "description": record.get("Description") or ""}
        written += _write_books(books, "items", "item_id", found, body)
    written += _books_to_crm(crm, books, "Products", "Product_Name", None)
    return len(products), written


def _books_to_crm(crm, books, module: str, name_field: str, contact_type: str | None) -> int:
    """The other direction: every Books record read, searched in CRM, created if missing."""
    from crmbooks.connectors.zoho_crm import criterion

    resource = "contacts" if contact_type else "items"
    id_field, name_key = ("contact_id", "contact_name") if contact_type else ("item_id", "name")
    written = 0
    params = {"contact_type": contact_type} if contact_type else {}
    for page in books.iter_pages(resource, params):
        for row in page:
            record = books.get(resource, str(row[id_field])) or row
            name = record.get(name_key) or ""
            hits = [r for p in crm.search(module, criteria=criterion(name_field, "equals", name),
                                          fields=[name_field]) for r in p]
            if not hits:
                written += crm.upsert(module, [{name_field: name}])[0].ok
    return written


if __name__ == "__main__":
    sys.exit(main())
