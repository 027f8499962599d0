"""Cursor arithmetic, pure: reading the providers' modified stamps and choosing where the next
incremental read starts.

A cursor moves forward only past what a run has handled. A stamp far ahead of our clock (a
clock gone wrong: the year 9999) never moves a cursor, or every later change would be missed;
its record is read again each run instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from crmbooks.connectors.zoho_books import parse_books_time

#: How far ahead of our clock a provider's stamp may be and still move a cursor.
CLOCK_SKEW = timedelta(minutes=5)


def parse_stamp(side: str, value) -> datetime | None:
    """A modified stamp of `side` (Books: 2026-11-28T03:00:00+0000; CRM: ISO 8601)."""
    if value in (None, ""):
        return None
    if side == "books":
        return parse_books_time(str(value))
    return datetime.fromisoformat(str(value))


def credible(stamp: datetime | None) -> datetime | None:
    """The stamp, or None when it lies in the future beyond any clock skew."""
    if stamp is None or stamp > datetime.now(UTC) + CLOCK_SKEW:
        return None
    return stamp


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two optional moments."""
    return b if a is None else a if b is None else max(a, b)


def past_handled(stamps: Mapping[str, datetime | None], failed: Iterable[str]
                 ) -> datetime | None:
    """Where a cursor goes after reading records with these stamps ({record key: stamp}):
    past every one of them, but never past the first that failed (it is read again)."""
    known = {k: v for k, v in stamps.items() if v is not None}
    if not known:
        return None
    bad = [known[k] for k in failed if k in known]
    return min(bad) if bad else max(known.values())
