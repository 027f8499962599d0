"""The operations the flows need on the state store, each in its own short transaction.

Exactly-once (B2) rests on two things: the remote write is an upsert keyed by the other
side's id (replaying it is harmless), and the link is written right after each success, in
its own small transaction, so a crash loses at most the link of in-flight records, which the
replayed upsert recreates.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from crmbooks.store.engine import make_engine
from crmbooks.store.jsonsafe import SECRET_KEY, json_safe, scrub
from crmbooks.store.tables import (
    EVENT_ACTIONS,
    LINK_ORIGINS,
    RUN_STATES,
    Connection,
    Cursor,
    Failure,
    Link,
    RecordEvent,
    Run,
    RunLock,
    SettingsVersion,
    utcnow,
)

# Ids per ``IN (...)`` query: under SQLite's and PostgreSQL's bind-variable limits.
ID_CHUNK = 500
LINK_COLUMNS = [
    "crm_id", "books_id", "kind", "crm_module", "parent_crm_id", "parent_books_id",
    "crm_values", "books_values", "made_by", "crm_modified", "books_modified", "updated_at",
]
EVENT_COLUMNS = [
    "run_id", "module", "side", "record_key", "crm_id", "books_id", "name", "action",
    "changes", "conflicts", "message", "created_at",
]
FAILURE_COLUMNS = [
    "id", "run_id", "module", "side", "record_key", "crm_id", "books_id", "payload", "code",
    "field", "message", "hint", "attempts", "resolved", "created_at", "updated_at",
]


def as_utc(value: datetime | None) -> datetime | None:
    """Return ``value`` as an aware UTC datetime (SQLite returns naive ones; they are UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _opt_str(value: Any) -> str | None:
    """An id as a string, or None for empty / NaN (ids must never become floats)."""
    value = json_safe(value)
    if value is None or value == "":
        return None
    return str(value)


class StoreError(ValueError):
    """A store operation was called with data it cannot accept (caller's bug)."""


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


def _pid_alive(pid: int) -> bool:
    """True when a process with this id runs on this host (or might: not ours to signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def lock_is_stale(lock: RunLock, stale_after: timedelta = RUN_LOCK_STALE_AFTER) -> bool:
    """True for a lock whose run cannot be running any more: its process on this host is
    gone (a run killed by SIGKILL or a crash of the machine), or it is older than the bound."""
    if utcnow() - as_utc(lock.acquired_at) > stale_after:
        return True
    return lock.host == socket.gethostname() and lock.pid > 0 and not _pid_alive(lock.pid)


def _link_frame(links: Iterable[Link]) -> pd.DataFrame:
    """Links as a DataFrame of LINK_COLUMNS; missing values are empty dicts."""
    rows = [{c: getattr(link, c) for c in LINK_COLUMNS} for link in links]
    frame = pd.DataFrame(rows, columns=LINK_COLUMNS, dtype=object)
    for col in ("crm_values", "books_values"):
        frame[col] = [v or {} for v in frame[col]]
    return frame


class Store:
    """The crmbooks state store: links, cursors, runs, events, failures, settings, connection."""

    def __init__(self, engine: Engine | None = None, org_id: str = "") -> None:
        """Wrap ``engine`` (default: :func:`make_engine`) for the Books organization ``org_id``."""
        self.engine = engine or make_engine()
        self.org_id = org_id

    @classmethod
    def open(cls, url: str | None = None, org_id: str = "") -> Store:
        """Open the store at ``url`` (default CRMBOOKS_DATABASE_URL or the SQLite file)."""
        return cls(make_engine(url), org_id=org_id)

    def session(self) -> Session:
        """A new session; objects stay readable after commit."""
        return Session(self.engine, expire_on_commit=False)

    # ----------------------------------------------------------------------------- links
    def _module_links(self, module: str, *columns: Any):
        """``SELECT`` of this org's links of ``module`` (whole, or just ``columns``): the one
        query the link readers below narrow down."""
        return select(*columns or (Link,)).where(Link.org_id == self.org_id,
                                                 Link.module == module)

    def links(self, module: str, kind: str | None = None) -> pd.DataFrame:
        """All links of ``module`` (optionally one record kind) as a DataFrame of LINK_COLUMNS.

        Ids are strings; ``crm_values`` / ``books_values`` are dicts (the merge base).
        """
        stmt = self._module_links(module)
        if kind is not None:
            stmt = stmt.where(Link.kind == kind)
        with self.session() as s:
            return _link_frame(s.exec(stmt).all())

    def links_of(self, module: str, *, crm_ids: Iterable[Any] = (),
                 books_ids: Iterable[Any] = ()) -> pd.DataFrame:
        """The links of ``module`` holding one of ``crm_ids`` or one of ``books_ids``, as
        :meth:`links` returns them (LINK_COLUMNS, values as dicts).

        What an incremental run reads: the full links (with their JSON values) of the records
        it fetched only, so its memory follows what it fetched, not the number of links
        (issue 8). Ids are read ``IN (...)`` in chunks of ``ID_CHUNK`` (bind-variable limits
        of SQLite and PostgreSQL); a link found by both of its ids comes once.
        """
        found: dict[int, Link] = {}
        with self.session() as s:
            for column, ids in ((Link.crm_id, crm_ids), (Link.books_id, books_ids)):
                wanted = sorted({str(i) for i in ids if i is not None and str(i)})
                for start in range(0, len(wanted), ID_CHUNK):
                    stmt = self._module_links(module).where(
                        column.in_(wanted[start:start + ID_CHUNK]))
                    found.update((link.id, link) for link in s.exec(stmt).all())
        return _link_frame(found[k] for k in sorted(found))

    def link_ids(self, module: str) -> pd.DataFrame:
        """Every link of ``module`` as its ids and kind only (columns crm_id, books_id, kind,
        strings): what a plan needs to know of the links it does not merge ("is this record
        linked", "which Books parent has this CRM parent"), without their JSON values."""
        stmt = self._module_links(module, Link.crm_id, Link.books_id, Link.kind)
        with self.session() as s:
            rows = s.exec(stmt).all()
        return pd.DataFrame([tuple(r) for r in rows], columns=["crm_id", "books_id", "kind"],
                            dtype=object)

    def link_stamps(self, module: str, side: str) -> dict[str, str]:
        """{id on ``side`` (crm|books): its modified stamp right after our last write}, the
        echo stamps a fetch drops: two columns, not whole links (whose JSON values cost a
        second or more to load at a few thousand links, on every quiet run)."""
        if side not in ("crm", "books"):
            raise StoreError(f"side must be crm or books, got {side!r}")
        id_col, stamp_col = getattr(Link, f"{side}_id"), getattr(Link, f"{side}_modified")
        stmt = self._module_links(module, id_col, stamp_col).where(stamp_col.is_not(None))
        with self.session() as s:
            return {str(i): m for i, m in s.exec(stmt).all() if m}

    def links_by_crm_id(self, module: str) -> dict[str, Link]:
        """Links of ``module`` keyed by CRM id."""
        with self.session() as s:
            return {link.crm_id: link for link in s.exec(self._module_links(module)).all()}

    def find_link(
        self, module: str, *, crm_id: str | None = None, books_id: str | None = None
    ) -> Link | None:
        """The link of ``module`` holding ``crm_id`` or ``books_id`` (whichever is given)."""
        conds = []
        if crm_id:
            conds.append(Link.crm_id == str(crm_id))
        if books_id:
            conds.append(Link.books_id == str(books_id))
        if not conds:
            raise StoreError("find_link needs crm_id or books_id")
        with self.session() as s:
            return s.exec(self._module_links(module).where(or_(*conds))).first()

    def upsert_link(self, module: str, **fields: Any) -> Link:
        """Create or update one link right after a record's success (one short transaction).

        ``fields``: crm_id, books_id (both required), kind, crm_module, parent_crm_id,
        parent_books_id, crm_values, books_values, made_by. A link is found by its CRM id or
        its Books id, so re-linking either side replaces the old pairing instead of failing.
        """
        return self.upsert_links(module, [fields])[0]

    def upsert_links(self, module: str, rows: Iterable[Mapping[str, Any]]) -> list[Link]:
        """Upsert a small batch of links in one transaction (see :meth:`upsert_link`)."""
        rows = [self._link_fields(r) for r in rows]
        try:
            return self._upsert_links(module, rows)
        except IntegrityError:
            # Another worker inserted the same pair between our select and insert: retry once.
            return self._upsert_links(module, rows)

    def _link_fields(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and normalise one link row."""
        out = {k: row[k] for k in row if k in Link.model_fields}
        out["crm_id"], out["books_id"] = _opt_str(row.get("crm_id")), _opt_str(row.get("books_id"))
        if not out["crm_id"] or not out["books_id"]:
            raise StoreError(f"a link needs both crm_id and books_id, got {dict(row)!r}")
        if out.get("made_by", "sync") not in LINK_ORIGINS:
            raise StoreError(f"made_by must be one of {LINK_ORIGINS}, got {out['made_by']!r}")
        for col in ("parent_crm_id", "parent_books_id"):
            if col in out:
                out[col] = _opt_str(out[col])
        for col in ("crm_values", "books_values"):
            if col in out:
                out[col] = json_safe(out[col] or {})
        return out

    def _upsert_links(self, module: str, rows: list[dict[str, Any]]) -> list[Link]:
        """One transaction: update the link matching either id, or insert a new one."""
        saved = []
        with self.session() as s:
            for row in rows:
                stmt = self._module_links(module).where(
                    or_(Link.crm_id == row["crm_id"], Link.books_id == row["books_id"]))
                found = list(s.exec(stmt).all())
                for stale in found[1:]:  # both ids were linked elsewhere: keep one row
                    s.delete(stale)
                s.flush()
                link = found[0] if found else Link(org_id=self.org_id, module=module,
                                                   crm_module=row.get("crm_module", ""),
                                                   crm_id=row["crm_id"],
                                                   books_id=row["books_id"])
                for key, value in row.items():
                    setattr(link, key, value)
                link.updated_at = utcnow()
                s.add(link)
                saved.append(link)
            s.commit()
        return saved

    def delete_link(self, module: str, *, crm_id: str | None = None,
                    books_id: str | None = None) -> bool:
        """Remove the link holding ``crm_id`` or ``books_id``; True if one was removed."""
        link = self.find_link(module, crm_id=crm_id, books_id=books_id)
        if link is None:
            return False
        with self.session() as s:
            s.delete(s.get(Link, link.id))
            s.commit()
        return True

    # --------------------------------------------------------------------------- cursors
    def cursor(self, module: str, side: str) -> datetime | None:
        """The cursor of ``module`` on ``side`` (crm|books) in UTC; None before the first run."""
        with self.session() as s:
            row = s.exec(select(Cursor).where(
                Cursor.org_id == self.org_id, Cursor.module == module, Cursor.side == side
            )).first()
        return as_utc(row.value) if row else None

    def advance_cursor(self, module: str, side: str, value: datetime) -> datetime:
        """Move the cursor forward to ``value`` (never back); return the cursor now stored.

        Call only after the records it covers were pushed (style rule 8).
        """
        if value.tzinfo is None:
            raise StoreError("cursor values must be timezone-aware (UTC)")
        value = as_utc(value)
        with self.session() as s:
            row = s.exec(select(Cursor).where(
                Cursor.org_id == self.org_id, Cursor.module == module, Cursor.side == side
            )).first()
            if row is None:
                row = Cursor(org_id=self.org_id, module=module, side=side, value=value)
            elif as_utc(row.value) >= value:
                return as_utc(row.value)
            row.value, row.updated_at = value, utcnow()
            s.add(row)
            s.commit()
        return value

    # ------------------------------------------------------------------------------ runs
    def start_run(self, module: str, *, dry_run: bool = False, flow_run_id: str | None = None,
                  settings_version: int | None = None, message: str | None = None) -> str:
        """Record the start of a run and return its id (uuid string)."""
        run = Run(module=module, org_id=self.org_id, dry_run=dry_run,
                  flow_run_id=_opt_str(flow_run_id), settings_version=settings_version,
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

    def list_runs(self, module: str | None = None, limit: int = 20) -> list[Run]:
        """Runs newest first, optionally of one module."""
        stmt = select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)
        if module:
            stmt = stmt.where(Run.module == module)
        with self.session() as s:
            return list(s.exec(stmt).all())

    # -------------------------------------------------------------------------- run lock
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

    # ------------------------------------------------------------------- events, failures
    def add_events(self, run_id: str, module: str,
                   events: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Append record events (one per record and action) in bulk; return how many.

        Each event: side, record_key, action (one of EVENT_ACTIONS), optional crm_id,
        books_id, name, changes [{field, before, after}], conflicts, message.
        """
        rows = _records(events)
        objs = []
        for row in rows:
            if row.get("action") not in EVENT_ACTIONS:
                raise StoreError(f"event action must be one of {EVENT_ACTIONS}: {row!r}")
            objs.append(RecordEvent(
                run_id=run_id, module=module, side=row.get("side", "books"),
                record_key=str(row["record_key"]), crm_id=_opt_str(row.get("crm_id")),
                books_id=_opt_str(row.get("books_id")), name=_opt_str(row.get("name")),
                action=row["action"], changes=json_safe(row.get("changes") or []),
                conflicts=json_safe(row.get("conflicts") or []),
                message=_opt_str(row.get("message")),
            ))
        with self.session() as s:
            s.add_all(objs)
            s.commit()
        return len(objs)

    def clear_events(self, run_id: str) -> int:
        """Remove a run's record events (a report that runs again replaces them)."""
        with self.session() as s:
            found = list(s.exec(select(RecordEvent).where(RecordEvent.run_id == run_id)).all())
            for event in found:
                s.delete(event)
            s.commit()
        return len(found)

    def events(self, run_id: str | None = None, record_key: str | None = None) -> pd.DataFrame:
        """Record events of a run and/or of one record, oldest first (B4 audit trail)."""
        stmt = select(RecordEvent).order_by(RecordEvent.id)
        if run_id:
            stmt = stmt.where(RecordEvent.run_id == run_id)
        if record_key:
            stmt = stmt.where(RecordEvent.record_key == record_key)
        with self.session() as s:
            rows = [{c: getattr(e, c) for c in EVENT_COLUMNS} for e in s.exec(stmt).all()]
        return pd.DataFrame(rows, columns=EVENT_COLUMNS)

    def add_failures(self, run_id: str | None, module: str,
                     failures: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Append failure rows in bulk; a record already failing unresolved gets attempts + 1.

        Each failure: side, record_key, message, optional crm_id, books_id, payload (scrubbed
        of secrets here), code, field, hint.
        """
        rows = _records(failures)
        with self.session() as s:
            for row in rows:
                existing = s.exec(select(Failure).where(
                    Failure.module == module, Failure.record_key == str(row["record_key"]),
                    Failure.resolved == False,  # noqa: E712  (SQL expression, not a bool test)
                )).first()
                failure = existing or Failure(module=module, record_key=str(row["record_key"]),
                                              side=row.get("side", "books"), attempts=0)
                self._fill_failure(failure, run_id, row)
                s.add(failure)
            s.commit()
        return len(rows)

    @staticmethod
    def _fill_failure(failure: Failure, run_id: str | None, row: Mapping[str, Any]) -> None:
        """Copy one failure row's data onto ``failure`` and count the attempt."""
        failure.run_id = run_id
        failure.side = row.get("side", failure.side)
        failure.crm_id = _opt_str(row.get("crm_id")) or failure.crm_id
        failure.books_id = _opt_str(row.get("books_id")) or failure.books_id
        payload = json_safe(row.get("payload"))
        failure.payload = scrub(payload) if isinstance(payload, dict) else (
            {"value": scrub(payload)} if payload is not None else None)
        failure.code = _opt_str(row.get("code"))
        failure.field = _opt_str(row.get("field"))
        failure.message = _opt_str(row.get("message")) or ""
        failure.hint = _opt_str(row.get("hint"))
        failure.attempts += 1
        failure.updated_at = utcnow()

    def failures(self, *, run_id: str | None = None, module: str | None = None,
                 unresolved_only: bool = True) -> pd.DataFrame:
        """Failures of a run and/or module as a DataFrame of FAILURE_COLUMNS."""
        stmt = select(Failure).order_by(Failure.id)
        if run_id:
            stmt = stmt.where(Failure.run_id == run_id)
        if module:
            stmt = stmt.where(Failure.module == module)
        if unresolved_only:
            stmt = stmt.where(Failure.resolved == False)  # noqa: E712
        with self.session() as s:
            rows = [{c: getattr(f, c) for c in FAILURE_COLUMNS} for f in s.exec(stmt).all()]
        return pd.DataFrame(rows, columns=FAILURE_COLUMNS)

    def resolve_failures(self, module: str, record_keys: Iterable[str],
                         note: str | None = None) -> int:
        """Mark the unresolved failures of these records resolved (they synced); return count.

        `note` says why when it was not a sync (the record was deleted at its source): it
        replaces the hint, so `history` shows it next to the reason the record failed."""
        keys = [str(k) for k in record_keys]
        if not keys:
            return 0
        extra = {"hint": note} if note else {}
        with self.session() as s:
            result = s.exec(update(Failure).where(
                Failure.module == module, Failure.record_key.in_(keys),
                Failure.resolved == False,  # noqa: E712
            ).values(resolved=True, updated_at=utcnow(), **extra))
            s.commit()
        return result.rowcount or 0

    def bump_attempts(self, failure_ids: Iterable[int]) -> int:
        """Add one attempt to these failures (a retry was tried); return how many rows."""
        ids = [int(i) for i in failure_ids]
        if not ids:
            return 0
        with self.session() as s:
            result = s.exec(update(Failure).where(Failure.id.in_(ids)).values(
                attempts=Failure.attempts + 1, updated_at=utcnow()))
            s.commit()
        return result.rowcount or 0

    # -------------------------------------------------------------------------- settings
    def save_settings(self, module: str, settings: Mapping[str, Any], *,
                      note: str | None = None) -> int:
        """Store a new active version of ``module``'s settings; return its version number.

        The previous version is kept (inactive). Runs read the active version when they
        start, so an edit applies from the next run (F23).
        """
        with self.session() as s:
            current = s.exec(select(func.max(SettingsVersion.version)).where(
                SettingsVersion.org_id == self.org_id, SettingsVersion.module == module
            )).one()
            version = (current or 0) + 1
            s.exec(update(SettingsVersion).where(
                SettingsVersion.org_id == self.org_id, SettingsVersion.module == module
            ).values(active=False))
            s.add(SettingsVersion(org_id=self.org_id, module=module, version=version,
                                  settings=json_safe(dict(settings)), active=True, note=note))
            s.commit()
        return version

    def active_settings(self, module: str) -> tuple[int, dict] | None:
        """The active (version, settings) of ``module``, or None if never configured."""
        with self.session() as s:
            row = s.exec(select(SettingsVersion).where(
                SettingsVersion.org_id == self.org_id, SettingsVersion.module == module,
                SettingsVersion.active == True,  # noqa: E712
            ).order_by(SettingsVersion.version.desc())).first()
        return (row.version, dict(row.settings or {})) if row else None

    def settings_history(self, module: str) -> list[SettingsVersion]:
        """All saved versions of ``module``'s settings, newest first."""
        with self.session() as s:
            return list(s.exec(select(SettingsVersion).where(
                SettingsVersion.org_id == self.org_id, SettingsVersion.module == module
            ).order_by(SettingsVersion.version.desc())).all())

    # ------------------------------------------------------------------------ connection
    def save_connection(self, name: str = "default", **fields: Any) -> Connection:
        """Create or update the named connection (non-secret fields only)."""
        bad = [k for k in fields if k not in Connection.model_fields]
        if bad:
            raise StoreError(f"unknown connection fields: {', '.join(bad)}")
        secret = [k for k in fields if k != "client_id" and _looks_secret(k)]
        if secret:
            raise StoreError(f"secrets are not stored in the database: {', '.join(secret)}")
        with self.session() as s:
            conn = s.exec(select(Connection).where(Connection.name == name)).first()
            conn = conn or Connection(name=name)
            for key, value in fields.items():
                setattr(conn, key, json_safe(value) if isinstance(value, (dict, list)) else value)
            conn.updated_at = utcnow()
            s.add(conn)
            s.commit()
        return conn

    def connection(self, name: str = "default") -> Connection | None:
        """The named connection, or None before ``crmbooks connect``."""
        with self.session() as s:
            return s.exec(select(Connection).where(Connection.name == name)).first()


def _looks_secret(key: str) -> bool:
    """True for field names that look like they hold a secret."""
    return bool(SECRET_KEY.search(key))


def _records(data: pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of a DataFrame or an iterable of mappings, as plain dicts."""
    if isinstance(data, pd.DataFrame):
        return [dict(r) for r in data.to_dict("records")]
    return [dict(r) for r in data]
