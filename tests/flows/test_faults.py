"""A full sync under faults, then one clean rerun, leaves both sides exactly as a
fault-free run does, with no duplicates, and every failure it reported says why.

The emulators inject (seeded, so each run sees the same stream) 10% 5xx answers, 5% 429s
(Retry-After: 1 s), dropped connections (half of them after the write was applied), a steady
latency and an access token that stops working after 25 requests (one refresh each time).
Customers (two-way, accounts and contacts), vendors and items run under them one after the
other; then the faults are cleared and each runs once more. Both sides and the links are
compared with what fault-free runs make from the same seed (the crash tests' `world`).

No real backoff is waited out: the clients get a sleep of at most 10 ms (their backoff and
Retry-After pauses, also the organization-wide pause of the pacer), and the tasks' own Prefect
retries wait 0 s.
"""

from __future__ import annotations

import time

import pytest

import crmbooks.runtime as runtime
from crmbooks.connectors.pacing import Pacer
from crmbooks.connectors.zoho_books import BooksClient
from crmbooks.connectors.zoho_crm import CrmClient
from emulators import Faults
from support.load import FLOWS, assert_converged, prepare, reference, world

MODULES = ["customers", "vendors", "items"]
FAULTS = Faults(error_rate=0.10, rate_429=0.05, drop_rate=0.05, latency_ms=5,
                expire_tokens_after=25, seed=11)


def nap(seconds: float) -> None:
    """A backoff or Retry-After pause, shortened: the test is about outcomes, not waiting."""
    time.sleep(min(seconds, 0.01))


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    """Clients that neither pace nor wait out backoff; task retries without delay."""
    import tasks.steps

    def crm(config, *args, **kwargs):
        pacer = Pacer(None, config.crm_max_concurrency, sleep=nap)
        return CrmClient(config, *args, pacer=pacer, sleep=nap, **kwargs)

    def books(config, *args, **kwargs):
        # Replaces the organization's shared pacer the runtime passes: no pacing here.
        kwargs["pacer"] = Pacer(None, config.books_max_concurrency, sleep=nap)
        return BooksClient(config, *args, sleep=nap, **kwargs)

    monkeypatch.setattr(runtime, "CrmClient", crm)
    monkeypatch.setattr(runtime, "BooksClient", books)
    for task in (tasks.steps.fetch_crm, tasks.steps.fetch_books, tasks.steps.push_books,
                 tasks.steps.push_crm):
        monkeypatch.setattr(task, "retry_delay_seconds", 0)


def test_a_sync_under_faults_then_a_clean_rerun_equals_a_fault_free_run(
        emu_reset, database_url, monkeypatch, tmp_path):
    expected = {m: reference(emu_reset, monkeypatch, tmp_path, m) for m in MODULES}
    store = prepare(emu_reset, monkeypatch, tmp_path, database_url, MODULES)

    emu_reset.emu.set_faults(FAULTS)
    for module in MODULES:
        FLOWS[module](return_state=True)  # may fail as a whole: the rerun must mend it
    responses = emu_reset.emu.stats.snapshot()["responses"]
    # the faults did hit: 5xx, 429, dropped (status 0) and expired tokens (401)
    assert all(responses.get(s) for s in ("500", "429", "0", "401")), responses
    emu_reset.emu.set_faults(Faults())
    for module in MODULES:
        state = FLOWS[module](return_state=True)
        assert state.is_completed(), f"{module} rerun: {state.message}"

    for module in MODULES:
        got, problems = world(emu_reset.emu, store, module)
        assert_converged(got, problems, expected[module])
        runs = store.list_runs(module=module)
        assert len(runs) == 2, [(r.state, r.message) for r in runs]
        for run in runs:
            assert run.state in ("completed", "completed_with_failures", "failed"), run.state
            if run.state == "failed":
                assert run.message, f"{module} run {run.id} failed without a reason"
    failures = store.failures(unresolved_only=False).to_dict("records")
    for failure in failures:
        assert failure["code"] and failure["message"], failure
    assert store.failures().empty  # the clean rerun resolved every one
