"""What `crmbooks disable` removes from the CRM, and what it removed.

``link.crm_created``: crmbooks created the CRM record of the link (a Books record copied to
the CRM), so disabling may delete it; links made before this revision are taken as a CRM
user's records and are never deleted. The table ``removed_record``: the CRM records disabling
deleted, whose Books twins still name them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``link.crm_created`` and create ``removed_record``."""
    with op.batch_alter_table("link") as batch:
        batch.add_column(sa.Column("crm_created", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        "removed_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("module", sa.String(length=40), nullable=False),
        sa.Column("crm_module", sa.String(length=60), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("books_id", sa.String(length=64), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "module", "crm_id", name="uq_removed_record"),
    )


def downgrade() -> None:
    """Drop ``removed_record`` and ``link.crm_created``."""
    op.drop_table("removed_record")
    with op.batch_alter_table("link") as batch:
        batch.drop_column("crm_created")
