"""Two runs of the same module at once — one syncs, the other is refused (never
interleaved); runs of different modules at once both complete. On SQLite and PostgreSQL.

Prefect's deployment concurrency limit covers scheduled runs only, so the store's run lock
(`RunLock`, taken in tasks/run.py) is what refuses the second run of a manual `crmbooks
sync` or of sync-now's child runs. The runs here are threads of this process against an
emulator slowed by latency; the winner waits (holding the lock) until the other run was
refused, so the two always overlap, however loaded the machine.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

import tasks.run
from crmbooks.sync.lifecycle import RunInProgress
from emulators import Faults
from support.customers import unpaced
from support.load import FLOWS, assert_converged, prepare, reference, world


@pytest.fixture(autouse=True)
def _unpaced(monkeypatch):
    unpaced(monkeypatch)


def run_at_once(modules: list[str]) -> list:
    """Start one flow run per entry at the same moment (threads); their final states."""
    start = threading.Barrier(len(modules))
    states: list = [None] * len(modules)

    def one(i: int, module: str) -> None:
        start.wait(timeout=60)
        try:
            states[i] = FLOWS[module](return_state=True)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            states[i] = exc

    threads = [threading.Thread(target=one, args=(i, m)) for i, m in enumerate(modules)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a run did not end within 5 minutes"
    return states


def hold_until_refused(monkeypatch) -> threading.Event:
    """The run that gets the lock keeps it until the other run was refused (or 2 minutes)."""
    original, refused = tasks.run.hold_run_lock, threading.Event()

    def gated(run) -> None:
        try:
            original(run)
        except RunInProgress:
            refused.set()
            raise
        refused.wait(timeout=120)

    monkeypatch.setattr(tasks.run, "hold_run_lock", gated)
    return refused


def test_a_second_run_of_the_same_module_is_refused_never_interleaved(
        emu_reset, database_url, monkeypatch, tmp_path):
    expected = reference(emu_reset, monkeypatch, tmp_path, "customers")
    store = prepare(emu_reset, monkeypatch, tmp_path, database_url, ["customers"])
    emu_reset.emu.set_faults(Faults(latency_ms=20))
    refused = hold_until_refused(monkeypatch)

    states = run_at_once(["customers", "customers"])

    assert refused.is_set()
    assert sorted(s.is_completed() for s in states) == [False, True], states
    loser = next(s for s in states if not s.is_completed())
    assert "another run of customers is in progress" in loser.message, loser.message
    runs = store.list_runs(module="customers")
    assert Counter(r.state for r in runs) == {"completed": 1, "refused": 1}
    winner = next(r for r in runs if r.state == "completed")
    refusal = next(r for r in runs if r.state == "refused")
    assert f"run {winner.id}" in refusal.message and "try again when it ends" in refusal.message
    assert store.events(run_id=refusal.id).empty  # the refused run did nothing
    assert store.run_lock("customers") is None  # released at the end
    emu_reset.emu.set_faults(Faults())
    got, problems = world(emu_reset.emu, store, "customers")
    assert_converged(got, problems, expected)

    # the lock is free again: the next run goes (and has nothing to do)
    assert FLOWS["customers"](return_state=True).is_completed()


def test_runs_of_different_modules_at_once_all_complete(
        emu_reset, database_url, monkeypatch, tmp_path):
    modules = ["customers", "vendors", "items"]
    expected = {m: reference(emu_reset, monkeypatch, tmp_path, m) for m in modules}
    store = prepare(emu_reset, monkeypatch, tmp_path, database_url, modules)
    emu_reset.emu.set_faults(Faults(latency_ms=10))

    states = run_at_once(modules)

    assert all(s.is_completed() for s in states), [getattr(s, "message", s) for s in states]
    for module in modules:
        assert [r.state for r in store.list_runs(module=module)] == ["completed"]
        assert store.run_lock(module) is None
    emu_reset.emu.set_faults(Faults())
    for module in modules:
        got, problems = world(emu_reset.emu, store, module)
        assert_converged(got, problems, expected[module])
