"""The emulators' clock."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now in UTC, in whole seconds: Zoho's timestamps carry no fractions of a second."""
    return datetime.now(UTC).replace(microsecond=0)
