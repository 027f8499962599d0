"""Failures carry their Books organization.

Each failure row gets the Books organization of the run that recorded it, so that a store
scoped to one organization sees and resolves only its own failures. Existing rows take the
organization of their run; a row whose run is gone or had no organization takes the primary
organization of the default connection; a row left without one (no connection saved) counts
as the primary organization's when the store reads it.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``failure.org_id`` and fill it for the rows already there."""
    with op.batch_alter_table("failure") as batch:
        batch.add_column(sa.Column("org_id", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE failure SET org_id = (SELECT run.org_id FROM run WHERE run.id = failure.run_id"
        " AND run.org_id <> '') WHERE org_id IS NULL")
    op.execute(
        "UPDATE failure SET org_id = (SELECT connection.books_org_id FROM connection"
        " WHERE connection.name = 'default' AND connection.books_org_id <> '')"
        " WHERE org_id IS NULL")


def downgrade() -> None:
    """Drop ``failure.org_id``."""
    with op.batch_alter_table("failure") as batch:
        batch.drop_column("org_id")
