"""The initial schema: the tables of the state store as crmbooks made them before migrations.

Installations from before migrations got these tables from ``create_all`` on every open; such
a database is stamped at this revision instead of running it. A table is created only where
it is missing, so a database from a crmbooks older still (one that had not made every table
yet) comes out of this revision with all of them, as ``create_all`` would have left it.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _missing(table: str) -> bool:
    """True when ``table`` does not exist yet."""
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    """Create the tables of the initial schema that do not exist yet."""
    if _missing("connection"):
        op.create_table(
            "connection",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=60), nullable=False),
            sa.Column("dc", sa.String(length=8), nullable=True),
            sa.Column("api_url", sa.String(), nullable=True),
            sa.Column("accounts_url", sa.String(), nullable=True),
            sa.Column("crm_api_url", sa.String(), nullable=True),
            sa.Column("books_api_url", sa.String(), nullable=True),
            sa.Column("client_id", sa.String(), nullable=True),
            sa.Column("books_org_id", sa.String(length=64), nullable=True),
            sa.Column("extra_books_org_ids", sa.JSON(), nullable=True),
            sa.Column("crm_org", sa.JSON(), nullable=True),
            sa.Column("books_org", sa.JSON(), nullable=True),
            sa.Column("paused", sa.Boolean(), nullable=False),
            sa.Column("disabled", sa.Boolean(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("name")
        )
    if _missing("cursor"):
        op.create_table(
            "cursor",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("org_id", sa.String(length=64), nullable=False),
            sa.Column("module", sa.String(length=60), nullable=False),
            sa.Column("side", sa.String(length=8), nullable=False),
            sa.Column("value", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("org_id", "module", "side", name="uq_cursor")
        )
    if _missing("failure"):
        op.create_table(
            "failure",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("run_id", sa.String(length=36), nullable=True),
            sa.Column("module", sa.String(length=40), nullable=False),
            sa.Column("side", sa.String(length=8), nullable=False),
            sa.Column("record_key", sa.String(length=160), nullable=False),
            sa.Column("crm_id", sa.String(length=64), nullable=True),
            sa.Column("books_id", sa.String(length=64), nullable=True),
            sa.Column("payload", sa.JSON(), nullable=True),
            sa.Column("code", sa.String(length=64), nullable=True),
            sa.Column("field", sa.String(length=200), nullable=True),
            sa.Column("message", sa.String(), nullable=False),
            sa.Column("hint", sa.String(), nullable=True),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("resolved", sa.Boolean(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id")
        )
        op.create_index("ix_failure_module", "failure", ["module", "resolved"], unique=False)
        op.create_index("ix_failure_run", "failure", ["run_id"], unique=False)
    if _missing("link"):
        op.create_table(
            "link",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("org_id", sa.String(length=64), nullable=False),
            sa.Column("module", sa.String(length=40), nullable=False),
            sa.Column("kind", sa.String(length=40), nullable=False),
            sa.Column("crm_module", sa.String(length=60), nullable=False),
            sa.Column("crm_id", sa.String(length=64), nullable=False),
            sa.Column("books_id", sa.String(length=64), nullable=False),
            sa.Column("parent_crm_id", sa.String(length=64), nullable=True),
            sa.Column("parent_books_id", sa.String(length=64), nullable=True),
            sa.Column("crm_values", sa.JSON(), nullable=True),
            sa.Column("books_values", sa.JSON(), nullable=True),
            sa.Column("made_by", sa.String(length=16), nullable=False),
            sa.Column("crm_modified", sa.String(length=40), nullable=True),
            sa.Column("books_modified", sa.String(length=40), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("org_id", "module", "books_id", name="uq_link_books"),
            sa.UniqueConstraint("org_id", "module", "crm_id", name="uq_link_crm")
        )
        op.create_index("ix_link_module", "link", ["org_id", "module"], unique=False)
    if _missing("record_event"):
        op.create_table(
            "record_event",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("run_id", sa.String(length=36), nullable=False),
            sa.Column("module", sa.String(length=40), nullable=False),
            sa.Column("side", sa.String(length=8), nullable=False),
            sa.Column("record_key", sa.String(length=160), nullable=False),
            sa.Column("crm_id", sa.String(length=64), nullable=True),
            sa.Column("books_id", sa.String(length=64), nullable=True),
            sa.Column("name", sa.String(), nullable=True),
            sa.Column("action", sa.String(length=16), nullable=False),
            sa.Column("changes", sa.JSON(), nullable=True),
            sa.Column("conflicts", sa.JSON(), nullable=True),
            sa.Column("message", sa.String(), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id")
        )
        op.create_index("ix_event_record", "record_event", ["record_key"], unique=False)
        op.create_index("ix_event_run", "record_event", ["run_id"], unique=False)
    if _missing("run"):
        op.create_table(
            "run",
            sa.Column("id", sa.String(length=36), nullable=False),
            sa.Column("module", sa.String(length=40), nullable=False),
            sa.Column("org_id", sa.String(length=64), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("state", sa.String(length=32), nullable=False),
            sa.Column("dry_run", sa.Boolean(), nullable=False),
            sa.Column("counts", sa.JSON(), nullable=True),
            sa.Column("api_calls", sa.JSON(), nullable=True),
            sa.Column("plan_summary", sa.JSON(), nullable=True),
            sa.Column("flow_run_id", sa.String(length=64), nullable=True),
            sa.Column("settings_version", sa.Integer(), nullable=True),
            sa.Column("message", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("id")
        )
        op.create_index("ix_run_module_started", "run", ["module", "started_at"], unique=False)
    if _missing("run_lock"):
        op.create_table(
            "run_lock",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("org_id", sa.String(length=64), nullable=False),
            sa.Column("module", sa.String(length=40), nullable=False),
            sa.Column("run_id", sa.String(length=36), nullable=False),
            sa.Column("host", sa.String(length=255), nullable=False),
            sa.Column("pid", sa.Integer(), nullable=False),
            sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("org_id", "module", name="uq_run_lock")
        )
    if _missing("settings_version"):
        op.create_table(
            "settings_version",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("org_id", sa.String(length=64), nullable=False),
            sa.Column("module", sa.String(length=40), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("settings", sa.JSON(), nullable=True),
            sa.Column("active", sa.Boolean(), nullable=False),
            sa.Column("note", sa.String(), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("org_id", "module", "version", name="uq_settings_version")
        )


def downgrade() -> None:
    """Drop every table of the state store."""
    for table in ("settings_version", "run_lock", "run", "record_event", "link", "failure",
                  "cursor", "connection"):
        op.drop_table(table)
