"""What `crmbooks disable` removes from the CRM: the CRM records crmbooks created, retired
with their links, and what is kept of them so that enabling brings each back once.

A CRM record is deleted first and its link retired right after, in one transaction with the
row that remembers it was removed: a crash in between leaves the link, and the rerun of
`disable` finds the record already gone and only retires the link.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import select

from crmbooks.store.base import StoreBase
from crmbooks.store.links import ID_CHUNK
from crmbooks.store.tables import Link, RemovedRecord, utcnow


class RemovedStore(StoreBase):
    """The CRM records crmbooks created, and those `disable` removed, per organization."""

    def created_in_crm(self, module: str) -> list[tuple[str, str, str]]:
        """(CRM module, CRM id, Books id) of every link of ``module`` whose CRM record crmbooks
        created, in CRM module and id order."""
        stmt = select(Link.crm_module, Link.crm_id, Link.books_id).where(
            Link.org_id == self.org_id, Link.module == module, Link.crm_created.is_(True))
        with self.session() as s:
            return sorted((str(m), str(c), str(b)) for m, c, b in s.exec(stmt).all())

    def made_in_crm(self, module: str) -> list[tuple[str, str]]:
        """(CRM module, CRM id) of every link of ``module`` whose CRM record a CRM user made
        (crmbooks only showed the Books id, number and address on it)."""
        stmt = select(Link.crm_module, Link.crm_id).where(
            Link.org_id == self.org_id, Link.module == module, Link.crm_created.is_(False))
        with self.session() as s:
            return sorted((str(m), str(c)) for m, c in s.exec(stmt).all())

    def retire_removed(self, module: str, crm_ids: Iterable[str]) -> int:
        """Retire the links of these deleted CRM records and remember each as removed, in one
        transaction; return how many links were retired (a link already retired counts 0)."""
        ids = sorted({str(i) for i in crm_ids})
        retired = 0
        with self.session() as s:
            for start in range(0, len(ids), ID_CHUNK):
                chunk = ids[start:start + ID_CHUNK]
                links = s.exec(select(Link).where(
                    Link.org_id == self.org_id, Link.module == module,
                    Link.crm_id.in_(chunk))).all()
                known = set(s.exec(select(RemovedRecord.crm_id).where(
                    RemovedRecord.org_id == self.org_id, RemovedRecord.module == module,
                    RemovedRecord.crm_id.in_(chunk))).all())
                for link in links:
                    if link.crm_id not in known:
                        s.add(RemovedRecord(org_id=self.org_id, module=module,
                                            crm_module=link.crm_module, crm_id=link.crm_id,
                                            books_id=link.books_id, removed_at=utcnow()))
                    s.delete(link)
                    retired += 1
            s.commit()
        return retired

    def removed_crm_ids(self, module: str) -> set[str]:
        """The CRM ids of ``module`` that `disable` removed (their Books twins still name
        them)."""
        stmt = select(RemovedRecord.crm_id).where(RemovedRecord.org_id == self.org_id,
                                                  RemovedRecord.module == module)
        with self.session() as s:
            return {str(i) for i in s.exec(stmt).all()}

    def forget_shown(self, module: str, crm_ids: Iterable[str]) -> int:
        """Forget what crmbooks last wrote on these CRM records from Books (their Books id,
        number and address were cleared), so the next run writes it again; return how many
        links changed."""
        ids = sorted({str(i) for i in crm_ids})
        changed = 0
        with self.session() as s:
            for start in range(0, len(ids), ID_CHUNK):
                for link in s.exec(select(Link).where(
                        Link.org_id == self.org_id, Link.module == module,
                        Link.crm_id.in_(ids[start:start + ID_CHUNK]))).all():
                    link.books_values, link.books_modified = None, None
                    link.updated_at = utcnow()
                    s.add(link)
                    changed += 1
            s.commit()
        return changed
