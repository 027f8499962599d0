"""The settings a cursor was advanced under.

The column ``cursor.settings_fingerprint``: a fingerprint of the module settings that decide
what a run reads and how it maps (scope, CRM module, views, unassociated contacts, field and
value maps) when the cursor last settled. A run whose settings differ reads from the start
once, so a change of those settings reaches the records that exist already. Empty for
cursors settled before it existed: those are taken as settled under the active settings.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``cursor.settings_fingerprint``."""
    with op.batch_alter_table("cursor") as batch:
        batch.add_column(sa.Column("settings_fingerprint", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop ``cursor.settings_fingerprint``."""
    with op.batch_alter_table("cursor") as batch:
        batch.drop_column("settings_fingerprint")
