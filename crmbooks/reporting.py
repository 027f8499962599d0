"""Run reports in the one JSON shape scripts rely on (`sync --json`, `demo --json`, `history
--json`), so every command prints a run the same way; and the Books contacts linked to the CRM
(`crmbooks linked`, the linked-records flow), read from the state store.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from crmbooks.store import Run, Store

SIDES = ("books", "crm")
COUNT_KEYS = ("created", "updated", "deleted", "skipped", "conflicts", "failed")


def run_to_json(store: Store, run: Run) -> dict[str, Any]:
    """One stored run and its failures as the run object of the JSON output.

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


def skipped_to_json(module: str, reason: str, dry_run: bool = False) -> dict[str, Any]:
    """A module that did not run because it is turned off, as a run object of the JSON
    output: the keys of `run_to_json` (no run id, nothing counted), state ``skipped`` and the
    ``reason`` (what turns it on)."""
    return {"module": module, "run_id": None, "state": "skipped", "dry_run": dry_run,
            "counts": normalise_counts(None), "api_calls": {"crm": 0, "books": 0},
            "failures": [], "reason": reason}


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
    """Store failures (a DataFrame of FAILURE_COLUMNS) as plain dicts, plus hint, run id and
    the Books organization (``org``) the failure belongs to.

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
            "org": text_or_none(row.get("org_id")),
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


#: What `linked` lists per kind of Books contact: (store module, link kinds listed).
LINKED_KINDS = {"customers": ("customers", ("accounts", "contacts")),
                "vendors": ("vendors", ("vendors",))}


def linked_rows(store: Store, what: str) -> list[dict]:
    """The Books contacts of `customers` or `vendors` linked to the CRM, by name then CRM id.

    Read from the state store only (no API call): every Books customer or vendor that came
    from the CRM or is linked to a CRM record, with how it was linked (sync, trigger, manual)
    and when it last synced. Books' own "CRM" filter (`filter_by=Status.Crm`) lists the same
    contacts, because every record crmbooks links carries Zoho's link field (zcrm_account_id …).
    """
    from crmbooks.sync.modules import module_spec

    module, kinds = LINKED_KINDS[what]
    spec = module_spec(module)
    links = store.links(module)
    rows = []
    for link in links.to_dict("records") if not links.empty else []:
        if link["kind"] not in kinds:
            continue  # contact persons live inside their customer
        kind = spec.kind(link["kind"])
        name = (link["books_values"] or {}).get(kind.books_name_field) or kind.crm_name(
            link["crm_values"] or {})
        synced = link["updated_at"]
        rows.append({"crm_id": str(link["crm_id"]), "books_id": str(link["books_id"]),
                     "crm_module": link["crm_module"], "name": name or "",
                     "linked_by": link["made_by"] or "sync",
                     "last_synced": synced.isoformat() if synced is not None else None})
    return sorted(rows, key=lambda r: (r["name"].casefold(), r["crm_id"]))
