"""Event latency: CRM deal change → Books quote, CRM account edit → Books customer, Books item
edit → CRM product, vs the 2-hour schedule.

    .venv/bin/python bench/bench_events.py             # 50 changes of each path
    .venv/bin/python bench/bench_events.py --changes 20 --debounce 0.1 --paths accounts,items

One process: the emulators (CRM, Books, OAuth) on a background thread, a temporary Prefect API
(`prefect_test_harness`), crmbooks connected to the emulators with a temporary home, deal
triggers in quote mode (quote at "Proposal/Price Quote"), and the event receiver
(`crmbooks.app.receiver.server.Receiver`, what `crmbooks webhook` runs) with its CRM
notification channel.

Each of N deals (made at "Qualification" beforehand, their runs settled) is moved to the quote
stage through the CRM API, one at a time; the clock runs from just before the update request
until the quote exists in the Books emulator's state (polled every 10 ms). The path measured:
CRM write → CRM notification POST → receiver → debounce → in-process flow run (read the deal,
plan, upsert the quote, store the link, write the deal's Books_Estimate_Id__c, report).
Emulators and sync share one interpreter (and its GIL) here, so the figures are upper bounds
for a receiver on its own host. The 2-hour schedule's figures are analytic: a change lands at a
uniformly random moment between runs, so it waits 60 min at the median and 114 min at p95
(plus the run itself).

The record paths work alike, through targeted customers / items runs: N CRM accounts (made
through the CRM API, their Books customers created by the receiver beforehand) have their
Website edited one at a time, the clock running until the Books customer carries it; N Books
items (made through the Books API, their CRM products created by the receiver beforehand) have
their rate edited one at a time, the clock running until the CRM product's Unit_Price is it.
After each change the emulators' deliveries and the receiver's workers settle (the echoes of
crmbooks' own writes) before the next one starts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import isolate  # noqa: E402 - before crmbooks is imported

isolate("events")

PROPOSAL = "Proposal/Price Quote"
SCHEDULE_MIN = 120


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def connect(server) -> None:
    """Connect crmbooks to the emulators, as `crmbooks connect` does (secrets from env)."""
    import crmbooks.runtime
    from crmbooks.connect import connect_to_emulator
    from crmbooks.runtime import reset_runtime_cache

    connect_to_emulator(server)
    built = crmbooks.runtime.config_from_store  # the emulator does not pace: neither do we

    def fast(*args, **kwargs):
        return built(*args, **kwargs).model_copy(update={"books_requests_per_minute": 100_000})

    crmbooks.runtime.config_from_store = fast
    reset_runtime_cache()


def settle(server, receiver) -> None:
    """The emulators' queued deliveries sent and every run they started ended."""
    for _ in range(3):  # a run's own writes queue events too
        server.emu.crm.notifier.drain()
        server.emu.books.webhooks.queue.join()
        for worker in (receiver.deals, receiver.transactions, receiver.records):
            worker.idle(60)


def timed(change, arrived, what: str, timeout_s: float = 60.0) -> float:
    """Seconds from just before `change()` until `arrived()` is true (polled every 10 ms)."""
    begin = time.perf_counter()
    change()
    while not arrived():
        if time.perf_counter() - begin > timeout_s:
            raise SystemExit(f"{what}: not there within {timeout_s:.0f} s")
        time.sleep(0.01)
    return time.perf_counter() - begin


def account_path(server, receiver, runtime, changes: int) -> list[float]:
    """CRM account Website edits → the Books customer's website."""
    created = runtime.crm.create("Accounts", [{"Account_Name": f"Bench account {i}"}
                                              for i in range(changes)])
    ids = [r.id for r in created]
    contacts = server.emu.books.org().records["contacts"]

    def customer_of(crm_id: str) -> dict | None:
        return next((c for c in list(contacts.values()) if any(
            f.get("api_name") == "cf_crm_id" and f.get("value") == crm_id
            for f in c.get("custom_fields", []))), None)

    deadline = time.monotonic() + 120
    while not all(customer_of(i) for i in ids):
        if time.monotonic() > deadline:
            raise SystemExit("the bench accounts did not reach Books within 120 s")
        time.sleep(0.05)
    settle(server, receiver)
    books_ids = {i: customer_of(i)["contact_id"] for i in ids}  # polled by id from here on
    latencies = []
    for n, crm_id in enumerate(ids):
        url = f"https://bench-{n}.example"
        latencies.append(timed(
            lambda crm_id=crm_id, url=url: runtime.crm.update(
                "Accounts", [{"id": crm_id, "Website": url}]),
            lambda crm_id=crm_id, url=url: contacts[books_ids[crm_id]].get("website") == url,
            f"account {crm_id}"))
        settle(server, receiver)
    return latencies


def item_path(server, receiver, runtime, changes: int) -> list[float]:
    """Books item rate edits → the CRM product's Unit_Price."""
    items = [runtime.books.create("items", {"name": f"Bench item {i}", "rate": 10})
             for i in range(changes)]
    ids = [str(r.id) for r in items]
    products = server.emu.crm.records

    def product_of(books_id: str) -> dict | None:
        return next((p for p in list(products("Products").values())
                     if p.get("Books_Id__c") == books_id), None)

    deadline = time.monotonic() + 120
    while not all(product_of(i) for i in ids):
        if time.monotonic() > deadline:
            raise SystemExit("the bench items did not reach the CRM within 120 s")
        time.sleep(0.05)
    settle(server, receiver)
    crm_ids = {i: product_of(i)["id"] for i in ids}  # polled by id from here on
    latencies = []
    for n, item_id in enumerate(ids):
        rate = Decimal(20 + n)
        latencies.append(timed(
            lambda item_id=item_id, rate=rate: runtime.books.update(
                "items", item_id, {"rate": float(rate)}),
            lambda item_id=item_id, rate=rate: Decimal(str(
                products("Products")[crm_ids[item_id]].get("Unit_Price"))) == rate,
            f"item {item_id}"))
        settle(server, receiver)
    return latencies


PATHS = {"deals": "Deal change → Books quote exists",
         "accounts": "CRM account edit → Books customer updated",
         "items": "Books item edit → CRM product updated"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50, help="changes per path")
    parser.add_argument("--debounce", type=float, default=0.3, help="receiver debounce (s)")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"which of {', '.join(PATHS)} (comma-separated)")
    args = parser.parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not paths or any(p not in PATHS for p in paths):
        parser.error(f"--paths takes {', '.join(PATHS)} (comma-separated), not {args.paths!r}")

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from crmbooks.app.receiver.server import Receiver
    from crmbooks.runtime import get_runtime
    from emulators import EmulatorServer, Sizes

    sizes = Sizes(accounts=20, contacts_per_account=1, unassociated_contacts=0, vendors=1,
                  products=1, deals=0, books_customers=0, books_vendors=0, books_items=0)
    started = time.monotonic()
    with EmulatorServer() as server, prefect_test_harness(server_startup_timeout=180), \
            temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        server.emu.reset(seed=7, sizes=sizes)
        connect(server)
        runtime = get_runtime()
        store = runtime.store
        store.save_settings("deals", {"enabled": True, "mode": "quote",
                                      "create_stage": PROPOSAL})
        account = next(iter(server.emu.crm.records("Accounts").values()))
        result = runtime.books.upsert_by_custom_field(
            "contacts", "cf_crm_id", account["id"],
            {"contact_name": account["Account_Name"], "contact_type": "customer"})
        store.upsert_link("customers", crm_id=account["id"], books_id=result.id,
                          kind="accounts", crm_module="Accounts", made_by="sync")
        print(f"setup {time.monotonic() - started:.1f} s", flush=True)

        receiver = Receiver(debounce_s=args.debounce).start()
        results: dict[str, list[float]] = {}
        try:
            if "deals" in paths:
                results["deals"] = deal_path(server, receiver, runtime, account, args)
            if "accounts" in paths:
                results["accounts"] = account_path(server, receiver, runtime, args.changes)
            if "items" in paths:
                results["items"] = item_path(server, receiver, runtime, args.changes)
        finally:
            receiver.stop()

    print(f"\n{args.changes} changes per path, one at a time (debounce {args.debounce:.1f} s):")
    print(f"{'':<44}{'median':>10}{'p95':>10}{'max':>10}")
    for path, latencies in results.items():
        median, p95 = statistics.median(latencies), percentile(latencies, 95)
        print(f"{PATHS[path]:<44}{median:>9.2f}s{p95:>9.2f}s{max(latencies):>9.2f}s")
    print(f"{'2-hour schedule':<44}{SCHEDULE_MIN / 2:>8.0f}min{SCHEDULE_MIN * 0.95:>8.0f}min"
          f"{SCHEDULE_MIN:>8.0f}min")


def deal_path(server, receiver, runtime, account: dict, args) -> list[float]:
    """Deals moved to the quote stage → their Books quote exists."""
    deal_ids = [r.id for r in runtime.crm.create("Deals", [
        {"Deal_Name": f"Bench deal {i}", "Stage": "Qualification",
         "Amount": Decimal("100.00"), "Account_Name": {"id": account["id"]}}
        for i in range(args.changes)])]
    settle(server, receiver)
    org = server.emu.books.org()
    latencies = []
    for deal_id in deal_ids:
        latencies.append(timed(
            lambda deal_id=deal_id: runtime.crm.update(
                "Deals", [{"id": deal_id, "Stage": PROPOSAL}]),
            lambda deal_id=deal_id: any(e.get("zcrm_potential_id") == deal_id
                        for e in list(org.records.get("estimates", {}).values())),
            f"deal {deal_id}"))
        settle(server, receiver)  # the echo of our own deal write settles first
    return latencies

if __name__ == "__main__":
    main()
