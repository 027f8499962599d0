"""Tokens and request budgets shared by every process of a connection.

The table ``shared_token``: one row per connection's credentials (a fingerprint), holding its
current access token encrypted, when it expires and how often it was refreshed. The table
``rate_budget``: one row per Books organization, the moment its next request may go.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``shared_token`` and ``rate_budget``."""
    op.create_table(
        "shared_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.String(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("refreshes", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshed_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "rate_budget",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )


def downgrade() -> None:
    """Drop ``rate_budget`` and ``shared_token``."""
    op.drop_table("rate_budget")
    op.drop_table("shared_token")
