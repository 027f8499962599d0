"""Cursors: how far the incremental fetch of each module has got on each side (UTC)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select

from crmbooks.store.base import StoreBase, as_utc
from crmbooks.store.errors import StoreError
from crmbooks.store.tables import Cursor, utcnow


class CursorStore(StoreBase):
    """The cursors of the store's Books organization, which only ever move forward."""

    def cursor(self, module: str, side: str) -> datetime | None:
        """The cursor of ``module`` on ``side`` (crm|books) in UTC; None before the first run."""
        with self.session() as s:
            row = s.exec(select(Cursor).where(
                Cursor.org_id == self.org_id, Cursor.module == module, Cursor.side == side
            )).first()
        return as_utc(row.value) if row else None

    def advance_cursor(self, module: str, side: str, value: datetime) -> datetime:
        """Move the cursor forward to ``value`` (never back); return the cursor now stored.

        Call only after the records it covers were pushed: a cursor past a record that was
        not synced would never fetch it again.
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

    def rewind_cursor(self, module: str, side: str) -> bool:
        """Drop the cursor of ``module`` on ``side``: the next run reads from the start, as a
        first run does. Only for what `crmbooks disable` removed from the CRM, which the run
        after `crmbooks enable` must read again; True if there was one."""
        with self.session() as s:
            row = s.exec(select(Cursor).where(
                Cursor.org_id == self.org_id, Cursor.module == module, Cursor.side == side
            )).first()
            if row is None:
                return False
            s.delete(row)
            s.commit()
        return True

    def cursor_settings(self, module: str, side: str) -> str | None:
        """The fingerprint of the settings the cursor of ``module`` on ``side`` last settled
        under; None before the first run or for a cursor settled before it was kept."""
        with self.session() as s:
            row = s.exec(select(Cursor).where(
                Cursor.org_id == self.org_id, Cursor.module == module, Cursor.side == side
            )).first()
        return row.settings_fingerprint if row else None

    def settle_cursor_settings(self, module: str, sides: tuple[str, ...],
                               fingerprint: str) -> None:
        """Record that the cursors of ``module`` on ``sides`` settled under the settings
        with this fingerprint (even where the cursor itself did not move)."""
        with self.session() as s:
            rows = s.exec(select(Cursor).where(
                Cursor.org_id == self.org_id, Cursor.module == module,
                Cursor.side.in_(sides))).all()  # type: ignore[attr-defined]
            for row in rows:
                if row.settings_fingerprint != fingerprint:
                    row.settings_fingerprint = fingerprint
                    s.add(row)
            s.commit()
