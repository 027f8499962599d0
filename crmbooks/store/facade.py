"""The one `Store` the rest of crmbooks uses: every part of the state store behind one object.

Each part (links, cursors, runs, journal, config, the receiver's inbox of events, the records
a run kept for its rerun) is a class of its own module that works on the same engine and Books
organization; `Store` combines them, so callers keep one object and one set of method names.
"""

from __future__ import annotations

from crmbooks.store.audit import AuditStore
from crmbooks.store.config import ConfigStore
from crmbooks.store.cursors import CursorStore
from crmbooks.store.deletions import DeletionStore
from crmbooks.store.engine import make_engine
from crmbooks.store.events import EventStore
from crmbooks.store.journal import JournalStore
from crmbooks.store.kept import KeptStore
from crmbooks.store.links import LinkStore
from crmbooks.store.removed import RemovedStore
from crmbooks.store.reviews import ReviewStore
from crmbooks.store.runs import RunStore
from crmbooks.store.sharing import SharingStore


class Store(LinkStore, CursorStore, RunStore, JournalStore, ConfigStore, EventStore,
            ReviewStore, SharingStore, KeptStore, DeletionStore, RemovedStore, AuditStore):
    """The crmbooks state store: links, cursors, runs, events, failures, settings, connection,
    the receiver's accepted events (its inbox), the review queue, the deletions a brake held,
    the CRM records `disable` removed, what the processes of a connection share (its access
    token, each organization's request budget), the records a run read in full (kept, so
    that a rerun after a crash need not read them again), and the write journal (every remote
    write before it is sent, and the undo runs)."""

    @classmethod
    def open(cls, url: str | None = None, org_id: str = "") -> Store:
        """Open the store at ``url`` (default CRMBOOKS_DATABASE_URL or the SQLite file),
        upgrading its schema first when it was made by an older crmbooks."""
        return cls(make_engine(url), org_id=org_id)
