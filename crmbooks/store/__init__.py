"""crmbooks state store: links, cursors, run history, journal, settings (sqlmodel).

Import from here: ``Store`` (the one object the rest of crmbooks uses), ``make_engine``, the
errors, the column lists and the table classes. The schema is managed by Alembic migrations
(``crmbooks.store.migrate`` for operators, ``crmbooks.store.schema`` for the machinery).
"""

from crmbooks.store.base import as_utc
from crmbooks.store.engine import crmbooks_home, database_url, make_engine
from crmbooks.store.errors import DatabaseTooNew, StoreError
from crmbooks.store.events import EVENT_LEASE, MAX_ATTEMPTS, retry_delay
from crmbooks.store.facade import Store
from crmbooks.store.journal import EVENT_COLUMNS, FAILURE_COLUMNS
from crmbooks.store.links import ID_CHUNK, LINK_COLUMNS
from crmbooks.store.runs import RUN_LOCK_STALE_AFTER, RunLockHeld, lock_is_stale
from crmbooks.store.schema import reset_database
from crmbooks.store.tables import (
    EVENT_ACTIONS,
    INBOX_STATES,
    LINK_ORIGINS,
    RUN_STATES,
    Connection,
    Cursor,
    Failure,
    InboxEvent,
    KeptRecord,
    Link,
    RecordEvent,
    ReviewEntry,
    Run,
    RunLock,
    SettingsVersion,
    new_id,
    utcnow,
)

__all__ = [
    "EVENT_ACTIONS", "EVENT_COLUMNS", "EVENT_LEASE", "INBOX_STATES", "InboxEvent", "MAX_ATTEMPTS",
    "retry_delay", "FAILURE_COLUMNS", "ID_CHUNK", "LINK_COLUMNS",
    "LINK_ORIGINS", "RUN_LOCK_STALE_AFTER", "RUN_STATES", "Connection", "Cursor",
    "DatabaseTooNew", "Failure", "KeptRecord", "Link", "RecordEvent", "ReviewEntry", "Run",
    "RunLock",
    "RunLockHeld",
    "SettingsVersion", "Store", "StoreError", "as_utc", "crmbooks_home", "database_url",
    "lock_is_stale", "make_engine", "new_id", "reset_database", "utcnow",
]
