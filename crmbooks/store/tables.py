"""Tables of the crmbooks state store (SQLite by default, PostgreSQL by URL).

Every id is a string (Zoho ids are 19-digit numbers that floats and NaN would corrupt).
JSON columns use SQLAlchemy's generic ``JSON`` type, which maps to TEXT on SQLite and to
``json`` on PostgreSQL; values stored in them are JSON-safe (money as strings, never floats).
Timestamps are stored timezone-aware in UTC; SQLite drops the offset, so the store re-attaches
it when it reads them.

The schema is managed by the migrations in ``migrations/``: a change to a table here needs a
new revision there (the migration tests check that both agree).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

#: Record-event actions the history knows.
EVENT_ACTIONS = (
    "created", "updated", "skipped", "conflict", "failed", "deleted", "cloned", "overwritten",
    "linked", "unlinked",
)
#: How a link was made.
LINK_ORIGINS = ("sync", "trigger", "manual")
#: Run states, as printed by ``crmbooks sync --json``.
#: "refused": another run of the same module held its run lock (RunLock), nothing was done.
RUN_STATES = ("running", "completed", "completed_with_failures", "failed", "cancelled",
              "refused")


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """Return a new random run id (uuid4 as a string)."""
    return str(uuid.uuid4())


def _json(**kw: Any) -> Any:
    """A JSON column that works on SQLite and PostgreSQL."""
    return Field(default=None, sa_column=Column(JSON, **kw))


def _ts() -> Any:
    """A required timezone-aware timestamp column defaulting to now (UTC)."""
    return Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


def _ts_opt() -> Any:
    """An optional timezone-aware timestamp column."""
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class Link(SQLModel, table=True):
    """A CRM record tied to a Books record, with the last synced value of each mapped field."""

    __tablename__ = "link"
    __table_args__ = (
        UniqueConstraint("org_id", "module", "crm_id", name="uq_link_crm"),
        UniqueConstraint("org_id", "module", "books_id", name="uq_link_books"),
        Index("ix_link_module", "org_id", "module"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(default="", max_length=64)
    module: str = Field(max_length=40)  # crmbooks module: customers, vendors, items ...
    kind: str = Field(default="", max_length=40)  # record kind: accounts, contact_persons ...
    crm_module: str = Field(max_length=60)  # CRM API module name: Accounts, Contacts ...
    crm_id: str = Field(max_length=64)
    books_id: str = Field(max_length=64)
    parent_crm_id: str | None = Field(default=None, max_length=64)
    parent_books_id: str | None = Field(default=None, max_length=64)
    crm_values: dict | None = _json()
    books_values: dict | None = _json()
    made_by: str = Field(default="sync", max_length=16)
    # The modified time each side reported right after our own write: a record fetched later
    # with the same stamp only echoes that write, so it needs no detail read and no plan.
    crm_modified: str | None = Field(default=None, max_length=40)
    books_modified: str | None = Field(default=None, max_length=40)
    # crmbooks created the CRM record (a Books record copied to the CRM), so `disable` may
    # delete it; False for a record a CRM user made (and for links older than this column).
    crm_created: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Cursor(SQLModel, table=True):
    """How far incremental fetch has got, per organization, module and side (UTC)."""

    __tablename__ = "cursor"
    __table_args__ = (UniqueConstraint("org_id", "module", "side", name="uq_cursor"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(default="", max_length=64)
    module: str = Field(max_length=60)
    side: str = Field(max_length=8)  # crm | books
    value: datetime = _ts()
    updated_at: datetime = _ts()
    # The fingerprint of the settings (what is read, how it maps) the cursor last settled
    # under; None when settled before crmbooks kept it.
    settings_fingerprint: str | None = Field(default=None, max_length=64)


class Run(SQLModel, table=True):
    """One sync run of one module (mirrors a Prefect flow run when there is one)."""

    __tablename__ = "run"
    __table_args__ = (Index("ix_run_module_started", "module", "started_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    module: str = Field(max_length=40)
    org_id: str = Field(default="", max_length=64)
    started_at: datetime = _ts()
    finished_at: datetime | None = _ts_opt()
    state: str = Field(default="running", max_length=32)
    dry_run: bool = False
    counts: dict | None = _json()
    api_calls: dict | None = _json()
    plan_summary: dict | None = _json()
    flow_run_id: str | None = Field(default=None, max_length=64)
    settings_version: int | None = None
    message: str | None = None


class RunLock(SQLModel, table=True):
    """The one run of a module that may sync now, per organization.

    Prefect's deployment concurrency limit covers scheduled runs only: a manual `crmbooks
    sync` or the sync-now flow's child runs are no deployment runs. A run inserts this row
    when it starts (the unique key makes the insert the atomic test-and-set) and deletes it
    when it ends; a row whose process is gone is taken over (see Store.acquire_run_lock).
    """

    __tablename__ = "run_lock"
    __table_args__ = (UniqueConstraint("org_id", "module", name="uq_run_lock"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(default="", max_length=64)
    module: str = Field(max_length=40)
    run_id: str = Field(max_length=36)
    host: str = Field(default="", max_length=255)
    pid: int = 0
    acquired_at: datetime = _ts()


class RecordEvent(SQLModel, table=True):
    """What a run did to one record: action and the changed fields with before and after."""

    __tablename__ = "record_event"
    __table_args__ = (Index("ix_event_run", "run_id"), Index("ix_event_record", "record_key"))

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=36)
    module: str = Field(max_length=40)
    side: str = Field(max_length=8)  # the side that was written: crm | books
    record_key: str = Field(max_length=160)
    crm_id: str | None = Field(default=None, max_length=64)
    books_id: str | None = Field(default=None, max_length=64)
    name: str | None = None
    action: str = Field(max_length=16)
    changes: list | None = _json()  # [{"field", "before", "after"}]
    conflicts: list | None = _json()  # [{"field", "crm", "books", "winner"}]
    message: str | None = None
    created_at: datetime = _ts()


class Failure(SQLModel, table=True):
    """A record that could not be synced, with what was sent and what the provider said.

    ``org_id`` is the Books organization of the run that failed; rows from before failures
    carried it may hold NULL, which counts as the primary organization's.
    """

    __tablename__ = "failure"
    __table_args__ = (
        Index("ix_failure_run", "run_id"),
        Index("ix_failure_module", "module", "resolved"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: str | None = Field(default=None, max_length=64)
    run_id: str | None = Field(default=None, max_length=36)
    module: str = Field(max_length=40)
    side: str = Field(max_length=8)  # the side the write was aimed at
    record_key: str = Field(max_length=160)
    crm_id: str | None = Field(default=None, max_length=64)
    books_id: str | None = Field(default=None, max_length=64)
    payload: dict | None = _json()  # scrubbed of anything secret-looking before storing
    code: str | None = Field(default=None, max_length=64)
    field: str | None = Field(default=None, max_length=200)
    message: str = ""
    hint: str | None = None  # what the operator should do
    attempts: int = 1
    resolved: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class SettingsVersion(SQLModel, table=True):
    """A saved version of one module's settings; the active one applies from the next run."""

    __tablename__ = "settings_version"
    __table_args__ = (UniqueConstraint("org_id", "module", "version", name="uq_settings_version"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(default="", max_length=64)
    module: str = Field(max_length=40)
    version: int
    settings: dict | None = _json()
    active: bool = True
    note: str | None = None
    created_at: datetime = _ts()


class Connection(SQLModel, table=True):
    """Non-secret connection settings; secrets stay in the environment or a Secret block."""

    __tablename__ = "connection"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="default", max_length=60, unique=True)
    dc: str | None = Field(default=None, max_length=8)
    api_url: str | None = None
    accounts_url: str | None = None
    crm_api_url: str | None = None
    books_api_url: str | None = None
    client_id: str | None = None
    books_org_id: str | None = Field(default=None, max_length=64)
    extra_books_org_ids: list | None = _json()
    crm_org: dict | None = _json()  # edition, currency ... as verified at connect time
    books_org: dict | None = _json()  # name, email, country, currency
    paused: bool = False
    disabled: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


#: States of a received event: waiting for (or between) runs, handled, given up on.
INBOX_STATES = ("pending", "done", "failed")


class InboxEvent(SQLModel, table=True):
    """An event the receiver accepted, kept until a run has handled it.

    The receiver writes the row before it answers 2xx; a worker takes it (``taken_*``: the
    process running it, so that a killed one's events are taken over), runs the module for
    its key and marks it done, or puts it back with a later ``due_at`` when the run failed.
    ``worker`` is the queue (deal-triggers, transactions), ``key`` what it runs (a deal id, a
    transactions-queue entry).
    """

    __tablename__ = "inbox_event"
    __table_args__ = (Index("ix_inbox_state_due", "state", "worker", "due_at"),
                      Index("ix_inbox_key", "worker", "key"))

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(default="", max_length=64)
    worker: str = Field(max_length=40)
    key: str = Field(max_length=255)
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    received_at: datetime = _ts()
    due_at: datetime = _ts()
    taken_host: str | None = Field(default=None, max_length=255)
    taken_pid: int | None = None
    taken_at: datetime | None = _ts_opt()
    finished_at: datetime | None = _ts_opt()
    last_error: str | None = None


#: What an operator decided about a queued record (``pending``: nothing yet).
REVIEW_DECISIONS = ("pending", "pair", "separate", "skip")


class ReviewEntry(SQLModel, table=True):
    """A record the sync did not create or link by itself, waiting for a person's decision.

    A run under the duplicates policy ``review`` queues a record whose match on the other side
    is exact after normalisation or likely, with the candidates and the evidence. A decision
    (``pair``, ``separate``, ``skip``) is applied by the next run, which reads the record by id
    even when it did not change; ``applied`` then says that run did it. A pair made by hand
    (``crmbooks link``) rides on the same queue (``origin`` manual), so that the next run reads
    both records and syncs them as a pair.
    """

    __tablename__ = "review_entry"
    __table_args__ = (UniqueConstraint("org_id", "module", "record_key", name="uq_review_key"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(default="", max_length=64)
    module: str = Field(max_length=40)
    record_key: str = Field(max_length=160)
    kind: str = Field(default="", max_length=40)
    side: str = Field(max_length=8)  # where the record is: crm | books
    record_id: str = Field(max_length=64)
    name: str | None = None
    origin: str = Field(default="duplicate", max_length=16)  # duplicate | manual
    candidates: list | None = _json()  # [{"id", "name"}] on the other side
    evidence: list | None = _json()  # why each candidate looks like the same record
    decision: str = Field(default="pending", max_length=16)
    other_id: str | None = Field(default=None, max_length=64)
    applied: bool = False
    run_id: str | None = Field(default=None, max_length=36)
    found_at: datetime = _ts()
    decided_at: datetime | None = _ts_opt()


class KeptRecord(SQLModel, table=True):
    """A record a run read in full, one request each (a Books contact's detail), kept until
    its module's cursor has moved past it.

    A run killed before its report leaves its cursors where they were, so the next run lists
    the same records again; with the detail kept here, it reads again only those whose
    modified stamp changed since, not every one of them. ``body`` is the record as the API
    answered it (JSON text: amounts keep every digit).
    """

    __tablename__ = "kept_record"
    __table_args__ = (UniqueConstraint("org_id", "module", "side", "record_id",
                                       name="uq_kept_record"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(default="", max_length=64)
    module: str = Field(max_length=40)
    side: str = Field(max_length=8)  # crm | books
    record_id: str = Field(max_length=64)
    stamp: str | None = Field(default=None, max_length=40)
    body: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = _ts()


class SharedToken(SQLModel, table=True):
    """The access token every process of one connection uses until it expires.

    ``key`` is a fingerprint of the connection's credentials (a hash: it reveals none of them)
    and ``ciphertext`` the token encrypted with a key derived from the client secret and the
    refresh token, which live in the environment or Secret blocks, never in this database: a
    copy of the database alone holds no usable token. The row is also the lock that lets one
    process at a time ask Zoho Accounts for a new token.
    """

    __tablename__ = "shared_token"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    ciphertext: str | None = None
    expires_at: float = 0.0  # seconds since the epoch (every process compares wall time)
    refreshes: int = 0
    refreshed_at: datetime | None = _ts_opt()
    refreshed_by: str | None = Field(default=None, max_length=255)


class RateBudget(SQLModel, table=True):
    """The request budget one Books organization's runs share, across processes and hosts.

    ``next_at`` is the earliest moment (seconds since the epoch) the next request of the
    organization may go: each process reserves its slots by moving it forward, in one locked
    transaction, so every run together stays evenly spaced under the organization's limit.
    """

    __tablename__ = "rate_budget"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255, unique=True)
    next_at: float = 0.0
    granted: int = 0


#: States of a deletion the brake held: waiting, approved by a person, done by a run.
HELD_STATES = ("held", "approved", "done")


class HeldDeletion(SQLModel, table=True):
    """A deletion (or deactivation) of a twin that a run's brake held for approval.

    One row per deleted record: where it was deleted (``deleted_side``), its id, the linked
    twin and what the policy said to do to it. ``crmbooks deletions approve RUN`` approves the
    rows of one run; the next run of the module applies them and marks them done.
    """

    __tablename__ = "held_deletion"
    __table_args__ = (UniqueConstraint("org_id", "module", "deleted_side", "deleted_id",
                                       name="uq_held_deletion"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(default="", max_length=64)
    module: str = Field(max_length=40)
    run_id: str = Field(max_length=36)
    deleted_side: str = Field(max_length=8)  # crm | books
    deleted_id: str = Field(max_length=64)
    crm_id: str = Field(max_length=64)
    books_id: str = Field(max_length=64)
    kind: str = Field(default="", max_length=40)
    crm_module: str = Field(default="", max_length=60)
    name: str | None = None
    action: str = Field(max_length=16)  # delete | deactivate
    state: str = Field(default="held", max_length=16)
    held_at: datetime = _ts()
    done_at: datetime | None = _ts_opt()


class RemovedRecord(SQLModel, table=True):
    """A CRM record crmbooks created and `crmbooks disable` deleted, whose link it retired.

    The Books record still names the deleted CRM record (Books is left untouched), so the run
    that brings it back after `crmbooks enable` must not take that id for its CRM twin: it
    creates the CRM record again instead (once: an upsert on the Books id).
    """

    __tablename__ = "removed_record"
    __table_args__ = (UniqueConstraint("org_id", "module", "crm_id", name="uq_removed_record"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(default="", max_length=64)
    module: str = Field(max_length=40)
    crm_module: str = Field(default="", max_length=60)
    crm_id: str = Field(max_length=64)
    books_id: str = Field(max_length=64)
    removed_at: datetime = _ts()


#: States of a journaled write: sent (its answer not seen yet: a run killed after sending it
#: leaves it so), done (its run saw it succeed), failed (the provider refused it), confirmed
#: (a later run found its values in place), superseded (a later run found other values).
WRITE_STATES = ("sent", "done", "failed", "confirmed", "superseded")


class JournaledWrite(SQLModel, table=True):
    """One remote write, journaled before it is sent: the record, the side written, what the
    run meant to do and the values it replaces (``changes``: [{side, field, before, after}],
    the before values as the run read them). ``undoes`` names the run an undo run reverses.
    """

    __tablename__ = "journaled_write"
    __table_args__ = (Index("ix_journaled_write_run", "run_id"),
                      Index("ix_journaled_write_module_state", "module", "state"))

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=36)
    module: str = Field(max_length=40)
    side: str = Field(max_length=8)  # crm | books
    record_key: str = Field(max_length=160)
    kind: str | None = Field(default=None, max_length=40)
    crm_id: str | None = Field(default=None, max_length=64)
    books_id: str | None = Field(default=None, max_length=64)
    name: str | None = None
    action: str = Field(max_length=16)
    changes: list | None = _json()
    state: str = Field(default="sent", max_length=16)
    note: str | None = None
    stamp: str | None = Field(default=None, max_length=40)  # the record's modified stamp after
    created_at: datetime = _ts()
    updated_at: datetime | None = _ts_opt()


class RunUndo(SQLModel, table=True):
    """An undo run and the run it undid (a run is undone once)."""

    __tablename__ = "run_undo"

    undo_run_id: str = Field(primary_key=True, max_length=36)
    undone_run_id: str = Field(max_length=36, unique=True)
    created_at: datetime = _ts()
