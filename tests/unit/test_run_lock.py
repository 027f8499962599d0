"""The store's run lock: one live run per organization and module, on SQLite and
PostgreSQL; a dead or ancient holder is taken over and its run closed."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from crmbooks.store import RunLock, RunLockHeld, Store, utcnow


def test_one_holder_per_module_and_organization(store):
    first = store.start_run("customers")
    assert store.acquire_run_lock("customers", first) is None
    assert store.acquire_run_lock("customers", first) is None  # a retry of the same run
    with pytest.raises(RunLockHeld) as held:
        store.acquire_run_lock("customers", store.start_run("customers"))
    assert f"run {first}" in str(held.value) and "try again when it ends" in str(held.value)
    store.acquire_run_lock("vendors", store.start_run("vendors"))  # another module
    Store(store.engine, org_id="other").acquire_run_lock("customers", "x")  # another org
    assert store.release_run_lock("customers", first)
    assert store.run_lock("customers") is None
    store.acquire_run_lock("customers", store.start_run("customers"))


def test_of_many_at_once_exactly_one_wins(store):
    runs = [store.start_run("items") for _ in range(8)]
    start, won, lost = threading.Barrier(len(runs)), [], []

    def take(run_id: str) -> None:
        start.wait(timeout=30)
        try:
            store.acquire_run_lock("items", run_id)
            won.append(run_id)
        except RunLockHeld:
            lost.append(run_id)

    threads = [threading.Thread(target=take, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(won) == 1 and len(lost) == len(runs) - 1
    assert store.run_lock("items").run_id == won[0]


def test_a_dead_holder_on_this_host_is_taken_over_and_its_run_closed(store):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = store.start_run("customers")
    store.acquire_run_lock("customers", killed)
    with store.session() as s:
        s.exec(update(RunLock).values(pid=dead.pid))
        s.commit()
    rerun = store.start_run("customers")
    taken = store.acquire_run_lock("customers", rerun)
    assert taken is not None and taken.run_id == killed
    assert store.run_lock("customers").run_id == rerun
    assert store.run(killed).state == "failed" and "interrupted" in store.run(killed).message


def test_a_live_holder_elsewhere_is_kept_until_it_is_too_old(store):
    holder = store.start_run("vendors")
    store.acquire_run_lock("vendors", holder)
    with store.session() as s:
        s.exec(update(RunLock).values(host=f"not-{socket.gethostname()}", pid=1))
        s.commit()
    with pytest.raises(RunLockHeld):
        store.acquire_run_lock("vendors", store.start_run("vendors"))
    with store.session() as s:
        s.exec(update(RunLock).values(acquired_at=utcnow() - timedelta(hours=13)))
        s.commit()
    assert store.acquire_run_lock("vendors", store.start_run("vendors")).run_id == holder
