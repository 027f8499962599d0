"""The write journal: every remote write, journaled before it is sent, and which run an undo
reversed.

A run journals each batch of writes before it sends it (`journal_writes`), with the values
each write replaces as the run read them. Its report settles them from what the provider
answered (`settle_writes`: done or failed). A run killed in between leaves them ``sent``:
its history shows them as unconfirmed, and the next run of the module confirms them once it
finds their values in place (`confirm_earlier`), or marks them superseded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from crmbooks.store.base import StoreBase, opt_str
from crmbooks.store.errors import StoreError
from crmbooks.store.jsonsafe import json_safe
from crmbooks.store.tables import JournaledWrite, Run, RunUndo, utcnow

WRITE_COLUMNS = ["id", "run_id", "module", "side", "record_key", "kind", "crm_id", "books_id",
                 "name", "action", "changes", "state", "note", "stamp", "created_at"]


def _row(write: JournaledWrite) -> dict[str, Any]:
    return {c: getattr(write, c) for c in WRITE_COLUMNS}


class AuditStore(StoreBase):
    """Journaled writes and undo runs."""

    def journal_writes(self, run_id: str, module: str,
                       writes: Iterable[Mapping[str, Any]]) -> list[int]:
        """Journal writes about to be sent, in one transaction; their ids.

        Each write: side, record_key, action, optional kind, crm_id, books_id, name and
        changes [{side, field, before, after}] (the values it replaces, read this run)."""
        objs = [JournaledWrite(
            run_id=run_id, module=module, side=w["side"], record_key=str(w["record_key"]),
            kind=opt_str(w.get("kind")), crm_id=opt_str(w.get("crm_id")),
            books_id=opt_str(w.get("books_id")), name=opt_str(w.get("name")),
            action=str(w["action"]), changes=json_safe(list(w.get("changes") or [])),
            state="sent") for w in writes]
        if not objs:
            return []
        with self.session() as s:
            s.add_all(objs)
            s.commit()
            return [o.id for o in objs]

    def settle_writes(self, run_id: str, outcomes: Iterable[Mapping[str, Any]]) -> int:
        """Settle a run's sent writes from its outcomes: done (with the ids and the record's
        modified stamp the provider answered) or failed. Return how many were settled."""
        by_key = {(str(o["record_key"]), o["side"]): o for o in outcomes}
        settled = 0
        with self.session() as s:
            for write in s.exec(select(JournaledWrite).where(
                    JournaledWrite.run_id == run_id, JournaledWrite.state == "sent")).all():
                found = by_key.get((write.record_key, write.side))
                if found is None:
                    continue
                write.state = "done" if found.get("ok") else "failed"
                write.crm_id = opt_str(found.get("crm_id")) or write.crm_id
                write.books_id = opt_str(found.get("books_id")) or write.books_id
                stamp = found.get(f"{write.side}_modified")
                write.stamp = opt_str(stamp)
                if not found.get("ok"):
                    write.note = opt_str(found.get("message"))
                write.updated_at = utcnow()
                s.add(write)
                settled += 1
            s.commit()
        return settled

    def unsettled_writes(self, module: str, *, other_than: str) -> list[dict[str, Any]]:
        """The writes of earlier runs of ``module`` still ``sent`` (their run was killed
        before it saw the answers), oldest first."""
        with self.session() as s:
            found = s.exec(select(JournaledWrite).where(
                JournaledWrite.module == module, JournaledWrite.state == "sent",
                JournaledWrite.run_id != other_than).order_by(JournaledWrite.id)).all()
            return [_row(w) for w in found]

    def mark_writes(self, states: Mapping[int, tuple[str, str]]) -> int:
        """Set {journal id: (state, note)}; return how many rows changed."""
        with self.session() as s:
            for write_id, (state, note) in states.items():
                s.exec(update(JournaledWrite).where(JournaledWrite.id == write_id)
                       .values(state=state, note=note, updated_at=utcnow()))
            s.commit()
        return len(states)

    def writes(self, run_id: str) -> list[dict[str, Any]]:
        """A run's journaled writes, oldest first."""
        with self.session() as s:
            found = s.exec(select(JournaledWrite).where(JournaledWrite.run_id == run_id)
                           .order_by(JournaledWrite.id)).all()
            return [_row(w) for w in found]

    def later_writes(self, module: str, record_keys: Iterable[str], after_id: int
                     ) -> dict[str, list[dict[str, Any]]]:
        """{record key: writes of later runs to it}: what changed a record after a run."""
        keys = sorted({str(k) for k in record_keys})
        out: dict[str, list[dict[str, Any]]] = {}
        if not keys:
            return out
        with self.session() as s:
            for write in s.exec(select(JournaledWrite).where(
                    JournaledWrite.module == module, JournaledWrite.id > after_id,
                    JournaledWrite.record_key.in_(keys),
                    JournaledWrite.state.in_(("sent", "done", "confirmed")))).all():
                out.setdefault(write.record_key, []).append(_row(write))
        return out

    def record_undo(self, undo_run_id: str, undone_run_id: str) -> None:
        """Note that ``undo_run_id`` undoes ``undone_run_id``; StoreError when that run was
        undone already (two undos racing: the second one stops here)."""
        with self.session() as s:
            s.add(RunUndo(undo_run_id=undo_run_id, undone_run_id=undone_run_id))
            try:
                s.commit()
            except IntegrityError as exc:
                raise StoreError(f"run {undone_run_id} was undone already") from exc

    def undone_by(self, run_id: str) -> str | None:
        """The undo run that reversed ``run_id`` (None: not undone)."""
        with self.session() as s:
            found = s.exec(select(RunUndo).where(RunUndo.undone_run_id == run_id)).first()
            return found.undo_run_id if found else None

    def undo_of(self, run_id: str) -> str | None:
        """The run that the undo run ``run_id`` reversed (None: not an undo run)."""
        with self.session() as s:
            found = s.get(RunUndo, run_id)
            return found.undone_run_id if found else None

    def runs_by_id(self, run_ids: Iterable[str]) -> dict[str, Run]:
        """{run id: run} of these runs."""
        ids = sorted(set(run_ids))
        if not ids:
            return {}
        with self.session() as s:
            return {r.id: r for r in s.exec(select(Run).where(Run.id.in_(ids))).all()}
