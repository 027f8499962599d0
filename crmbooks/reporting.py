"""Run reports in the one JSON shape scripts rely on (`sync --json`, `demo --json`, `history
--json`; see cli.md "JSON output"), so every command prints a run the same way.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from crmbooks.store import Run, Store

SIDES = ("books", "crm")
COUNT_KEYS = ("created", "updated", "deleted", "skipped", "conflicts", "failed")


def run_to_json(store: Store, run: Run) -> dict[str, Any]:
    """One stored run and its failures as the cli.md run object.

    Keys, exactly: module, run_id, state, dry_run, counts{books,crm}{created, updated,
    deleted, skipped, conflicts, failed}, api_calls{crm, books}, failures[{record, side,
    field, code, message}]. Missing counts are 0; a side's ``failed`` count falls back to the
    number of this run's failure rows on that side when the run did not record it.
    """
    failures = failure_rows(store.failures(run_id=run.id, unresolved_only=False))
    return {
        "module": run.module,
        "run_id": run.id,
        "state": run.state,
        "dry_run": bool(run.dry_run),
        "counts": normalise_counts(run.counts, failures),
        "api_calls": {side: _int((run.api_calls or {}).get(side)) for side in ("crm", "books")},
        "failures": [{k: f[k] for k in ("record", "side", "field", "code", "message")}
                     for f in failures],
    }


def normalise_counts(counts: dict | None, failures: list[dict] | None = None
                     ) -> dict[str, dict[str, int]]:
    """Counts per side with every key present as an int (what a run stored, zero-filled)."""
    counts = counts or {}
    out: dict[str, dict[str, int]] = {}
    for side in SIDES:
        given = counts.get(side) or {}
        out[side] = {key: _int(given.get(key)) for key in COUNT_KEYS}
        if "failed" not in given and failures:
            out[side]["failed"] = sum(1 for f in failures if f["side"] == side)
    return out


def failure_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Store failures (a DataFrame of FAILURE_COLUMNS) as plain dicts, plus hint and run id.

    ``record`` is the record key the sync uses (e.g. ``crm:Accounts:123``); empty strings
    and NaN become None so scripts see ``null`` rather than ``"nan"``.
    """
    rows = []
    for row in frame.to_dict("records"):
        rows.append({
            "record": text_or_none(row.get("record_key")),
            "side": text_or_none(row.get("side")),
            "field": text_or_none(row.get("field")),
            "code": text_or_none(row.get("code")),
            "message": text_or_none(row.get("message")) or "",
            "hint": text_or_none(row.get("hint")),
            "module": text_or_none(row.get("module")),
            "run_id": text_or_none(row.get("run_id")),
            "attempts": _int(row.get("attempts")),
        })
    return rows


def _int(value: Any) -> int:
    """A count as an int (stored JSON may hold strings; missing means 0)."""
    try:
        if value is None or pd.isna(value):
            return 0
        return int(value)
    except (TypeError, ValueError):
        return 0


def text_or_none(value: Any) -> str | None:
    """A string, or None for missing / NaN / empty values (DataFrame cells)."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    text = str(value)
    return text or None
