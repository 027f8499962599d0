"""One vocabulary for what a run planned and what it did, shared by every module.

A *plan row* (a dict, or a row of a plan DataFrame) says what one record asks for:

* ``record_key`` — the record's key in history and failures (``crm/Accounts/1``,
  ``Quotes:1``, ``estimates:2``, ``deal:3`` …);
* ``action`` — one of :data:`ACTIONS`;
* ``target`` — the side it writes (``books``, ``crm`` or ``both``), or, for a skip or a
  failure, the side it would have written; ``source`` — the side it came from;
* ``name``, ``crm_id``, ``books_id``, ``reason``; for a failure ``error`` ({code, field,
  message, hint, payload}) or ``code``; ``changes`` ([{side, field, before, after}]) and
  ``conflicts``.

An *outcome* (a dict) says what one write did: ``record_key``, ``side``, ``action``, ``ok``,
the ids, ``name``, ``reason``, the ``changes`` on that side, and for a rejected write the
provider's ``code``, ``field``, ``message`` and the ``payload`` sent.

From plan rows and outcomes come the counts every run reports, the per-record history
events and the failure rows, the same way for every module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

SIDES = ("books", "crm")
OTHER = {"crm": "books", "books": "crm"}
COUNT_KEYS = ("created", "updated", "deleted", "skipped", "conflicts", "failed")
#: Every action a plan row may ask for.
ACTIONS = ("create", "clone", "update", "overwrite", "conflict-merge", "mark", "link",
           "nothing", "skip", "fail")
#: The actions that write to a side.
WRITES = ("create", "clone", "update", "overwrite", "conflict-merge", "mark", "link")
#: How a written action is counted (anything else written counts as updated). The deletions
#: step's outcomes: a twin deleted counts as deleted, a link retired alone is not a write.
COUNTED_AS = {"create": "created", "clone": "created", "delete": "deleted", "retire": None}
#: The word each action takes in history.
EVENT_OF = {"create": "created", "clone": "cloned", "update": "updated",
            "overwrite": "overwritten", "conflict-merge": "conflict", "mark": "updated",
            "link": "updated", "skip": "skipped", "fail": "failed", "delete": "deleted",
            "deactivate": "updated", "retire": "unlinked"}
#: What to do about a record that failed, unless the failure says better.
DEFAULT_HINT = "fix the record at its source; the next run or `crmbooks retry` syncs it"


def rows_of(plan: pd.DataFrame | Iterable[dict] | None) -> list[dict[str, Any]]:
    """Plan rows as dicts (a plan DataFrame's missing values become None)."""
    if plan is None:
        return []
    if isinstance(plan, pd.DataFrame):
        if plan.empty:
            return []
        return [{k: (None if _missing(v) else v) for k, v in r.items()}
                for r in plan.to_dict("records")]
    return list(plan)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def target_side(row: dict) -> str:
    """The one side a row is counted on when it writes nothing (a skip or a failure)."""
    if row.get("target") in SIDES:
        return row["target"]
    return "books" if row.get("source", "crm") == "crm" else "crm"


def written_sides(row: dict) -> list[str]:
    """The sides a plan row writes (both for a two-way create)."""
    return list(SIDES) if row.get("target") == "both" else [target_side(row)]


def counts(plan: pd.DataFrame | Iterable[dict] | None, outcomes: list[dict],
           dry_run: bool) -> dict[str, dict[str, int]]:
    """Counts per side: what was written (in a dry run, what would be), skipped and failed."""
    out = {s: dict.fromkeys(COUNT_KEYS, 0) for s in SIDES}
    for o in outcomes:
        if not o["ok"]:
            out[o["side"]]["failed"] += 1
            continue
        if (counted := COUNTED_AS.get(o["action"], "updated")) is not None:
            out[o["side"]][counted] += 1
        out[o["side"]]["conflicts"] += o["action"] == "conflict-merge"
    for r in rows_of(plan):
        if r["action"] == "skip":
            out[target_side(r)]["skipped"] += 1
        elif r["action"] == "fail":
            out[target_side(r)]["failed"] += 1
        elif dry_run and r["action"] in WRITES:
            for side in written_sides(r):
                out[side][COUNTED_AS.get(r["action"], "updated")] += 1
                out[side]["conflicts"] += r["action"] == "conflict-merge"
    return out


#: How each side is named in a run's counts in words.
SIDE_WORDS = {"books": "Books", "crm": "CRM"}


def counts_in_words(tally: dict[str, dict[str, int]]) -> str:
    """A run's counts as a sentence for its log: "Books: 10 created, 1 skipped, 1 failed;
    CRM: 2 updated", leaving out what is zero ("nothing to change" when all are)."""
    parts = []
    for side in SIDES:
        said = [f"{n} {key}" for key in COUNT_KEYS if (n := tally.get(side, {}).get(key))]
        if said:
            parts.append(f"{SIDE_WORDS.get(side, side)}: {', '.join(said)}")
    return "; ".join(parts) or "nothing to change"


def _event(row: dict, side: str, action: str, message: Any) -> dict[str, Any]:
    return {"side": side, "record_key": row["record_key"], "crm_id": row.get("crm_id"),
            "books_id": row.get("books_id"), "name": row.get("name"), "action": action,
            "message": message,
            "changes": [c for c in row.get("changes") or [] if c.get("side", side) == side],
            "conflicts": row.get("conflicts") or []}


def planned_events(plan: pd.DataFrame | Iterable[dict] | None) -> list[dict[str, Any]]:
    """History events of a plan as it stands: one per record and side it would write, skip
    or fail (``nothing`` rows make none). A dry run records these."""
    events = []
    for r in rows_of(plan):
        if r["action"] in EVENT_OF:
            events += [_event(r, side, EVENT_OF[r["action"]], r.get("reason"))
                       for side in written_sides(r)]
    return events


def run_events(plan: pd.DataFrame | Iterable[dict] | None, outcomes: list[dict],
               dry_run: bool) -> list[dict[str, Any]]:
    """History events of a run: its skips and failures, then what it wrote (or, in a dry
    run, what it would have written)."""
    rows = rows_of(plan)
    if dry_run:
        return planned_events(rows)
    events = planned_events(r for r in rows if r["action"] in ("skip", "fail"))
    for o in outcomes:
        if o["ok"]:
            events.append(_event(o, o["side"], EVENT_OF.get(o["action"], "updated"),
                                 o.get("reason")))
        else:
            events.append(_event(o, o["side"], "failed", rejection(o)))
    return events


def rejection(outcome: dict) -> str:
    """What the provider said of a rejected write: ``CODE: message``."""
    code, message = outcome.get("code"), outcome.get("message")
    return f"{code}: {message}" if code not in (None, "") else str(message or "")


def hint_for(outcome: dict, fallback: str = DEFAULT_HINT) -> str:
    """What the operator can do about a write the provider rejected."""
    text = f"{outcome.get('code')} {outcome.get('message')}".lower()
    if "already exists" in text or "duplicate" in text:
        return ("a record with this name already exists on that side: rename one, or set "
                "--duplicates overwrite/skip, then `crmbooks retry`")
    if outcome.get("field"):
        return f"correct {outcome['field']} at the source, then `crmbooks retry`"
    return fallback


def failure_rows(plan: pd.DataFrame | Iterable[dict] | None, outcomes: list[dict],
                 hint: str = DEFAULT_HINT) -> list[dict[str, Any]]:
    """Every failure of a run: records the plan could not write (mapping, links, bad data)
    and writes the provider rejected; ``hint`` is what to do when nothing says better."""
    rows = []
    for r in rows_of(plan):
        if r["action"] != "fail":
            continue
        error = r.get("error") if isinstance(r.get("error"), dict) else {}
        what = error.get("message") or r.get("reason") or ""
        rows.append({"record_key": r["record_key"], "side": target_side(r),
                     "crm_id": r.get("crm_id"), "books_id": r.get("books_id"),
                     "code": error.get("code") or r.get("code") or "INVALID_RECORD",
                     "field": error.get("field"),
                     "message": f"{r.get('name') or r['record_key']}: {what}",
                     "hint": error.get("hint") or hint,
                     "payload": error.get("payload") or r.get("books_payload")
                     or r.get("crm_payload")})
    for o in outcomes:
        if not o["ok"]:
            rows.append({"record_key": o["record_key"], "side": o["side"],
                         "crm_id": o.get("crm_id"), "books_id": o.get("books_id"),
                         "code": None if o.get("code") is None else str(o["code"]),
                         "field": o.get("field"),
                         "message": f"{o.get('name') or o['record_key']}: {o.get('message')}",
                         "hint": hint_for(o, hint), "payload": o.get("payload")})
    return rows


def handled_keys(plan: pd.DataFrame | Iterable[dict] | None, outcomes: list[dict],
                 failures: list[dict]) -> set[str]:
    """Records this run dealt with and did not fail: their earlier failures are resolved."""
    keys = {r["record_key"] for r in rows_of(plan)}
    keys |= {o["record_key"] for o in outcomes if o["ok"]}
    return keys - {f["record_key"] for f in failures}


def outcome(row: dict, side: str, *, ok: bool = True, **extra: Any) -> dict[str, Any]:
    """The outcome of writing one plan row to one side (JSON-able): the row's identity, its
    reason and its changes on that side, then ``extra`` (ids, stamps, the provider's answer)."""
    out = {"record_key": row["record_key"], "kind": row.get("kind"), "side": side,
           "action": row["action"], "crm_id": row.get("crm_id"), "books_id": row.get("books_id"),
           "name": row.get("name"), "reason": row.get("reason"),
           "changes": [c for c in row.get("changes") or [] if c.get("side", side) == side],
           "conflicts": row.get("conflicts") or [], "ok": ok}
    out.update(extra)
    return out


def rejected(row: dict, side: str, result: Any, **extra: Any) -> dict[str, Any]:
    """The outcome of a write the provider refused (``result``: a WriteResult)."""
    return outcome(row, side, ok=False, code=None if result.code is None else str(result.code),
                   field=result.field, message=result.message, **extra)
