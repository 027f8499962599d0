"""Runs: the history row of each sync run, and the run lock that lets one run of a module
(per Books organization) sync at a time."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from crmbooks.store.base import StoreBase, as_utc, opt_str
from crmbooks.store.config import primary_org_id
from crmbooks.store.errors import StoreError
from crmbooks.store.jsonsafe import json_safe
from crmbooks.store.tables import RUN_STATES, Run, RunLock, utcnow

#: A run lock older than this is taken over even when its process cannot be checked (another
#: host): no sync of one module runs this long, so its holder died without releasing it.
RUN_LOCK_STALE_AFTER = timedelta(hours=12)


class RunLockHeld(RuntimeError):
    """Another run of the same module holds the run lock; `holder` is its RunLock row."""

    def __init__(self, holder: RunLock):
        since = as_utc(holder.acquired_at)
        super().__init__(
            f"another run of {holder.module} is in progress (run {holder.run_id}, since "
            f"{since:%Y-%m-%d %H:%M:%S} UTC, process {holder.pid} on {holder.host}): "
            "try again when it ends")
        self.holder = holder

    def __reduce__(self):
        # Exception pickles its args only, which are not this constructor's arguments.
        return (type(self), (self.holder,))



def _pid_alive(pid: int) -> bool:
    """True when a process with this id runs on this host (or might: not ours to signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def process_gone(host: str | None, pid: int | None) -> bool:
    """True when process `pid` of `host` is known to have ended: it ran on this host and no
    process has its id any more (one on another host cannot be checked)."""
    return host == socket.gethostname() and bool(pid) and pid > 0 and not _pid_alive(pid)


def lock_is_stale(lock: RunLock, stale_after: timedelta = RUN_LOCK_STALE_AFTER) -> bool:
    """True for a lock whose run cannot be running any more: its process on this host is
    gone (a run killed by SIGKILL or a crash of the machine), or it is older than the bound."""
    if utcnow() - as_utc(lock.acquired_at) > stale_after:
        return True
    return process_gone(lock.host, lock.pid)


class RunStore(StoreBase):
    """Run history (start, finish, list) and the run lock of the store's Books organization."""

    def start_run(self, module: str, *, dry_run: bool = False, flow_run_id: str | None = None,
                  settings_version: int | None = None, message: str | None = None) -> str:
        """Record the start of a run and return its id (uuid string)."""
        run = Run(module=module, org_id=self.org_id, dry_run=dry_run,
                  flow_run_id=opt_str(flow_run_id), settings_version=settings_version,
                  counts={}, api_calls={}, message=message)
        with self.session() as s:
            s.add(run)
            s.commit()
        return run.id

    def finish_run(self, run_id: str, state: str, *, counts: dict | None = None,
                   api_calls: dict | None = None, plan_summary: dict | None = None,
                   message: str | None = None) -> Run:
        """Close a run with its final state, counts, API calls and an optional message."""
        if state not in RUN_STATES:
            raise StoreError(f"run state must be one of {RUN_STATES}, got {state!r}")
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise StoreError(f"no run {run_id!r}")
            run.state, run.finished_at, run.message = state, utcnow(), message
            if counts is not None:
                run.counts = json_safe(counts)
            if api_calls is not None:
                run.api_calls = json_safe(api_calls)
            if plan_summary is not None:
                run.plan_summary = json_safe(plan_summary)
            s.add(run)
            s.commit()
        return run

    def run(self, run_id: str) -> Run | None:
        """One run by id."""
        with self.session() as s:
            return s.get(Run, run_id)

    def runs_of_flow_run(self, flow_run_id: str) -> list[Run]:
        """The runs a Prefect flow run made (one per module it synced), oldest first: the
        Prefect UI shows a run by its flow-run id, crmbooks by its own."""
        stmt = select(Run).where(Run.flow_run_id == str(flow_run_id).strip()).order_by(
            Run.started_at, Run.id)
        with self.session() as s:
            return list(s.exec(stmt).all())

    def list_runs(self, module: str | None = None, limit: int = 20,
                  org_id: str | None = None) -> list[Run]:
        """Runs newest first, optionally of one module and of one Books organization (runs
        stored without one count as the primary's)."""
        stmt = select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)
        if module:
            stmt = stmt.where(Run.module == module)
        with self.session() as s:
            if org_id:
                own = [org_id, *([""] if org_id == primary_org_id(s) else [])]
                stmt = stmt.where(Run.org_id.in_(own))
            return list(s.exec(stmt).all())

    def acquire_run_lock(self, module: str, run_id: str, *,
                         stale_after: timedelta = RUN_LOCK_STALE_AFTER) -> RunLock | None:
        """Make `run_id` the one run of `module` (this organization) that may sync now.

        The insert is the atomic test-and-set (the unique key on org and module): of two
        runs starting at once on any number of workers, exactly one gets the row. A lock of
        a dead run (see :func:`lock_is_stale`) is taken over, and that run is closed as
        failed. Returns the stale lock taken over (None if there was none); raises
        RunLockHeld when another live run holds it. Holding it already is fine (a retry).
        """
        taken_over = None
        for _ in range(3):
            lock = RunLock(org_id=self.org_id, module=module, run_id=run_id,
                           host=socket.gethostname(), pid=os.getpid())
            try:
                with self.session() as s:
                    s.add(lock)
                    s.commit()
                return taken_over
            except IntegrityError:
                pass
            holder = self.run_lock(module)
            if holder is None:
                continue  # released between our insert and our read: try again
            if holder.run_id == run_id:
                return taken_over
            if not lock_is_stale(holder, stale_after):
                raise RunLockHeld(holder)
            if self._drop_stale_lock(holder):
                taken_over = holder
        holder = self.run_lock(module)
        if holder is None or holder.run_id == run_id:  # pragma: no cover - a lost race loop
            return taken_over
        raise RunLockHeld(holder)

    def _drop_stale_lock(self, holder: RunLock) -> bool:
        """Delete a stale lock (only if unchanged) and close its run; False if gone."""
        with self.session() as s:
            gone = s.exec(delete(RunLock).where(RunLock.id == holder.id,
                                                RunLock.run_id == holder.run_id))
            s.exec(update(Run).where(Run.id == holder.run_id, Run.state == "running").values(
                state="failed", finished_at=utcnow(),
                message=f"interrupted: process {holder.pid} on {holder.host} ended without "
                        "finishing this run (its run lock was taken over by the next run)"))
            s.commit()
        return bool(gone.rowcount)

    def release_run_lock(self, module: str, run_id: str) -> bool:
        """Release the run lock of `module` if `run_id` holds it; True when it did."""
        with self.session() as s:
            gone = s.exec(delete(RunLock).where(
                RunLock.org_id == self.org_id, RunLock.module == module,
                RunLock.run_id == run_id))
            s.commit()
        return bool(gone.rowcount)

    def run_lock(self, module: str) -> RunLock | None:
        """The lock of the run of `module` now in progress (this organization), if any."""
        with self.session() as s:
            return s.exec(select(RunLock).where(RunLock.org_id == self.org_id,
                                                RunLock.module == module)).first()
