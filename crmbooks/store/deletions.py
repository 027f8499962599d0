"""Deletions the brake held: what a run would have deleted, waiting for a person's approval.

A run whose deletions go past the module's brake writes them here instead of applying them;
``crmbooks deletions approve RUN`` approves one run's rows; the next run of the module applies
the approved ones and marks them done. Rows are scoped to the store's Books organization.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import func, select

from crmbooks.store.base import StoreBase, opt_str
from crmbooks.store.tables import HeldDeletion, Link, utcnow


class DeletionStore(StoreBase):
    """Held deletions, their approval and their completion."""

    def _held(self, module: str | None = None):
        stmt = select(HeldDeletion).where(HeldDeletion.org_id == self.org_id)
        return stmt if module is None else stmt.where(HeldDeletion.module == module)

    def hold_deletions(self, run_id: str, module: str,
                       rows: Iterable[Mapping[str, Any]]) -> int:
        """Hold these deletions for approval; a record already held keeps its first row (a
        later run that finds it deleted again adds nothing). Return how many are new."""
        added = 0
        with self.session() as s:
            for row in rows:
                found = s.exec(self._held(module).where(
                    HeldDeletion.deleted_side == row["deleted_side"],
                    HeldDeletion.deleted_id == str(row["deleted_id"]))).first()
                if found is not None:
                    continue
                s.add(HeldDeletion(
                    org_id=self.org_id, module=module, run_id=run_id,
                    deleted_side=row["deleted_side"], deleted_id=str(row["deleted_id"]),
                    crm_id=str(row["crm_id"]), books_id=str(row["books_id"]),
                    kind=row.get("kind") or "", crm_module=row.get("crm_module") or "",
                    name=opt_str(row.get("name")), action=row["action"]))
                added += 1
            s.commit()
        return added

    def held_deletions(self, module: str | None = None, *,
                       states: tuple[str, ...] = ("held", "approved")) -> list[HeldDeletion]:
        """Held deletions in these states, oldest first."""
        with self.session() as s:
            return list(s.exec(self._held(module).where(HeldDeletion.state.in_(states))
                               .order_by(HeldDeletion.id)).all())

    def approve_deletions(self, run_id: str) -> list[HeldDeletion]:
        """Approve the held deletions of the run ``run_id`` (a unique prefix of it is enough);
        return those approved (none: the run holds nothing)."""
        with self.session() as s:
            rows = list(s.exec(self._held().where(
                HeldDeletion.state == "held",
                HeldDeletion.run_id.startswith(run_id))).all())
            if len({r.run_id for r in rows}) > 1:
                return []  # an ambiguous prefix approves nothing
            for row in rows:
                row.state = "approved"
                s.add(row)
            s.commit()
            for row in rows:
                s.refresh(row)
        return rows

    def finish_deletions(self, ids: Iterable[int]) -> None:
        """Mark held deletions as done (applied, or found already done)."""
        ids = list(ids)
        if not ids:
            return
        with self.session() as s:
            for row in s.exec(select(HeldDeletion).where(HeldDeletion.id.in_(ids))).all():
                row.state, row.done_at = "done", utcnow()
                s.add(row)
            s.commit()

    def count_links(self, module: str) -> int:
        """How many links ``module`` has (the base of the brake's share)."""
        with self.session() as s:
            return s.exec(select(func.count()).select_from(Link).where(
                Link.org_id == self.org_id, Link.module == module)).one()
