"""The journal: what each run did to each record (record events) and the records it could not
sync (failures), which stay open until a later run syncs them.

Failures belong to a Books organization: a store scoped to one sees and resolves only its
own, so a retry in one organization never resolves another's. Rows without an organization
(written before failures carried one, when nothing told whose they were) count as the
primary organization's. A store opened without an organization is the view of the whole
database (`crmbooks history`, `status`): it sees every organization's failures, each
with its organization (an unowned row shows the primary's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import or_, true, update
from sqlmodel import Session, select

from crmbooks.store.base import StoreBase, opt_str, records
from crmbooks.store.config import primary_org_id
from crmbooks.store.errors import StoreError
from crmbooks.store.jsonsafe import json_safe, scrub
from crmbooks.store.tables import EVENT_ACTIONS, Failure, RecordEvent, utcnow

EVENT_COLUMNS = [
    "run_id", "module", "side", "record_key", "crm_id", "books_id", "name", "action",
    "changes", "conflicts", "message", "created_at",
]
FAILURE_COLUMNS = [
    "id", "org_id", "run_id", "module", "side", "record_key", "crm_id", "books_id", "payload",
    "code", "field", "message", "hint", "attempts", "resolved", "created_at", "updated_at",
]


class JournalStore(StoreBase):
    """Record events and failures; failures scoped to the store's Books organization."""

    def add_events(self, run_id: str, module: str,
                   events: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Append record events (one per record and action) in bulk; return how many.

        Each event: side, record_key, action (one of EVENT_ACTIONS), optional crm_id,
        books_id, name, changes [{field, before, after}], conflicts, message.
        """
        objs = []
        for row in records(events):
            if row.get("action") not in EVENT_ACTIONS:
                raise StoreError(f"event action must be one of {EVENT_ACTIONS}: {row!r}")
            objs.append(RecordEvent(
                run_id=run_id, module=module, side=row.get("side", "books"),
                record_key=str(row["record_key"]), crm_id=opt_str(row.get("crm_id")),
                books_id=opt_str(row.get("books_id")), name=opt_str(row.get("name")),
                action=row["action"], changes=json_safe(row.get("changes") or []),
                conflicts=json_safe(row.get("conflicts") or []),
                message=opt_str(row.get("message")),
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
        """Record events of a run and/or of one record, oldest first: the audit trail of
        every field a sync changed, with its value before and after."""
        stmt = select(RecordEvent).order_by(RecordEvent.id)
        if run_id:
            stmt = stmt.where(RecordEvent.run_id == run_id)
        if record_key:
            stmt = stmt.where(RecordEvent.record_key == record_key)
        with self.session() as s:
            rows = [{c: getattr(e, c) for c in EVENT_COLUMNS} for e in s.exec(stmt).all()]
        return pd.DataFrame(rows, columns=EVENT_COLUMNS)

    def _own_failures(self, session: Session):
        """The condition that keeps the failures this store may see (see the module's text)."""
        if not self.org_id:
            return true()
        if self.org_id == primary_org_id(session):
            return or_(Failure.org_id == self.org_id, Failure.org_id.is_(None),
                       Failure.org_id == "")
        return Failure.org_id == self.org_id

    def add_failures(self, run_id: str | None, module: str,
                     failures: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Append failure rows in bulk; a record already failing unresolved gets attempts + 1.

        Each failure: side, record_key, message, optional crm_id, books_id, payload (scrubbed
        of secrets here), code, field, hint. Rows carry the store's Books organization.
        """
        rows = records(failures)
        with self.session() as s:
            own = self._own_failures(s)
            for row in rows:
                existing = s.exec(select(Failure).where(
                    own, Failure.module == module, Failure.record_key == str(row["record_key"]),
                    Failure.resolved == False,  # noqa: E712  (SQL expression, not a bool test)
                )).first()
                failure = existing or Failure(module=module, record_key=str(row["record_key"]),
                                              side=row.get("side", "books"), attempts=0,
                                              org_id=self.org_id)
                if self.org_id:  # an unowned row this organization took up becomes its own
                    failure.org_id = self.org_id
                self._fill_failure(failure, run_id, row)
                s.add(failure)
            s.commit()
        return len(rows)

    @staticmethod
    def _fill_failure(failure: Failure, run_id: str | None, row: Mapping[str, Any]) -> None:
        """Copy one failure row's data onto ``failure`` and count the attempt."""
        failure.run_id = run_id
        failure.side = row.get("side", failure.side)
        failure.crm_id = opt_str(row.get("crm_id")) or failure.crm_id
        failure.books_id = opt_str(row.get("books_id")) or failure.books_id
        payload = json_safe(row.get("payload"))
        failure.payload = scrub(payload) if isinstance(payload, dict) else (
            {"value": scrub(payload)} if payload is not None else None)
        failure.code = opt_str(row.get("code"))
        failure.field = opt_str(row.get("field"))
        failure.message = opt_str(row.get("message")) or ""
        failure.hint = opt_str(row.get("hint"))
        failure.attempts += 1
        failure.updated_at = utcnow()

    def failures(self, *, run_id: str | None = None, module: str | None = None,
                 unresolved_only: bool = True) -> pd.DataFrame:
        """Failures of a run and/or module as a DataFrame of FAILURE_COLUMNS.

        ``org_id`` is each failure's Books organization: a row written before failures
        carried one counts as the primary organization's, so it shows the primary's id."""
        with self.session() as s:
            primary = primary_org_id(s) or ""
            stmt = select(Failure).where(self._own_failures(s)).order_by(Failure.id)
            if run_id:
                stmt = stmt.where(Failure.run_id == run_id)
            if module:
                stmt = stmt.where(Failure.module == module)
            if unresolved_only:
                stmt = stmt.where(Failure.resolved == False)  # noqa: E712
            rows = [{c: getattr(f, c) for c in FAILURE_COLUMNS} for f in s.exec(stmt).all()]
        for row in rows:
            row["org_id"] = row["org_id"] or primary
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
                self._own_failures(s), Failure.module == module, Failure.record_key.in_(keys),
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
            result = s.exec(update(Failure).where(self._own_failures(s), Failure.id.in_(ids))
                            .values(attempts=Failure.attempts + 1, updated_at=utcnow()))
            s.commit()
        return result.rowcount or 0
