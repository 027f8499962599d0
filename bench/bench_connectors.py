"""Connector benchmark: API calls and seconds for reads, batched vs single writes, and pacing.

    .venv/bin/python bench/bench_connectors.py [--pacing-seconds 75] [--accounts 10000]

The emulator runs as a subprocess (`python -m emulators`, i.e. `crmbooks emulators`), so the
server does not share the client's GIL and the timings are the client's own. Figures:

1. read N CRM accounts (requests, seconds);
2. write 2,000 CRM records by batched upsert (100 per call) and one record per call;
3. pacing: the emulator limits Books to 600 requests/minute per organization (sliding 60 s
   window); four threads share one BooksClient configured for 600/minute and must sustain
   ≥95% of it with zero 429s. Run it longer than 60 s so the window is really exercised.

Never a timed assertion in tests (timings vary with the machine): the figures are printed, not
asserted, except that the script exits non-zero when the pacing target is missed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crmbooks.connectors.config import ZohoConfig  # noqa: E402
from crmbooks.connectors.zoho_books import BooksClient  # noqa: E402
from crmbooks.connectors.zoho_crm import CrmClient  # noqa: E402

BOOKS_RATE = 600
FIELDS = ["Account_Name", "Phone", "Website", "Billing_City", "Billing_Country", "Industry",
          "Modified_Time"]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(port: int, accounts: int) -> subprocess.Popen:
    """`python -m emulators` with N accounts (no contacts) and Books at 600 requests/minute."""
    args = [sys.executable, "-m", "emulators", "--port", str(port), "--accounts", str(accounts),
            "--contacts-per-account", "0", "--unassociated-contacts", "0", "--deals", "0",
            "--books-customers", "20", "--books-rate-limit", str(BOOKS_RATE),
            "--books-daily-limit", "1000000", "--crm-concurrency", "25"]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator exited: {process.stderr.read().decode()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/__emulator__/stats", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the emulator did not start within 120 s")


def config(base: str, **overrides) -> ZohoConfig:
    """Demo credentials of the emulator (its documented defaults, not real secrets)."""
    values = dict(accounts_url=base, api_url=base, client_id="crmbooks-demo",
                  client_secret=SecretStr("crmbooks-demo-secret"),
                  refresh_token=SecretStr("crmbooks-demo-refresh"), books_org_id="20099001")
    values.update(overrides)
    return ZohoConfig(**values)


def timed(crm_or_books, action) -> tuple[int, float, object]:
    """(requests to the product, seconds, result) of `action()`."""
    system = crm_or_books.http.system
    before = crm_or_books.calls.by_system().get(system, 0)
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    return crm_or_books.calls.by_system().get(system, 0) - before, seconds, result


def bench_read(crm: CrmClient, accounts: int) -> str:
    """Read every account, 200 per page."""
    requests, seconds, count = timed(
        crm, lambda: sum(len(p) for p in crm.iter_records("Accounts", FIELDS)))
    assert count == accounts, f"read {count} accounts, expected {accounts}"
    return (f"read {count:,} CRM accounts: {requests} requests, {seconds:.2f} s "
            f"({count / requests:.0f} records/request)")


def bench_writes(crm: CrmClient, n: int = 2000) -> list[str]:
    """Upsert n records in batches of 100, then n others one per call."""
    lines = []
    for label, size in (("batched upsert (100/call)", 100), ("one record per call", 1)):
        records = [{"Account_Name": f"Bench {size} {i:05d}", "Phone": f"555-{i:05d}"}
                   for i in range(n)]

        def write(records=records, size=size):
            results = []
            for start in range(0, n, size):
                results += crm.upsert("Accounts", records[start:start + size],
                                      duplicate_check_fields=["Account_Name"])
            return results

        requests, seconds, results = timed(crm, write)
        failed = sum(not r.ok for r in results)
        lines.append(f"write {n:,} CRM records, {label}: {requests} requests, {seconds:.2f} s"
                     f" ({failed} failed)")
    return lines


def bench_pacing(base: str, seconds: float, threads: int = 4) -> tuple[str, bool]:
    """Four threads hammer Books through one paced client for `seconds`."""
    books = BooksClient(config(base, books_requests_per_minute=BOOKS_RATE,
                               books_max_concurrency=threads))
    contact_id = next(iter(books.iter_pages("contacts", per_page=1)))[0]["contact_id"]
    httpx.post(f"{base}/__emulator__/stats/clear")
    stop = time.monotonic() + seconds
    stamps: list[float] = []

    def worker():
        while time.monotonic() < stop:
            books.get("contacts", contact_id)
            stamps.append(time.monotonic())

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = max(stamps) - started
    stats = httpx.get(f"{base}/__emulator__/stats").json()
    refused = stats["responses"].get("429", 0)
    rate = len(stamps) / elapsed * 60
    ok = rate >= 0.95 * BOOKS_RATE and refused == 0
    line = (f"pacing, Books limited to {BOOKS_RATE}/min, {threads} threads, {elapsed:.0f} s: "
            f"{len(stamps)} requests = {rate:.0f}/min ({rate / BOOKS_RATE:.1%} of the limit), "
            f"{refused} x 429 -> {'OK' if ok else 'MISSED'} (target >=95%, zero 429)")
    return line, ok


def main() -> int:
    """Run the three benchmarks against a fresh emulator subprocess and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--pacing-seconds", type=float, default=75.0)
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    emulator = start_emulator(port, args.accounts)
    try:
        print(f"emulator: subprocess `python -m emulators` on {base} "
              f"({args.accounts:,} accounts)")
        crm = CrmClient(config(base))
        print(bench_read(crm, args.accounts))
        for line in bench_writes(crm):
            print(line)
        line, ok = bench_pacing(base, args.pacing_seconds)
        print(line)
        print(f"all calls: {crm.calls.snapshot()}")
        return 0 if ok else 1
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
