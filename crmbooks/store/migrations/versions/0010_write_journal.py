"""The audit trail and undo: every remote write journaled before it is sent, and which run
an undo run reversed.

The tables ``journaled_write`` (one row per record and side a run writes, with the values it
replaces) and ``run_undo``.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``journaled_write`` and ``run_undo``."""
    op.create_table(
        "journaled_write",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("module", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("record_key", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=True),
        sa.Column("crm_id", sa.String(length=64), nullable=True),
        sa.Column("books_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("stamp", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_journaled_write_run", "journaled_write", ["run_id"])
    op.create_index("ix_journaled_write_module_state", "journaled_write", ["module", "state"])
    op.create_table(
        "run_undo",
        sa.Column("undo_run_id", sa.String(length=36), nullable=False),
        sa.Column("undone_run_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("undo_run_id"),
        sa.UniqueConstraint("undone_run_id"),
    )


def downgrade() -> None:
    """Drop ``run_undo`` and ``journaled_write``."""
    op.drop_table("run_undo")
    op.drop_index("ix_journaled_write_module_state", table_name="journaled_write")
    op.drop_index("ix_journaled_write_run", table_name="journaled_write")
    op.drop_table("journaled_write")
