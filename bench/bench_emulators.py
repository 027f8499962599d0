"""How fast are the local Zoho emulators? Requests per second for the calls a sync makes most.

Later benchmarks (sync throughput, connector pacing) run against these emulators; this one shows
the emulators are not their bottleneck. It starts the emulator as a separate process (so the
client threads here do not share its GIL), raises its rate limits so nothing answers 429, and
sends a fixed, bounded number of requests from a few keep-alive client threads:

  crm-list      GET  /crm/v8/Accounts?fields=<10 fields>&per_page=200   (a 200-record page)
  books-list    GET  /books/v3/contacts?per_page=200                    (a 200-record page)
  crm-upsert    POST /crm/v8/Accounts/upsert  with 100 records          (half insert, half update)
                matched on Account_Name (the system duplicate check), and again
                matched on Books_Id__c (a unique custom field: crm-upsert-unique)
  books-create  POST /books/v3/contacts       with one contact

and prints requests/s, records/s and p50/p95 latency per workload, plus the machine it ran on.
`--in-process` runs the same workloads against an emulator on a thread of this process too, for
comparison. The run ends by itself and always stops the emulator it started.

    .venv/bin/python bench/bench_emulators.py                  # defaults: about a minute
    .venv/bin/python bench/bench_emulators.py --quick          # a smoke run, a few seconds
    .venv/bin/python bench/bench_emulators.py --in-process --markdown /tmp/emulators.md
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402  (after the path is set)
from bench.common import CLIENT_ID, CLIENT_SECRET, NO_LIMITS, REFRESH, machine  # noqa: E402

# Ten Accounts fields of the usual kinds: text, lookup (Owner), picklist, number, currency, audit.
CRM_FIELDS = ("Account_Name,Owner,Phone,Website,Industry,Employees,Annual_Revenue,"
              "Billing_City,Billing_Country,Modified_Time")


# --------------------------------------------------------------------------------------------
# Starting and stopping the emulator
# --------------------------------------------------------------------------------------------


def size_flags(args) -> list[str]:
    return ["--accounts", str(args.accounts), "--books-customers", str(args.books_customers),
            "--seed", "7"]


@contextlib.contextmanager
def subprocess_emulator(args) -> Iterator[str]:
    """`python -m emulators` on a free port; yields its base URL, always stops it."""
    with common.subprocess_emulator(size_flags(args), args.start_timeout) as base_url:
        yield base_url


@contextlib.contextmanager
def in_process_emulator(args) -> Iterator[str]:
    """The same emulator on a thread of this process (shares the GIL with the clients)."""
    sys.path.insert(0, str(REPO))
    from emulators import EmulatorConfig, EmulatorServer, Sizes

    config = EmulatorConfig(seed=7, sizes=Sizes(accounts=args.accounts,
                                                books_customers=args.books_customers))
    with EmulatorServer(config) as server:
        yield server.base_url


# --------------------------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    threads: int
    wall_s: float
    records: int
    latencies_ms: list[float]
    failures: dict[int, int] = field(default_factory=dict)

    def row(self) -> dict:
        lat = sorted(self.latencies_ms)
        return {
            "workload": self.name, "requests": self.requests, "threads": self.threads,
            "wall s": f"{self.wall_s:.2f}",
            "req/s": f"{self.requests / self.wall_s:.0f}",
            "records/s": f"{self.records / self.wall_s:.0f}",
            "p50 ms": f"{percentile(lat, 50):.1f}", "p95 ms": f"{percentile(lat, 95):.1f}",
            "errors": sum(self.failures.values()),
        }


def percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return float("nan")
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(pct) - 1]


# A request maker gets (client, index, context) and returns (response, records it carried).
Maker = Callable[[httpx.Client, int, dict], tuple[httpx.Response, int]]


def crm_list(client: httpx.Client, i: int, ctx: dict) -> tuple[httpx.Response, int]:
    page = i % ctx["crm_pages"] + 1
    response = client.get("/crm/v8/Accounts",
                          params={"fields": CRM_FIELDS, "per_page": 200, "page": page})
    return response, len(response.json().get("data", [])) if response.status_code == 200 else 0


def books_list(client: httpx.Client, i: int, ctx: dict) -> tuple[httpx.Response, int]:
    page = i % ctx["books_pages"] + 1
    response = client.get("/books/v3/contacts", params={
        "organization_id": ctx["org"], "per_page": 200, "page": page})
    ok = response.status_code == 200
    return response, len(response.json().get("contacts", [])) if ok else 0


def crm_upsert(client: httpx.Client, i: int, ctx: dict) -> tuple[httpx.Response, int]:
    # Batches i and i + n/2 carry the same names: the first half inserts, the second updates.
    batch = i % max(1, ctx["upserts"] // 2)
    data = [{"Account_Name": f"Bench Upsert {ctx['run']} {batch}-{j}",
             "Phone": f"+1 555 {i:04d}", "Industry": "Technology",
             "Billing_City": "Austin", "Annual_Revenue": 1000 + j}
            for j in range(100)]
    response = client.post("/crm/v8/Accounts/upsert",
                           json={"data": data, "duplicate_check_fields": ["Account_Name"]})
    return response, len(data)


def crm_upsert_unique(client: httpx.Client, i: int, ctx: dict) -> tuple[httpx.Response, int]:
    # The same, matched on a unique custom field (Books_Id__c) instead of Account_Name.
    batch = i % max(1, ctx["upserts"] // 2)
    data = [{"Account_Name": f"Bench Unique {ctx['run']} {batch}-{j}",
             "Books_Id__c": f"bench-{ctx['run']}-{batch}-{j}", "Phone": f"+1 555 {i:04d}",
             "Industry": "Technology", "Billing_City": "Austin", "Annual_Revenue": 1000 + j}
            for j in range(100)]
    response = client.post("/crm/v8/Accounts/upsert",
                           json={"data": data, "duplicate_check_fields": ["Books_Id__c"]})
    return response, len(data)


def books_create(client: httpx.Client, i: int, ctx: dict) -> tuple[httpx.Response, int]:
    response = client.post("/books/v3/contacts", params={"organization_id": ctx["org"]}, json={
        "contact_name": f"Bench Contact {ctx['run']} {i}", "company_name": f"Bench {i} Ltd",
        "contact_type": "customer", "payment_terms": 30,
        "billing_address": {"address": "1 Main St", "city": "Austin", "country": "U.S.A"},
        "contact_persons": [{"first_name": "Ada", "last_name": f"Bench{i}",
                             "email": f"bench{ctx['run']}-{i}@example.com",
                             "is_primary_contact": True}]})
    return response, 1


def run_workload(name: str, maker: Maker, base_url: str, headers: dict, ctx: dict,
                 requests: int, threads: int, warmup: int) -> Result:
    """`requests` calls from `threads` keep-alive clients; the clock covers only those calls."""
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: dict[int, int] = {}
    records = 0

    def worker() -> None:
        nonlocal records
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            for w in range(warmup):  # open the connection and warm caches, not measured
                maker(client, -1 - w, {**ctx, "run": f"{ctx['run']}w"})
            barrier.wait()
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                started = time.perf_counter()
                response, carried = maker(client, i, ctx)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    if response.status_code >= 300:
                        failures[response.status_code] = failures.get(response.status_code, 0) + 1
                    else:
                        records += carried

    barrier = threading.Barrier(threads + 1)
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(worker) for _ in range(threads)]
        barrier.wait()
        started = time.perf_counter()
        for future in futures:
            future.result()
        wall = time.perf_counter() - started
    return Result(name, requests, threads, wall, records, latencies, failures)


WORKLOADS: dict[str, Maker] = {
    "crm-list (200 rec/page)": crm_list,
    "books-list (200 rec/page)": books_list,
    "crm-upsert (100 rec/call)": crm_upsert,
    "crm-upsert-unique (100 rec/call)": crm_upsert_unique,
    "books-create (1 rec/call)": books_create,
}


def benchmark(base_url: str, args, label: str) -> list[Result]:
    token = httpx.post(f"{base_url}/oauth/v2/token", data={
        "grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH}).json()["access_token"]
    httpx.post(f"{base_url}/__emulator__/limits", json=NO_LIMITS).raise_for_status()
    org = httpx.get(f"{base_url}/__emulator__/stats").json()["books_org"]
    headers = {"Authorization": f"Zoho-oauthtoken {token}"}
    with httpx.Client(base_url=base_url, headers=headers) as probe:
        contacts = probe.get("/books/v3/contacts",
                             params={"organization_id": org, "per_page": 200})
        contacts.raise_for_status()
    books_total = args.books_customers + 5  # customers + default vendors, at least
    ctx = {"org": org, "crm_pages": max(1, min(10, args.accounts // 200)),
           "books_pages": max(1, books_total // 200), "upserts": args.upserts,
           "run": label}
    counts = {"crm-list (200 rec/page)": args.list_requests,
              "books-list (200 rec/page)": args.list_requests,
              "crm-upsert (100 rec/call)": args.upserts,
              "crm-upsert-unique (100 rec/call)": args.upserts,
              "books-create (1 rec/call)": args.creates}
    runs: dict[str, list[Result]] = {name: [] for name in WORKLOADS}
    for repeat in range(args.repeat):
        if repeat:  # the same starting data for every repeat (upserts grow the Accounts module)
            httpx.post(f"{base_url}/__emulator__/reset", timeout=120, json={
                "seed": 7, "accounts": args.accounts,
                "books_customers": args.books_customers}).raise_for_status()
        for name, maker in WORKLOADS.items():
            run_ctx = {**ctx, "run": f"{label}{repeat}"}
            result = run_workload(name, maker, base_url, headers, run_ctx, counts[name],
                                  args.threads, args.warmup)
            runs[name].append(result)
            print(f"  [{label} #{repeat + 1}] {name}: {result.requests / result.wall_s:.0f} req/s",
                  flush=True)
    # Per workload, the run with the median throughput (the middle one of an odd number).
    return [sorted(found, key=lambda r: r.requests / r.wall_s)[(len(found) - 1) // 2]
            for found in runs.values()]


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def table(rows: list[dict], markdown: bool) -> str:
    return common.table(rows, markdown, text_columns=("mode", "workload"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--list-requests", type=int, default=300,
                        help="list pages per list workload (default 300)")
    parser.add_argument("--upserts", type=int, default=100,
                        help="CRM upsert calls of 100 records (default 100)")
    parser.add_argument("--creates", type=int, default=100,
                        help="Books contact creates (default 100)")
    parser.add_argument("--accounts", type=int, default=2000, help="CRM accounts to seed")
    parser.add_argument("--books-customers", type=int, default=1000,
                        help="Books customers to seed")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured calls per thread")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per workload (fresh data each); the median one is reported")
    parser.add_argument("--in-process", action="store_true",
                        help="also run against an emulator on a thread of this process")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20/20/10/10 calls")
    parser.add_argument("--start-timeout", type=float, default=120)
    parser.add_argument("--markdown", type=Path, help="also write the tables as Markdown here")
    args = parser.parse_args(argv)
    if args.quick:
        args.list_requests, args.upserts, args.creates, args.repeat = 20, 10, 10, 1
        args.accounts, args.books_customers = min(args.accounts, 400), min(
            args.books_customers, 400)

    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    modes = [("subprocess", subprocess_emulator)]
    if args.in_process:
        modes.append(("in-process", in_process_emulator))
    rows = []
    for label, start in modes:
        started = time.perf_counter()
        with start(args) as base_url:
            print(f"{label} emulator up on {base_url} after "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            rows += [{"mode": label, **r.row()} for r in benchmark(base_url, args, label)]
    print()
    print(table(rows, markdown=False))
    failed = [r for r in rows if r["errors"]]
    if args.markdown:
        text = ["Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "",
                f"Sizes: {args.accounts} CRM accounts, {args.books_customers} Books customers; "
                f"{args.threads} client threads, {args.warmup} warm-up calls each; median of "
                f"{args.repeat} run(s) per workload.", "",
                table(rows, markdown=True), ""]
        args.markdown.write_text("\n".join(text), encoding="utf-8")
        print(f"\nwrote {args.markdown}")
    if failed:
        print("\nsome requests failed (non-2xx): see the errors column", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
