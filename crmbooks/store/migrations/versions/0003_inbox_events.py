"""Events the receiver accepted, kept until a run has handled them.

The table ``inbox_event``: one row per accepted event (its queue, key and organization), its
state (pending, done, failed), attempts, when it may be tried next, and which process has
taken it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``inbox_event`` and its indexes."""
    op.create_table(
        "inbox_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("worker", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_host", sa.String(length=255), nullable=True),
        sa.Column("taken_pid", sa.Integer(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inbox_state_due", "inbox_event", ["state", "worker", "due_at"])
    op.create_index("ix_inbox_key", "inbox_event", ["worker", "key"])


def downgrade() -> None:
    """Drop ``inbox_event``."""
    op.drop_index("ix_inbox_key", table_name="inbox_event")
    op.drop_index("ix_inbox_state_due", table_name="inbox_event")
    op.drop_table("inbox_event")
