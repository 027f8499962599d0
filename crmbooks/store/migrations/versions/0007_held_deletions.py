"""Deletions a run's brake held for approval.

The table ``held_deletion``: one row per record deleted on one side whose twin the policy
would delete or deactivate, held because the run went past the brake.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``held_deletion``."""
    op.create_table(
        "held_deletion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("module", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("deleted_side", sa.String(length=8), nullable=False),
        sa.Column("deleted_id", sa.String(length=64), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("books_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("crm_module", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "module", "deleted_side", "deleted_id",
                            name="uq_held_deletion"),
    )


def downgrade() -> None:
    """Drop ``held_deletion``."""
    op.drop_table("held_deletion")
