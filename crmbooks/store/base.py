"""What every part of the state store shares: the engine and the Books organization it is
scoped to, sessions, and the helpers that turn values into what the tables hold."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine
from sqlmodel import Session

from crmbooks.store.engine import make_engine
from crmbooks.store.jsonsafe import json_safe


def as_utc(value: datetime | None) -> datetime | None:
    """Return ``value`` as an aware UTC datetime (SQLite returns naive ones; they are UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def opt_str(value: Any) -> str | None:
    """An id as a string, or None for empty / NaN (ids must never become floats)."""
    value = json_safe(value)
    if value is None or value == "":
        return None
    return str(value)


def records(data: pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of a DataFrame or an iterable of mappings, as plain dicts."""
    if isinstance(data, pd.DataFrame):
        return [dict(r) for r in data.to_dict("records")]
    return [dict(r) for r in data]


class StoreBase:
    """The engine and the Books organization that every part of the store works with."""

    def __init__(self, engine: Engine | None = None, org_id: str = "") -> None:
        """Wrap ``engine`` (default: :func:`make_engine`) for the Books organization ``org_id``."""
        self.engine = engine or make_engine()
        self.org_id = org_id

    def session(self) -> Session:
        """A new session; objects stay readable after commit."""
        return Session(self.engine, expire_on_commit=False)
