"""API calls for refreshing the accounting figures of N linked customers after 1% of them
changed in Books, against the minimum.

    .venv/bin/python bench/bench_figures.py            # N = 10,000
    .venv/bin/python bench/bench_figures.py --quick    # N = 1,000

One process: the emulators on a background thread, a temporary Prefect API, crmbooks connected
to them. N CRM accounts and N Books customers are linked in the state store directly (the
customers sync is benchmarked by bench_sync.py; here only the figures step runs, as the last
step of a customers catch-up does). Three refreshes are counted: the first (no cursor: the
whole ledger and every linked customer), one after 1% of the customers got a sent invoice
and half of those a payment (made through the Books API), and a quiet one.

The minimum, per refresh after the change, for K changed customers of N: one page per 200
modified rows of each of the three ledger lists (at least one each); per changed customer its
invoices list (the totals: Books has no aggregate) and one page of its payments (the last
one); its receivables from the contacts by id or the customers list, whichever is fewer
(min(K, N/200)); the CRM's current figures and the writes, 100 records per call each.
"""

from __future__ import annotations

import argparse
import sys
import time
from math import ceil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import isolate  # noqa: E402 - before crmbooks is imported

isolate("figures")


def minimum(n: int, changed: int, ledger_rows: dict[str, int], first: bool = False
            ) -> dict[str, int]:
    """The fewest calls a refresh of ``changed`` customers of ``n`` linked ones can make (the
    first: the whole ledger, the customers list, every CRM record read and written)."""
    scans = sum(max(1, ceil(rows / 200)) for rows in ledger_rows.values())
    if first:
        return {"books": scans + ceil(n / 200), "crm": 2 * ceil(n / 100)}
    books = scans + 2 * changed + min(changed, ceil(n / 200)) if changed else scans
    return {"books": books, "crm": 2 * ceil(changed / 100)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 customers")
    args = parser.parse_args()
    n = 1_000 if args.quick else args.customers

    from prefect import flow
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from bench.bench_events import connect
    from crmbooks.runtime import get_runtime
    from emulators import EmulatorServer, Sizes
    from tasks.context import RunContext
    from tasks.records.figures import refresh

    sizes = Sizes(accounts=n, contacts_per_account=0, unassociated_contacts=0, vendors=0,
                  products=0, deals=0, books_customers=n, books_vendors=0, books_items=0)
    started = time.monotonic()
    with EmulatorServer() as server, prefect_test_harness(server_startup_timeout=180), \
            temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        server.emu.reset(seed=7, sizes=sizes)
        connect(server)
        runtime = get_runtime()
        store, books = runtime.store, runtime.books
        accounts = sorted(server.emu.crm.records("Accounts"))
        customers = sorted(c["contact_id"] for c in server.emu.books.org().records[
            "contacts"].values() if c.get("contact_type") == "customer")
        pairs = list(zip(accounts, customers, strict=False))
        store.upsert_links("customers", [
            {"crm_id": a, "books_id": c, "kind": "accounts", "crm_module": "Accounts",
             "made_by": "sync"} for a, c in pairs])
        context = RunContext(run_id="bench", module="customers", org_id=runtime.org_id,
                             dry_run=False, settings={})

        @flow(name="bench-figures")
        def one_refresh() -> dict:
            return refresh(context)

        def counted(label: str, changed: int, ledger_rows: dict[str, int],
                    first: bool = False) -> dict:
            before = runtime.api_calls()
            begin = time.perf_counter()
            done = one_refresh()
            seconds = time.perf_counter() - begin
            after = runtime.api_calls()
            calls = {s: after[s] - before[s] for s in ("crm", "books")}
            return {"refresh": label, "changed": changed, "written": done["written"],
                    **{f"{s} calls": calls[s] for s in ("books", "crm")},
                    **{f"{s} minimum": v for s, v in minimum(
                        len(pairs), changed, ledger_rows, first).items()},
                    "seconds": round(seconds, 1)}

        print(f"setup {time.monotonic() - started:.1f} s: {len(pairs)} linked customers",
              flush=True)
        # One invoice before the first refresh: its stamp starts the figures cursor.
        seed = books.create("invoices", {"customer_id": pairs[1][1], "line_items": [
            {"name": "Consulting", "rate": "10.00", "quantity": 1}]}).record
        books.mark("invoices", seed["invoice_id"], "sent")
        server.emu.advance_clock(2)
        rows = [counted("first (no cursor)", len(pairs), {"invoices": 1, "creditnotes": 0,
                                                          "customerpayments": 0}, first=True)]
        server.emu.advance_clock(2)  # the changes come in a later second than the cursor
        changed = [c for _, c in pairs[::100]]
        for i, customer in enumerate(changed):
            invoice = books.create("invoices", {"customer_id": customer, "line_items": [
                {"name": "Consulting", "rate": "100.00", "quantity": 1}]}).record
            books.mark("invoices", invoice["invoice_id"], "sent")
            if i % 2 == 0:
                # The Books client writes only what crmbooks syncs: a payment goes as is.
                books._call("POST", "/books/v3/customerpayments", body={
                    "customer_id": customer, "payment_mode": "banktransfer", "amount": "40.00",
                    "invoices": [{"invoice_id": invoice["invoice_id"],
                                  "amount_applied": "40.00"}]})
        # Modified rows: each invoice (and each paid one again when its payment applied).
        ledger = {"invoices": len(changed), "creditnotes": 0,
                  "customerpayments": ceil(len(changed) / 2)}
        server.emu.advance_clock(2)
        rows.append(counted("after 1% changed", len(changed), ledger))
        server.emu.advance_clock(2)
        rows.append(counted("quiet", 0, {"invoices": 0, "creditnotes": 0,
                                         "customerpayments": 0}))

    columns = list(rows[0])
    print("\n| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
