"""The receiver's inbox in the state store: events kept until handled, taken by one process
at a time, retried with a growing delay, given up on after a bound, taken over from a
process that is gone (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import update

from crmbooks.store import MAX_ATTEMPTS, InboxEvent, retry_delay, utcnow

W = "deal-triggers"


def test_accepted_events_are_due_at_once_and_taken_by_one_process(store):
    store.accept_events(W, ["1", "2", "2"])
    store.accept_events("transactions", ["20099001|crm|Quotes|9|"], org_id="20099001")
    assert store.inbox_due_keys(W) == ["1", "2"]
    taken = store.take_inbox(W, ["2"])
    assert len(taken) == 2 and {e.key for e in taken} == {"2"}
    assert store.take_inbox(W, ["2"]) == []  # taken by a live process: not twice
    assert store.inbox_due_keys(W) == ["1"]
    store.finish_inbox([e.id for e in taken])
    assert store.take_inbox(W, ["2"]) == []  # done
    summary = store.inbox_summary()
    assert (summary["pending"], summary["failed"]) == (2, 0)
    assert summary["by_worker"] == {W: {"pending": 1, "failed": 0},
                                    "transactions": {"pending": 1, "failed": 0}}


def test_a_failed_run_is_retried_later_each_time_later_then_given_up(store):
    [event_id] = store.accept_events(W, ["7"])
    assert [retry_delay(n) for n in (1, 2, 3)] == [timedelta(seconds=s) for s in (10, 20, 40)]
    assert retry_delay(50) == timedelta(minutes=30)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        [event] = store.take_inbox(W, ["7"])  # a new event of the key would run it at once
        store.fail_inbox([event.id], f"RuntimeError: Failed to reach API ({attempt})")
        [row] = store.inbox()
        assert row.attempts == attempt and row.taken_at is None
        if attempt < MAX_ATTEMPTS:
            assert row.state == "pending" and store.inbox_due_keys(W) == []  # not yet due
    assert row.state == "failed" and row.id == event_id
    summary = store.inbox_summary()
    assert summary["failed"] == 1 and summary["pending"] == 0
    assert summary["failed_events"][0]["error"].endswith(f"({MAX_ATTEMPTS})")


def test_events_of_a_process_that_is_gone_are_free_again(store):
    ids = store.accept_events(W, ["1", "2"])
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    with store.session() as s:  # taken by a receiver that was killed
        s.exec(update(InboxEvent).where(InboxEvent.id == ids[0]).values(
            taken_host=socket.gethostname(), taken_pid=dead_pid, taken_at=utcnow()))
        # ... and one taken by a live process of another host, two hours ago
        s.exec(update(InboxEvent).where(InboxEvent.id == ids[1]).values(
            taken_host="elsewhere", taken_pid=os.getpid(),
            taken_at=utcnow() - timedelta(hours=2)))
        s.commit()
    assert store.inbox_due_keys(W) == ["1", "2"]
    assert len(store.take_inbox(W, ["1", "2"])) == 2
    assert store.inbox_due_keys(W) == []


def test_released_events_are_free_and_done_ones_are_pruned(store):
    ids = store.accept_events(W, ["1", "2"])
    store.take_inbox(W, ["1", "2"])
    store.release_inbox([ids[0]])
    store.finish_inbox([ids[1]])
    assert store.inbox_due_keys(W) == ["1"]
    assert store.prune_inbox() == 0  # finished just now
    assert store.prune_inbox(older_than=timedelta(0)) == 1
    assert [e.key for e in store.inbox()] == ["1"]
