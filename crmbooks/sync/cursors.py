"""Cursor arithmetic, pure: reading the providers' modified stamps and choosing where the next
incremental read starts.

A cursor moves forward only past what a run has handled. A stamp far ahead of our clock (a
clock gone wrong: the year 9999) never moves a cursor, or every later change would be missed;
its record is read again each run instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


def newest_stamp(side: str, rows: Iterable[Mapping], column: str) -> datetime | None:
    """The newest credible modified stamp among `rows` (None when none carries one)."""
    newest = None
    for row in rows:
        newest = later(newest, credible(parse_stamp(side, row.get(column))))
    return newest


def earliest(moments: Sequence[datetime | None]) -> datetime | None:
    """The earliest of several reads' start moments; None when any of them is unknown."""
    if not moments or any(m is None for m in moments):
        return None
    return min(moments)


def past_its_second(cursor: datetime | None, began: datetime | None) -> datetime | None:
    """The cursor, moved past its own second when the read that reached it began after that
    second had ended (by the server's clock).

    Stamps have whole seconds and the incremental reads include the cursor's second, so
    every run would read again whatever changed in that second (after a bulk change, several
    pages of it). A change in second S made after a read began would carry stamp S too, so
    skipping S is safe only when the read began at or after S + 1 s: then every change
    stamped S was already there to be read, and any later one carries a later stamp.
    """
    if cursor is None or began is None:
        return cursor
    following = cursor.replace(microsecond=0) + timedelta(seconds=1)
    return following if began >= following else cursor


#: The settings of a record module that decide which records a run reads and how they map:
#: after a change of any of them, the records that exist already need a look too.
READ_SETTINGS = ("scope", "crm_module", "include_unassociated_contacts", "view",
                 "contact_view", "maps", "value_maps")


def settings_fingerprint(settings: Mapping) -> str:
    """A short fingerprint of the settings that decide what a record module's run reads and
    how it maps (:data:`READ_SETTINGS`), as stored JSON; equal settings give equal ones."""
    import hashlib
    import json

    chosen = {key: settings.get(key) for key in READ_SETTINGS}
    text = json.dumps(chosen, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_from_start(cursors: Mapping[str, datetime | None], settled: Mapping[str, str | None],
                    fingerprint: str) -> dict[str, datetime | None]:
    """The cursors a run starts from: a side whose cursor settled under other settings reads
    from the start (None), once, so those settings reach the records that exist already. A
    cursor settled before fingerprints were kept (None) counts as settled under these."""
    return {side: None if settled.get(side) not in (None, fingerprint) else value
            for side, value in cursors.items()}
