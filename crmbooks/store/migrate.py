"""What an operator does to the state database's schema: see its revision, upgrade it.

crmbooks upgrades a database by itself when it opens it; these functions are for doing it
explicitly (before starting workers, say) and for seeing where a database stands. Both take
a database URL; the default is CRMBOOKS_DATABASE_URL, then the SQLite file under
CRMBOOKS_HOME.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from crmbooks.store.engine import database_url, make_engine
from crmbooks.store.errors import DatabaseTooNew
from crmbooks.store.schema import head, known, revision_of, upgrade_engine

__all__ = ["DatabaseTooNew", "current", "head", "is_newer_than_code", "known", "upgrade"]


def current(url: str | None = None) -> str | None:
    """The revision the database at ``url`` is at; None for a database with no revision
    record (an empty one, or one made before migrations). Reads only, even when the
    revision is newer than this crmbooks knows (:func:`is_newer_than_code` tells)."""
    if _missing_sqlite_file(database_url(url)):
        return None  # connecting would leave an empty file behind
    engine = make_engine(url, create=False)
    try:
        return revision_of(engine)
    finally:
        engine.dispose()


def _missing_sqlite_file(url: str) -> bool:
    """True for the URL of a SQLite file that does not exist."""
    parsed = make_url(url)
    return (parsed.get_backend_name() == "sqlite"
            and parsed.database not in (None, "", ":memory:")
            and not Path(parsed.database).exists())


def upgrade(url: str | None = None, *, replay: bool = False) -> tuple[str | None, str]:
    """Bring the database at ``url`` to the newest revision this crmbooks knows.

    Returns (from, to): equal when there was nothing to do; ``from`` is None for a fresh
    database and the initial revision for one made before migrations. Raises
    :class:`DatabaseTooNew` when a newer crmbooks upgraded it (nothing is written).
    ``replay``: make a fresh database by replaying every revision (the tests check that it
    ends in the tables a fresh database gets at once).
    """
    engine = make_engine(url, create=False)
    try:
        return upgrade_engine(engine, replay=replay)
    finally:
        engine.dispose()


def is_newer_than_code(url: str | None = None) -> bool:
    """True when the database at ``url`` was upgraded by a newer crmbooks."""
    return not known(current(url))

