"""Retry in the Prefect UI re-runs only what failed.

A run whose third push batch fails on a transient error (the Books daily cap is reached
mid-push) ends Failed. Retrying that same flow run — what the UI's Retry button and
`prefect flow-run retry` do: the run goes back to Scheduled and a runner executes it again —
finds every finished step's persisted result and pushes only the batch that failed.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.flow_engine import run_flow_sync
from prefect.states import Scheduled

import tasks.policy
import tasks.steps
from flows.customers import sync_customers
from support.customers import books_by_name, unpaced, writes
from support.waits import no_retry_waits
from tasks import progress

BATCH = 5


def test_retrying_the_failed_flow_run_pushes_only_the_failed_batch(connected, emu_reset,
                                                                   monkeypatch):
    # The daily limit's Retry-After runs to midnight: near midnight it is short enough to be
    # waited out (the test then took four minutes before 00:00 UTC); a one-second cap never is.
    unpaced(monkeypatch, max_retry_after_s=1.0)
    no_retry_waits(monkeypatch)
    monkeypatch.setitem(tasks.policy.BATCH, "books", BATCH)
    store, emu = connected, emu_reset.emu
    store.save_settings("customers", {"crm_module": "accounts", "scope": "fetch",
                                      "duplicates": "skip"})

    def cap_after_two_batches(module: str, done: int, total: int) -> None:
        if done >= 2 * BATCH:
            emu.config.books_daily_limit = 0  # every later Books call: 429 until midnight

    progress.listeners.append(cap_after_two_batches)
    try:
        failed = sync_customers(return_state=True)
    finally:
        progress.listeners.remove(cap_after_two_batches)
    assert failed.is_failed()
    pushed_first = {w["path"] for w in writes(emu_reset, "books")}
    assert len(writes(emu_reset, "books")) == 2 * BATCH

    emu.config.books_daily_limit = 1_000_000  # the next day
    emu.stats.clear()
    with get_client(sync_client=True) as client:
        run = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[failed.state_details.flow_run_id])))[0]
        client.set_flow_run_state(run.id, Scheduled(), force=True)  # the Retry button
        retried = run_flow_sync(sync_customers, flow_run=client.read_flow_run(run.id),
                                parameters=run.parameters, return_type="state")

    assert retried.is_completed(), retried.message
    with get_client(sync_client=True) as client:  # the runs list says it was retried
        assert client.read_flow_run(run.id).name.endswith(" · retry")
    again = writes(emu_reset, "books")
    assert 0 < len(again) <= BATCH  # only the batch that failed was pushed again
    linked = [r["zcrm_account_id"] for rows in books_by_name(emu_reset).values() for r in rows
              if r.get("zcrm_account_id")]
    assert len(linked) == len(set(linked))  # no account twice in Books
    assert set(linked) >= set(emu.crm.records("Accounts"))  # and none missing
    assert pushed_first  # (the first attempt did write its two batches)
    history = store.list_runs(module="customers", limit=5)
    assert len(history) == 1 and history[0].state == "completed"  # the same run, mended
