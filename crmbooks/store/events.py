"""Events the receiver accepted: written before it answers, taken by its workers, marked
done once a run has handled them, retried with backoff when a run failed.

A row is *free* while it is pending and no live process has taken it: never taken, taken by
a process of this host that is gone (a receiver killed before or during the run), or taken
longer ago than :data:`EVENT_LEASE` (a process on another host that never came back). Free
rows whose ``due_at`` has come are what a receiver (re)queues after a restart or a failed run.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, update
from sqlmodel import select

from crmbooks.store.base import StoreBase, as_utc
from crmbooks.store.runs import process_gone
from crmbooks.store.tables import InboxEvent, utcnow

#: A taken event whose process cannot be checked (another host) is free again after this.
EVENT_LEASE = timedelta(hours=1)
#: A failed run is retried after RETRY_FIRST, doubling each time up to RETRY_MOST ...
RETRY_FIRST = timedelta(seconds=10)
RETRY_MOST = timedelta(minutes=30)
#: ... and given up on (state failed, shown by `crmbooks status`) after this many attempts.
MAX_ATTEMPTS = 8
#: Done events are kept this long (the receiver prunes older ones).
KEEP_DONE = timedelta(days=7)


def retry_delay(attempts: int, first: timedelta = RETRY_FIRST,
                most: timedelta = RETRY_MOST) -> timedelta:
    """How long an event waits after its `attempts`-th failed run."""
    return min(first * 2 ** min(max(attempts - 1, 0), 30), most)


def _free(row: InboxEvent, now: datetime) -> bool:
    if row.taken_at is None:
        return True
    return now - as_utc(row.taken_at) > EVENT_LEASE or process_gone(row.taken_host,
                                                                     row.taken_pid)


def _chunks(values: list, size: int = 500) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class EventStore(StoreBase):
    """The receiver's accepted events (all organizations: the key says which)."""

    def accept_events(self, worker: str, keys: Iterable[str],
                      org_id: str | Iterable[str] = "") -> list[int]:
        """Keep accepted events (one per key), due now; their ids. Call before answering.
        `org_id` is the organization of every key, or one per key."""
        now, keys = utcnow(), list(keys)
        orgs = [org_id] * len(keys) if isinstance(org_id, str) else list(org_id)
        rows = [InboxEvent(worker=worker, key=key, org_id=org or "", received_at=now,
                           due_at=now) for key, org in zip(keys, orgs, strict=True)]
        with self.session() as s:
            s.add_all(rows)
            s.commit()
        return [row.id for row in rows]

    def take_inbox(self, worker: str, keys: Iterable[str]) -> list[InboxEvent]:
        """Take the free pending events of these keys for this process (whatever their
        `due_at`: the run about to start covers them all); the rows taken."""
        keys, now = list(dict.fromkeys(keys)), utcnow()
        me = (socket.gethostname(), os.getpid())
        taken: list[InboxEvent] = []
        with self.session() as s:
            for chunk in _chunks(keys):
                rows = s.exec(select(InboxEvent).where(
                    InboxEvent.worker == worker, InboxEvent.state == "pending",
                    InboxEvent.key.in_(chunk))).all()
                for row in rows:
                    if not _free(row, now):
                        continue
                    # Compare and set: of two processes taking one row, one changes it.
                    done = s.exec(update(InboxEvent).where(
                        InboxEvent.id == row.id, InboxEvent.state == "pending",
                        (InboxEvent.taken_at.is_(None) if row.taken_at is None
                         else InboxEvent.taken_at == row.taken_at),
                    ).values(taken_host=me[0], taken_pid=me[1], taken_at=now))
                    if done.rowcount:
                        row.taken_host, row.taken_pid, row.taken_at = me[0], me[1], now
                        taken.append(row)
            s.commit()
        return taken

    def inbox_due_keys(self, worker: str, limit: int = 5000) -> list[str]:
        """Keys of the free pending events whose time has come, oldest first: what a
        receiver queues again after a restart or once a failed run's backoff is over."""
        now = utcnow()
        with self.session() as s:
            rows = s.exec(select(InboxEvent).where(
                InboxEvent.worker == worker, InboxEvent.state == "pending",
                InboxEvent.due_at <= now).order_by(InboxEvent.id).limit(limit)).all()
        return list(dict.fromkeys(r.key for r in rows if _free(r, now)))

    def finish_inbox(self, ids: Iterable[int], note: str | None = None) -> None:
        """The run handled these events: done."""
        ids = list(ids)
        with self.session() as s:
            for chunk in _chunks(ids):
                s.exec(update(InboxEvent).where(InboxEvent.id.in_(chunk)).values(
                    state="done", finished_at=utcnow(), taken_host=None, taken_pid=None,
                    taken_at=None, last_error=note))
            s.commit()

    def release_inbox(self, ids: Iterable[int]) -> None:
        """Give events back untried (their run waits for a run lock): pending, free."""
        ids = list(ids)
        with self.session() as s:
            for chunk in _chunks(ids):
                s.exec(update(InboxEvent).where(InboxEvent.id.in_(chunk)).values(
                    taken_host=None, taken_pid=None, taken_at=None))
            s.commit()

    def fail_inbox(self, ids: Iterable[int], error: str, *,
                    first: timedelta = RETRY_FIRST, most: timedelta = RETRY_MOST,
                    max_attempts: int = MAX_ATTEMPTS) -> None:
        """Their run failed: each is tried again after its backoff, or is failed for good
        after `max_attempts` (then `crmbooks status` lists it)."""
        ids, now = list(ids), utcnow()
        with self.session() as s:
            for chunk in _chunks(ids):
                for row in s.exec(select(InboxEvent).where(InboxEvent.id.in_(chunk))).all():
                    row.attempts += 1
                    row.last_error = error[:2000]
                    row.taken_host = row.taken_pid = row.taken_at = None
                    if row.attempts >= max_attempts:
                        row.state, row.finished_at = "failed", now
                    else:
                        row.due_at = now + retry_delay(row.attempts, first, most)
                    s.add(row)
            s.commit()

    def inbox(self, state: str | None = None, worker: str | None = None,
              limit: int = 1000) -> list[InboxEvent]:
        """Accepted events, oldest first (optionally of one state or worker)."""
        stmt = select(InboxEvent).order_by(InboxEvent.id).limit(limit)
        if state:
            stmt = stmt.where(InboxEvent.state == state)
        if worker:
            stmt = stmt.where(InboxEvent.worker == worker)
        with self.session() as s:
            return list(s.exec(stmt).all())

    def inbox_summary(self, show_failed: int = 10) -> dict:
        """Pending and failed events: counts per worker, the oldest pending one, the last
        failed ones (what `crmbooks status` shows)."""
        with self.session() as s:
            counts = s.exec(select(InboxEvent.worker, InboxEvent.state, func.count())
                            .where(InboxEvent.state != "done")
                            .group_by(InboxEvent.worker, InboxEvent.state)).all()
            oldest = s.exec(select(func.min(InboxEvent.received_at))
                            .where(InboxEvent.state == "pending")).one()
            failed = s.exec(select(InboxEvent).where(InboxEvent.state == "failed")
                            .order_by(InboxEvent.id.desc()).limit(show_failed)).all()
        by_worker: dict[str, dict[str, int]] = {}
        for worker, state, n in counts:
            by_worker.setdefault(worker, {"pending": 0, "failed": 0})[state] = n
        return {
            "pending": sum(w["pending"] for w in by_worker.values()),
            "failed": sum(w["failed"] for w in by_worker.values()),
            "by_worker": by_worker,
            "oldest_pending": as_utc(oldest).isoformat() if oldest else None,
            "failed_events": [{"worker": r.worker, "key": r.key, "attempts": r.attempts,
                               "received_at": as_utc(r.received_at).isoformat(),
                               "error": r.last_error} for r in failed],
        }

    def prune_inbox(self, older_than: timedelta = KEEP_DONE) -> int:
        """Delete done events finished longer ago than `older_than`; how many."""
        with self.session() as s:
            gone = s.exec(delete(InboxEvent).where(
                InboxEvent.state == "done", InboxEvent.finished_at < utcnow() - older_than))
            s.commit()
        return gone.rowcount or 0
