"""Report: history rows, failures, counts, Prefect artifacts, and the cursors moved forward.

Cursors move only after the data they cover was pushed (style rule 8), and never past a record
that failed (it is fetched again next run). After a side was written, one verifying scan since
the new baseline checks that everything newer is our own echo; only then does the cursor jump
past our writes, so the next quiet run costs one request per module instead of re-reading them.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from crmbooks.connectors.zoho_books import parse_books_time
from crmbooks.sync.plan import EVENT_OF, plan_events
from tasks.context import RunContext
from tasks.fetch import CONTACT_TYPE, _echo_stamps, books_filter

SIDES = ("books", "crm")
#: How far ahead of our clock a provider's stamp may be and still move a cursor.
CLOCK_SKEW = timedelta(minutes=5)
COUNT_KEYS = ("created", "updated", "deleted", "skipped", "conflicts", "failed")
COUNT_OF_ACTION = {"create": "created", "clone": "created", "update": "updated",
                   "overwrite": "updated", "conflict-merge": "updated"}


def count(plan: pd.DataFrame, outcomes: list[dict], dry_run: bool) -> dict:
    """Counts per side: what was written (or, in a dry run, what would be)."""
    counts = {s: dict.fromkeys(COUNT_KEYS, 0) for s in SIDES}
    for o in outcomes:
        key = COUNT_OF_ACTION.get(o["action"]) if o["ok"] else "failed"
        counts[o["side"]][key] += 1
        if o["ok"] and o["action"] == "conflict-merge":
            counts[o["side"]]["conflicts"] += 1
    for r in plan.to_dict("records") if not plan.empty else []:
        side = r["target"] if r["target"] in SIDES else ("books" if r["source"] == "crm"
                                                          else "crm")
        if r["action"] == "skip":
            counts[side]["skipped"] += 1
        elif r["action"] == "fail":
            counts[side]["failed"] += 1
        elif dry_run and r["action"] in COUNT_OF_ACTION:
            for s in (SIDES if r["target"] == "both" else (side,)):
                counts[s][COUNT_OF_ACTION[r["action"]]] += 1
                counts[s]["conflicts"] += r["action"] == "conflict-merge"
    return counts


def failure_rows(plan: pd.DataFrame, outcomes: list[dict]) -> list[dict]:
    """Every failure of the run: mapping/plan failures and records the provider rejected."""
    rows = []
    for r in plan[plan["action"] == "fail"].to_dict("records") if not plan.empty else []:
        error = r.get("error") if isinstance(r.get("error"), dict) else {}
        message = f"{r.get('name') or r['record_key']}: {error['message']}" \
            if error.get("message") else r.get("reason") or ""
        rows.append({"record_key": r["record_key"], "side": r["target"] if r["target"] in SIDES
                     else "books", "crm_id": r.get("crm_id"), "books_id": r.get("books_id"),
                     "code": error.get("code") or "INVALID_RECORD", "field": error.get("field"),
                     "message": message,
                     "hint": error.get("hint") or "fix the record at its source; the next run "
                             "or `crmbooks retry` syncs it",
                     "payload": error.get("payload") or r.get("books_payload")
                     or r.get("crm_payload")})
    for o in outcomes:
        if not o["ok"]:
            rows.append({"record_key": o["record_key"], "side": o["side"],
                         "crm_id": o.get("crm_id"), "books_id": o.get("books_id"),
                         "code": o.get("code"), "field": o.get("field"),
                         "message": f"{o.get('name') or o['record_key']}: {o.get('message')}",
                         "hint": hint_for(o), "payload": o.get("payload")})
    return rows


def hint_for(outcome: dict) -> str:
    """What the operator can do about a rejected record."""
    text = f"{outcome.get('code')} {outcome.get('message')}".lower()
    if "already exists" in text or "duplicate" in text:
        return ("a record with this name already exists on that side: rename one, or set "
                "--duplicates overwrite/skip, then `crmbooks retry`")
    if outcome.get("field"):
        return f"correct {outcome['field']} at the source, then `crmbooks retry`"
    return "correct the record at its source, then `crmbooks retry`"


def events(plan: pd.DataFrame, outcomes: list[dict], dry_run: bool) -> list[dict]:
    """Record events (B4): from the plan in a dry run, from what was written otherwise."""
    planned = plan_events(plan) if not plan.empty else []
    if dry_run:
        return planned
    done = {(o["record_key"], o["side"]): o for o in outcomes}
    result = []
    for e in planned:
        o = done.get((e["record_key"], e["side"]))
        if e["action"] in ("skipped", "failed") or o is None:
            if e["action"] in ("skipped", "failed"):
                result.append(e)
            continue
        if not o["ok"]:
            e = {**e, "action": "failed", "message": o.get("message")}
        else:
            e = {**e, "crm_id": o.get("crm_id") or e.get("crm_id"),
                 "books_id": o.get("books_id") or e.get("books_id")}
        result.append(e)
    return result


def _stamp(side: str, value) -> datetime | None:
    if value in (None, ""):
        return None
    if side == "books":
        return parse_books_time(str(value))
    return datetime.fromisoformat(str(value))


def settle_cursor(run: RunContext, side: str, fetched: dict[str, pd.DataFrame],
                  outcomes: list[dict], any_failed: bool) -> datetime | None:
    """The new cursor of one side, or None to leave it where it is."""
    column = "Modified_Time" if side == "crm" else "last_modified_time"
    old = run.crm_cursor if side == "crm" else run.books_cursor
    stamps = [s for f in fetched.values() if not f.empty and column in f
              for s in (_credible(_stamp(side, v)) for v in f[column]) if s]
    baseline = max(stamps, default=old)
    if any_failed:
        return None  # a failed record must be fetched again: the cursor stays
    wrote = [o for o in outcomes if o["ok"] and o["side"] == side]
    if not wrote:
        return baseline
    # baseline None: the side was empty (a first sync into it); everything there now must be
    # our own writes, which one full scan checks. Else each later run would re-read them all.
    return _past_own_writes(run, side, baseline, wrote, fetched) or baseline


def _credible(stamp: datetime | None) -> datetime | None:
    """A modified stamp, or None when it lies in the future (a clock gone wrong: the year
    9999). Such a stamp must not carry the cursor past now, or every later change would be
    missed; its record is read again each run instead."""
    if stamp is None or stamp > datetime.now(UTC) + CLOCK_SKEW:
        return None
    return stamp


def _past_own_writes(run: RunContext, side: str, baseline: datetime | None,
                     wrote: list[dict], fetched: dict[str, pd.DataFrame]) -> datetime | None:
    """The newest stamp since `baseline` when everything since then is our own doing.

    "Ours" is a record we wrote (with the stamp our write left), a record this run fetched
    (with the stamp it had: the baseline itself is inclusive), or — on Books — a customer
    whose contact persons we added, which touches the customer after our own write.
    """
    runtime, spec, settings = run.runtime(), run.spec(), run.module_settings()
    id_column, stamp_column = ("id", "Modified_Time") if side == "crm" else (
        "contact_id", "last_modified_time")
    seen = {(str(i), s) for f in fetched.values() if not f.empty and id_column in f
            and stamp_column in f for i, s in zip(f[id_column], f[stamp_column], strict=True)}
    seen |= {(str(o.get(f"{side}_id")), o.get(f"{side}_modified")) for o in wrote}
    # … or an echo of an earlier run: at the inclusive boundary the fetch dropped it as such.
    seen |= set(_echo_stamps(run, side).items())
    touched = {str(o.get("parent_books_id")) for o in wrote if o.get("parent_books_id")}

    def ours(record_id, stamp) -> bool:
        return (str(record_id), stamp) in seen or (side == "books" and str(record_id) in touched)

    newest = baseline
    if side == "books":
        resources = {k.books_resource for k in spec.active_kinds(settings)} - {"contact_persons"}
        if resources != {"contacts"}:
            return None  # items have no modified-time scan: their fetch is always complete
        restamped = {}
        for page in runtime.books.iter_modified("contacts", baseline,
                                                books_filter(run, "contacts")):
            for row in page:
                if row.get("contact_type") != CONTACT_TYPE.get(run.module):
                    continue
                record_id, stamp = str(row.get("contact_id")), row.get("last_modified_time")
                if not ours(record_id, stamp):
                    return None
                if record_id in touched and (record_id, stamp) not in seen:
                    restamped[record_id] = stamp
                newest = _later(newest, _credible(_stamp("books", stamp)))
        _restamp(run, restamped)
        return newest
    for module in sorted({k.crm_module for k in spec.active_kinds(settings)}):
        for page in runtime.crm.iter_records(module, ["id", "Modified_Time"],
                                             modified_since=baseline, sort_by="Modified_Time"):
            for row in page:
                if not ours(row.get("id"), row.get("Modified_Time")):
                    return None
                newest = _later(newest, _credible(_stamp("crm", row["Modified_Time"])))
    return newest


def _restamp(run: RunContext, stamps: dict[str, str]) -> None:
    """Remember the stamp our person writes left on their customers as those customers' echo
    stamp: else the next run reads them again, and each one's detail (a request apiece)."""
    store = run.runtime().store
    for books_id, stamp in stamps.items():
        link = store.find_link(run.module, books_id=books_id)
        if link is not None:
            store.upsert_link(run.module, crm_id=link.crm_id, books_id=books_id,
                              books_modified=stamp)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


# Not persisted, so never cached: NO_CACHE spares Prefect hashing its inputs (the plan, the
# outcomes and both sides' fetched frames), a full pickle of the run's data (issue 8).
@task(name="report", cache_policy=NO_CACHE)
def report(run: RunContext, plan: pd.DataFrame, outcomes: list[dict],
           crm_fetched: dict[str, pd.DataFrame], books_fetched: dict[str, pd.DataFrame]) -> dict:
    """Write the run's history and artifacts, move the cursors, close the run."""
    runtime, logger = run.runtime(), get_run_logger()
    store = runtime.store
    counts = count(plan, outcomes, run.dry_run)
    failures = failure_rows(plan, outcomes)
    # A flow-run retry runs the report again with the same run id: replace, never double.
    store.clear_events(run.run_id)
    store.add_events(run.run_id, run.module, events(plan, outcomes, run.dry_run))
    if failures and not run.dry_run:
        store.add_failures(run.run_id, run.module, failures)
    if not run.dry_run:
        _resolve_fixed(run, plan, outcomes)
        # A targeted run read a few records by id: it says nothing about the rest.
        for side, fetched in () if run.targeted else (("crm", crm_fetched),
                                                      ("books", books_fetched)):
            cursor = settle_cursor(run, side, fetched, outcomes, bool(failures))
            if cursor is not None:
                store.advance_cursor(run.module, side, cursor)
    calls = runtime.api_calls()
    api_calls = {s: calls.get(s, 0) - run.calls_before.get(s, 0) for s in ("crm", "books")}
    state = "completed_with_failures" if any(c["failed"] for c in counts.values()) \
        else "completed"
    store.finish_run(run.run_id, state, counts=counts, api_calls=api_calls,
                     plan_summary=dict(Counter(plan["action"])) if not plan.empty else {},
                     message=run.note)
    _artifacts(run, plan, counts, api_calls, failures)
    logger.info("%s %s: %s; API calls %s", run.module, state, counts, api_calls)
    return {"run_id": run.run_id, "state": state, "counts": counts, "api_calls": api_calls}


def _resolve_fixed(run: RunContext, plan: pd.DataFrame, outcomes: list[dict]) -> None:
    """Failures of earlier runs whose record now went through are marked resolved."""
    keys = {o["record_key"] for o in outcomes if o["ok"]}
    if not plan.empty:
        keys |= set(plan.loc[plan["action"] == "nothing", "record_key"])
    if keys:
        run.runtime().store.resolve_failures(run.module, keys)


def _artifacts(run: RunContext, plan: pd.DataFrame, counts: dict, api_calls: dict,
               failures: list[dict]) -> None:
    """The run's summary and failures tables in the Prefect UI (keys: lowercase and dashes)."""
    prefix = f"{run.module}-{'plan' if run.dry_run else 'sync'}"
    summary = [{"side": side, **counts[side], "api_calls": api_calls.get(side, 0)}
               for side in SIDES]
    create_table_artifact(summary, key=f"{prefix}-summary",
                          description=f"{run.module}: records per side (run {run.run_id})")
    create_table_artifact(
        [{"record": f["record_key"], "side": f["side"], "field": f.get("field") or "",
          "code": f.get("code") or "", "message": f["message"], "what to do": f["hint"]}
         for f in failures] or [{"record": "", "side": "", "field": "", "code": "",
                                 "message": "no failures", "what to do": ""}],
        key=f"{prefix}-failures", description=f"{run.module}: failed records and what to do")
    if run.dry_run and not plan.empty:
        rows = plan[plan["action"] != "nothing"]
        create_markdown_artifact(_plan_markdown(rows), key=f"{prefix}-details",
                                 description=f"{run.module}: what a sync would do")


def _cell(value) -> str:
    """Text for a markdown table cell: a trailing backslash must not escape the next pipe."""
    return str(value or "").replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _plan_markdown(rows: pd.DataFrame) -> str:
    lines = ["| record | name | action | target | reason |", "|---|---|---|---|---|"]
    for r in rows.head(500).to_dict("records"):
        lines.append(f"| {r['record_key']} | {_cell(r.get('name'))} | "
                     f"{EVENT_OF.get(r['action'], r['action'])} | {r['target']} | "
                     f"{_cell(r.get('reason'))} |")
    if len(rows) > 500:
        lines.append(f"\n… and {len(rows) - 500} more")
    return "\n".join(lines)
