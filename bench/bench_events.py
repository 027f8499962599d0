"""Event latency of the deal triggers: CRM change → Books quote exists, vs the 2-hour schedule.

    .venv/bin/python bench/bench_events.py             # 50 deal changes
    .venv/bin/python bench/bench_events.py --changes 20 --debounce 0.1

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
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_TMP = tempfile.mkdtemp(prefix="crmbooks-bench-events-")
os.environ["CRMBOOKS_HOME"] = os.path.join(_TMP, "home")
os.environ["CRMBOOKS_DATABASE_URL"] = f"sqlite:///{os.path.join(_TMP, 'crmbooks.db')}"
os.environ["PREFECT_HOME"] = os.path.join(_TMP, "prefect")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--debounce", type=float, default=0.3, help="receiver debounce (s)")
    args = parser.parse_args()

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
        try:
            deal_ids = [r.id for r in runtime.crm.create("Deals", [
                {"Deal_Name": f"Bench deal {i}", "Stage": "Qualification",
                 "Amount": Decimal("100.00"), "Account_Name": {"id": account["id"]}}
                for i in range(args.changes)])]
            time.sleep(args.debounce + 0.5)
            receiver.deals.idle(60)
            org = server.emu.books.org()
            latencies = []
            for deal_id in deal_ids:
                begin = time.perf_counter()
                runtime.crm.update("Deals", [{"id": deal_id, "Stage": PROPOSAL}])
                deadline = begin + 60
                while not any(e.get("zcrm_potential_id") == deal_id
                              for e in list(org.records.get("estimates", {}).values())):
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"deal {deal_id}: no quote within 60 s")
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - begin)
                receiver.deals.idle(30)  # the echo of our own deal write settles first
        finally:
            receiver.stop()

    median, p95 = statistics.median(latencies), percentile(latencies, 95)
    print(f"\nDeal change → Books quote exists, {len(latencies)} changes, one at a time "
          f"(debounce {args.debounce:.1f} s):")
    print(f"{'':<24}{'median':>12}{'p95':>12}{'max':>12}")
    print(f"{'events (receiver)':<24}{median:>11.2f}s{p95:>11.2f}s{max(latencies):>11.2f}s")
    print(f"{'2-hour schedule':<24}{SCHEDULE_MIN / 2:>10.0f}min{SCHEDULE_MIN * 0.95:>10.0f}min"
          f"{SCHEDULE_MIN:>10.0f}min")
    print(f"events are {SCHEDULE_MIN * 30 / median:,.0f}x faster at the median")


if __name__ == "__main__":
    main()
