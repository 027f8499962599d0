"""Records a run read in full, kept until the cursor has moved past them.

The table ``kept_record``: one row per organization, module, side and record id, with the
modified stamp the record had when it was read and its body as the API answered it. A rerun
after a killed run lists the same records again (the cursors did not move) and reads in full
only those whose stamp changed since.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``kept_record``."""
    op.create_table(
        "kept_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("module", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("stamp", sa.String(length=40), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "module", "side", "record_id", name="uq_kept_record"),
    )


def downgrade() -> None:
    """Drop ``kept_record``."""
    op.drop_table("kept_record")
