"""The review queue: records a run left for a person (possible duplicates, pairs by hand).

A run under the duplicates policy ``review`` queues each record it would otherwise have
created or linked on a guess; ``crmbooks duplicates …`` decides; the next run applies the
decision and marks the entry applied. Entries are scoped to the store's Books organization.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import select

from crmbooks.store.base import StoreBase, opt_str
from crmbooks.store.errors import StoreError
from crmbooks.store.jsonsafe import json_safe
from crmbooks.store.tables import REVIEW_DECISIONS, ReviewEntry, utcnow


class ReviewStore(StoreBase):
    """Queued records and the decisions taken on them."""

    def queue_reviews(self, run_id: str | None, module: str,
                      rows: Iterable[Mapping[str, Any]]) -> int:
        """Queue records for review (one per record key); return how many are new.

        Each row: record_key, side, record_id, kind, name, candidates, evidence. A record
        already queued keeps its decision; a pending one gets the latest candidates.
        """
        added = 0
        with self.session() as s:
            for row in rows:
                entry = s.exec(self._entries(module).where(
                    ReviewEntry.record_key == str(row["record_key"]))).first()
                if entry is None:
                    entry = ReviewEntry(org_id=self.org_id, module=module,
                                        record_key=str(row["record_key"]),
                                        side=row["side"], record_id=str(row["record_id"]))
                    added += 1
                elif entry.decision != "pending":
                    continue
                entry.kind, entry.name = row.get("kind") or "", opt_str(row.get("name"))
                entry.candidates = json_safe(list(row.get("candidates") or []))
                entry.evidence = json_safe(list(row.get("evidence") or []))
                entry.run_id = run_id
                s.add(entry)
            s.commit()
        return added

    def _entries(self, module: str | None = None):
        stmt = select(ReviewEntry).where(ReviewEntry.org_id == self.org_id)
        return stmt if module is None else stmt.where(ReviewEntry.module == module)

    def reviews(self, module: str | None = None, *, pending_only: bool = True) -> list[ReviewEntry]:
        """Queued records, oldest first; by default only those still waiting for a decision."""
        stmt = self._entries(module)
        if pending_only:
            stmt = stmt.where(ReviewEntry.decision == "pending")
        with self.session() as s:
            return list(s.exec(stmt.order_by(ReviewEntry.id)).all())

    def review(self, record_key: str, module: str | None = None) -> list[ReviewEntry]:
        """The queued entries of a record key (one per module that queued it)."""
        with self.session() as s:
            return list(s.exec(self._entries(module).where(
                ReviewEntry.record_key == record_key)).all())

    def decide_review(self, entry_id: int, decision: str, other_id: str | None = None) -> None:
        """Record a person's decision on a queued record; the next run applies it."""
        if decision not in REVIEW_DECISIONS[1:]:
            raise StoreError(f"decision must be one of {REVIEW_DECISIONS[1:]}, got {decision!r}")
        with self.session() as s:
            entry = s.get(ReviewEntry, entry_id)
            if entry is None:
                raise StoreError(f"no review entry {entry_id}")
            entry.decision, entry.other_id = decision, opt_str(other_id)
            entry.applied, entry.decided_at = False, utcnow()
            s.add(entry)
            s.commit()

    def queue_pair(self, module: str, *, record_key: str, kind: str, crm_id: str,
                   books_id: str, name: str | None = None) -> None:
        """Mark a pair made by hand so that the next run reads both records and syncs them."""
        self.queue_reviews(None, module, [{"record_key": record_key, "side": "crm",
                                           "record_id": crm_id, "kind": kind, "name": name,
                                           "candidates": [{"id": books_id}],
                                           "evidence": ["linked by hand"]}])
        [entry] = self.review(record_key, module)
        with self.session() as s:
            entry = s.get(ReviewEntry, entry.id)
            entry.origin = "manual" if entry.decision == "pending" else entry.origin
            entry.decision, entry.other_id = "pair", books_id
            entry.applied, entry.decided_at = False, utcnow()
            s.add(entry)
            s.commit()

    def drop_review(self, module: str, record_key: str) -> bool:
        """Remove a record's entry (its pair was undone by hand); True if one was removed."""
        with self.session() as s:
            entry = s.exec(self._entries(module).where(
                ReviewEntry.record_key == record_key)).first()
            if entry is None:
                return False
            s.delete(entry)
            s.commit()
        return True

    def decisions(self, module: str) -> dict[str, tuple[str, str | None]]:
        """{record key: (decision, other id)} of every decided entry, applied or not (a skip
        stays a skip on every later run)."""
        with self.session() as s:
            rows = s.exec(self._entries(module).where(ReviewEntry.decision != "pending")).all()
            return {r.record_key: (r.decision, r.other_id) for r in rows}

    def to_apply(self, module: str) -> list[ReviewEntry]:
        """Decided entries the next run must read and apply (pairs and separations)."""
        with self.session() as s:
            return list(s.exec(self._entries(module).where(
                ReviewEntry.decision.in_(("pair", "separate")),
                ReviewEntry.applied == False)).all())  # noqa: E712

    def mark_applied(self, module: str, record_keys: Iterable[str]) -> int:
        """Mark these records' decisions as applied by a run; return how many."""
        keys = list(record_keys)
        if not keys:
            return 0
        with self.session() as s:
            rows = list(s.exec(self._entries(module).where(
                ReviewEntry.record_key.in_(keys), ReviewEntry.decision != "pending")).all())
            for row in rows:
                row.applied = True
                s.add(row)
            s.commit()
        return len(rows)
