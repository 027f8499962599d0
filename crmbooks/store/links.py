"""Links: which CRM record is tied to which Books record, with the last synced values.

Exactly-once writes rest on two things: the remote write is an upsert keyed by the other
side's id (replaying it is harmless), and the link is written right after each success, in
its own small transaction, so a crash loses at most the links of in-flight records, which the
replayed upsert recreates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from crmbooks.store.base import StoreBase, opt_str
from crmbooks.store.errors import StoreError
from crmbooks.store.jsonsafe import json_safe
from crmbooks.store.tables import LINK_ORIGINS, Link, utcnow

# Ids per ``IN (...)`` query: under SQLite's and PostgreSQL's bind-variable limits.
ID_CHUNK = 500
LINK_COLUMNS = [
    "crm_id", "books_id", "kind", "crm_module", "parent_crm_id", "parent_books_id",
    "crm_values", "books_values", "made_by", "crm_modified", "books_modified", "updated_at",
]


def link_frame(links: Iterable[Link]) -> pd.DataFrame:
    """Links as a DataFrame of LINK_COLUMNS; missing values are empty dicts."""
    rows = [{c: getattr(link, c) for c in LINK_COLUMNS} for link in links]
    frame = pd.DataFrame(rows, columns=LINK_COLUMNS, dtype=object)
    for col in ("crm_values", "books_values"):
        frame[col] = [v or {} for v in frame[col]]
    return frame


class LinkStore(StoreBase):
    """The links of the store's Books organization: read, upsert, delete."""

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
            return link_frame(s.exec(stmt).all())

    def links_of(self, module: str, *, crm_ids: Iterable[Any] = (),
                 books_ids: Iterable[Any] = ()) -> pd.DataFrame:
        """The links of ``module`` holding one of ``crm_ids`` or one of ``books_ids``, as
        :meth:`links` returns them (LINK_COLUMNS, values as dicts).

        What an incremental run reads: the full links (with their JSON values) of the records
        it fetched only, so its memory follows what it fetched, not the number of links. Ids
        are read ``IN (...)`` in chunks of ``ID_CHUNK`` (bind-variable limits of SQLite and
        PostgreSQL); a link found by both of its ids comes once.
        """
        found: dict[int, Link] = {}
        with self.session() as s:
            for column, ids in ((Link.crm_id, crm_ids), (Link.books_id, books_ids)):
                wanted = sorted({str(i) for i in ids if i is not None and str(i)})
                for start in range(0, len(wanted), ID_CHUNK):
                    stmt = self._module_links(module).where(
                        column.in_(wanted[start:start + ID_CHUNK]))
                    found.update((link.id, link) for link in s.exec(stmt).all())
        return link_frame(found[k] for k in sorted(found))

    def link_ids(self, module: str) -> pd.DataFrame:
        """Every link of ``module`` as its ids and kind only (columns crm_id, books_id, kind,
        strings): what a plan needs to know of the links it does not merge ("is this record
        linked", "which Books parent has this CRM parent"), without their JSON values."""
        stmt = self._module_links(module, Link.crm_id, Link.books_id, Link.kind)
        with self.session() as s:
            rows = s.exec(stmt).all()
        return pd.DataFrame([tuple(r) for r in rows], columns=["crm_id", "books_id", "kind"],
                            dtype=object)

    def has_links(self, module: str, kind: str) -> bool:
        """True when ``module`` has at least one link of record kind ``kind`` (one indexed
        query, no rows read)."""
        stmt = self._module_links(module, Link.id).where(Link.kind == kind).limit(1)
        with self.session() as s:
            return s.exec(stmt).first() is not None

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
        out["crm_id"], out["books_id"] = opt_str(row.get("crm_id")), opt_str(row.get("books_id"))
        if not out["crm_id"] or not out["books_id"]:
            raise StoreError(f"a link needs both crm_id and books_id, got {dict(row)!r}")
        if out.get("made_by", "sync") not in LINK_ORIGINS:
            raise StoreError(f"made_by must be one of {LINK_ORIGINS}, got {out['made_by']!r}")
        for col in ("parent_crm_id", "parent_books_id"):
            if col in out:
                out[col] = opt_str(out[col])
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
                made_by = link.made_by if found else None
                for key, value in row.items():
                    setattr(link, key, value)
                if made_by == "manual" and row.get("made_by", "sync") == "sync":
                    link.made_by = made_by  # a pair made by hand stays so once synced
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
