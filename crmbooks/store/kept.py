"""Kept records: what a run read in full, one request each, kept until the module's cursor has
moved past it, so that the rerun after a killed run does not read it again.

The store keeps the body as text and never interprets it; the fetch that keeps it decides
what it is (JSON as the API answered) and when a kept one still holds (its stamp).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete
from sqlmodel import select

from crmbooks.store.base import StoreBase
from crmbooks.store.links import ID_CHUNK
from crmbooks.store.tables import KeptRecord, utcnow


class KeptStore(StoreBase):
    """Records read in full, per Books organization, module and side."""

    def keep_records(self, module: str, side: str,
                     records: Iterable[tuple[str, str | None, str]]) -> int:
        """Keep (record id, modified stamp, body) rows, replacing what was kept of the same
        records; return how many. One transaction per call: a run keeps each page it read."""
        wanted = {str(i): (stamp, body) for i, stamp, body in records}
        ids = list(wanted)
        with self.session() as s:
            for start in range(0, len(ids), ID_CHUNK):
                chunk = ids[start:start + ID_CHUNK]
                found = {row.record_id: row for row in s.exec(select(KeptRecord).where(
                    KeptRecord.org_id == self.org_id, KeptRecord.module == module,
                    KeptRecord.side == side, KeptRecord.record_id.in_(chunk))).all()}
                for record_id in chunk:
                    stamp, body = wanted[record_id]
                    row = found.get(record_id) or KeptRecord(
                        org_id=self.org_id, module=module, side=side, record_id=record_id,
                        body=body)
                    row.stamp, row.body, row.updated_at = stamp, body, utcnow()
                    s.add(row)
            s.commit()
        return len(ids)

    def kept_records(self, module: str, side: str,
                     record_ids: Iterable[str]) -> dict[str, tuple[str | None, str]]:
        """{record id: (stamp, body)} of the given records that were kept."""
        ids = sorted({str(i) for i in record_ids})
        out: dict[str, tuple[str | None, str]] = {}
        with self.session() as s:
            for start in range(0, len(ids), ID_CHUNK):
                rows = s.exec(select(KeptRecord.record_id, KeptRecord.stamp, KeptRecord.body)
                              .where(KeptRecord.org_id == self.org_id,
                                     KeptRecord.module == module, KeptRecord.side == side,
                                     KeptRecord.record_id.in_(ids[start:start + ID_CHUNK])))
                out.update({record_id: (stamp, body) for record_id, stamp, body in rows})
        return out

    def forget_records(self, module: str, side: str) -> int:
        """Drop what was kept of a module's side (its cursor moved past it); return how many."""
        with self.session() as s:
            result = s.exec(delete(KeptRecord).where(
                KeptRecord.org_id == self.org_id, KeptRecord.module == module,
                KeptRecord.side == side))
            s.commit()
        return result.rowcount or 0
