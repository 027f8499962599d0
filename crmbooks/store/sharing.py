"""What every process of a connection shares through the state database: the current access
token (kept encrypted by the caller) and each Books organization's request budget.

Both are read-modify-write under a lock that holds across processes and hosts: the first
statement of the transaction is a write (an insert of the row, ignored when it exists), which
takes SQLite's write lock at once, and on PostgreSQL the row is then read `FOR UPDATE`. A
second process waits for the first one's commit (SQLite's busy timeout, PostgreSQL's row lock)
and then sees what it wrote.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from crmbooks.store.base import StoreBase
from crmbooks.store.tables import RateBudget, SharedToken, utcnow


@dataclass
class TokenSlot:
    """The shared token row as read under its lock; `store` replaces it before the commit."""

    ciphertext: str | None
    expires_at: float
    refreshes: int
    _connection: Connection
    _key: str

    def store(self, ciphertext: str, expires_at: float) -> None:
        """Keep a newly minted (encrypted) token for every process of the connection."""
        table = SharedToken.__table__
        self.refreshes += 1
        self._connection.execute(
            table.update().where(table.c.key == self._key).values(
                ciphertext=ciphertext, expires_at=expires_at, refreshes=self.refreshes,
                refreshed_at=utcnow(), refreshed_by=f"{socket.gethostname()}:{os.getpid()}"))
        self.ciphertext, self.expires_at = ciphertext, expires_at


class SharingStore(StoreBase):
    """The shared access token of a connection and the shared request budgets."""

    def shared_token(self, key: str) -> tuple[str | None, float, int]:
        """(ciphertext, expires at, refreshes so far) of a connection's token, without a lock."""
        table = SharedToken.__table__
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table.c.ciphertext, table.c.expires_at, table.c.refreshes)
                .where(table.c.key == key)).first()
        return (row[0], row[1], row[2]) if row else (None, 0.0, 0)

    @contextmanager
    def locked_token(self, key: str) -> Iterator[TokenSlot]:
        """The token row of `key`, locked against every other process until the block ends
        (committed when it ends normally, rolled back on an error)."""
        table = SharedToken.__table__
        with self.engine.begin() as connection:
            row = _locked_row(connection, table, key, {"expires_at": 0.0, "refreshes": 0},
                              (table.c.ciphertext, table.c.expires_at, table.c.refreshes))
            yield TokenSlot(row[0], row[1], row[2], connection, key)

    def reserve_requests(self, key: str, interval: float, count: int, now: float) -> float:
        """Reserve `count` request slots `interval` seconds apart in the budget `key`; returns
        the first slot's moment (the others follow it). Never earlier than `now`."""
        table = RateBudget.__table__
        with self.engine.begin() as connection:
            next_at, granted = _locked_row(connection, table, key, {"next_at": 0.0, "granted": 0},
                                           (table.c.next_at, table.c.granted))
            first = max(now, next_at)
            connection.execute(table.update().where(table.c.key == key).values(
                next_at=first + interval * count, granted=granted + count))
        return first

    def hold_requests(self, key: str, until: float) -> None:
        """No request of the budget `key` before `until` (a 429's Retry-After, for every
        process of the organization)."""
        table = RateBudget.__table__
        with self.engine.begin() as connection:
            next_at, _ = _locked_row(connection, table, key, {"next_at": 0.0, "granted": 0},
                                     (table.c.next_at, table.c.granted))
            if until > next_at:
                connection.execute(table.update().where(table.c.key == key)
                                   .values(next_at=until))


def _locked_row(connection: Connection, table, key: str, defaults: dict, columns) -> tuple:
    """Insert the row of `key` unless it exists (a write: SQLite takes its write lock here),
    then read it, `FOR UPDATE` on PostgreSQL."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    connection.execute(insert(table).values(key=key, **defaults)
                       .on_conflict_do_nothing(index_elements=["key"]))
    query = select(*columns).where(table.c.key == key)
    if dialect == "postgresql":
        query = query.with_for_update()
    return tuple(connection.execute(query).one())
