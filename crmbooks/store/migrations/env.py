"""Alembic's environment for the migrations of the crmbooks state store.

crmbooks runs them itself (``crmbooks.store.schema``), on a connection that it has already
opened and locked against a concurrent upgrade, passed in ``config.attributes["connection"]``.
Run by the ``alembic`` command instead (a developer writing a new revision, see README.md
beside this file), they connect to the URL of ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from crmbooks.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from crmbooks.store.schema import VERSION_TABLE


def run_migrations(connection) -> None:
    """Run the pending revisions on ``connection``."""
    # render_as_batch: SQLite alters a table by copying it, and batch operations do that.
    context.configure(connection=connection, target_metadata=SQLModel.metadata,
                      version_table=VERSION_TABLE, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run_migrations(given)
else:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        run_migrations(connection)
    engine.dispose()
