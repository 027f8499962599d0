"""Durable events, end to end: `crmbooks webhook` in a subprocess accepts CRM notifications
of 200 new deals, is killed (SIGKILL) before it has run them, is started again, and every
deal gets exactly one Books quote, from the events it kept (its catch-up is off, so nothing
else could make them).

Waiting is on conditions: the emulator's notification queue is drained, the state database
is read until the events are kept, then until they are done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from crmbooks.runtime import get_runtime
from support.deals import PROPOSAL, QUOTE_MODE, accounts, configure, link_account
from support.receiver import wait_for

ROOT = Path(__file__).resolve().parents[2]
DEALS = 200
# `crmbooks webhook` with the client-side Books pacing lifted, as the tests' own runs have it.
LAUNCH = """
import sys
import crmbooks.runtime as runtime
built = runtime.config_from_store
runtime.config_from_store = lambda *a, **k: built(*a, **k).model_copy(
    update={"books_requests_per_minute": 100_000})
from crmbooks.app.cli import run
sys.argv = ["crmbooks", "webhook", *sys.argv[1:]]
run()
"""


def start_receiver(tmp_path: Path, name: str, *args: str) -> subprocess.Popen:
    """`crmbooks webhook --port 0 --catch-up-every 0 ARGS` in a subprocess of this test's
    environment (state, secrets, the session's Prefect API); returns once it listens."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT),
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    child = subprocess.Popen([sys.executable, "-c", LAUNCH, "--port", "0",
                              "--catch-up-every", "0", *args], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=log, text=True)
    line = child.stdout.readline()
    assert line.startswith("crmbooks receiver on "), (line, (tmp_path / f"{name}.log")
                                                      .read_text()[-2000:])
    return child


@pytest.mark.slow
def test_a_receiver_killed_with_200_accepted_events_handles_each_once_after_a_restart(
        store, emu_reset, tmp_path):
    configure(store, QUOTE_MODE)
    parties = accounts(emu_reset)[:10]
    for account in parties:
        link_account(store, account)
    # 1. A receiver whose workers wait 10 minutes before running anything.
    first = start_receiver(tmp_path, "first", "--debounce", "600")
    try:
        crm = get_runtime().crm
        bodies = [{"Deal_Name": f"Rollout {n}", "Stage": PROPOSAL, "Amount": Decimal("100.00"),
                   "Account_Name": {"id": parties[n % len(parties)]["id"]}}
                  for n in range(DEALS)]
        results = crm.create("Deals", bodies)  # two notifications of 100 deals each
        assert all(r.ok for r in results)
        deal_ids = [r.id for r in results]
        emu_reset.emu.crm.notifier.drain(timeout_s=60)
        # Accepted = kept: the 2xx answers came after the events were written.
        wait_for(lambda: store.inbox_summary()["pending"] == DEALS, timeout_s=60)
        assert {e.key for e in store.inbox(worker="deal-triggers")} == set(deal_ids)
        assert not emu_reset.emu.books.org().records["estimates"] or all(
            q.get("zcrm_potential_id") not in deal_ids
            for q in emu_reset.emu.books.org().records["estimates"].values())
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert store.list_runs("deals") == []  # nothing ran

    # 2. Started again (catch-up still off): the kept events run, and only them.
    second = start_receiver(tmp_path, "second")
    try:
        wait_for(lambda: len(store.inbox(state="done")) == DEALS, timeout_s=600)
        summary = store.inbox_summary()
        assert (summary["pending"], summary["failed"]) == (0, 0)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    quotes: dict[str, int] = {}
    for quote in emu_reset.emu.books.org().records["estimates"].values():
        if quote.get("zcrm_potential_id") in deal_ids:
            quotes[quote["zcrm_potential_id"]] = quotes.get(quote["zcrm_potential_id"], 0) + 1
    assert quotes == {deal_id: 1 for deal_id in deal_ids}  # every deal, exactly once
    assert all(e.attempts == 0 for e in store.inbox())  # each handled by its first run
    runs = store.list_runs("deals", limit=50)
    assert runs and all(r.state == "completed" for r in runs)
