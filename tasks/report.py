"""Report: the run's history (per-record events, failures), its cursors, its Prefect
artifacts, and the summary every surface prints — the same for every module.

Counts, events and failure rows come from the plan and the outcomes in the one vocabulary of
crmbooks.sync.outcomes. Failures of records handled this run are resolved, and so are those
of targeted records found deleted at their source. The module's family says where its
cursors go (tasks/family.py); a targeted run read a few records by id and moves none.
"""

from __future__ import annotations

from collections import Counter

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from crmbooks.operations import deleted_note
from crmbooks.sync.outcomes import (
    EVENT_OF,
    SIDES,
    counts,
    failure_rows,
    handled_keys,
    rows_of,
    run_events,
)
from tasks.audit import settle_journal
from tasks.context import RunContext
from tasks.families import family_of
from tasks.family import Fetched

PLAN_DETAIL_ROWS = 500


# Not persisted, so never cached: NO_CACHE spares Prefect hashing its inputs (the plan, the
# outcomes and both sides' fetched records), a full pickle of the run's data.
@task(name="report", cache_policy=NO_CACHE)
def report(run: RunContext, plan, outcomes: list[dict], crm: Fetched, books: Fetched) -> dict:
    """Write the run's history and artifacts, move the cursors, close the run."""
    family, runtime = family_of(run.module), run.runtime()
    store = runtime.store
    rows = rows_of(plan)
    tally = counts(rows, outcomes, run.dry_run)
    failures = failure_rows(rows, outcomes, family.failure_hint)
    # A flow-run retry runs the report again with the same run id: replace, never double.
    store.clear_events(run.run_id)
    store.add_events(run.run_id, run.module, run_events(rows, outcomes, run.dry_run))
    waiting: set[str] = set()
    if not run.dry_run:
        settle_journal(run, store, outcomes)
        waiting = set(store.failures(module=run.module)["run_id"]) - {run.run_id}
        if failures:
            store.add_failures(run.run_id, run.module, failures)
        store.resolve_failures(run.module, handled_keys(rows, outcomes, failures))
        for fetched, where in ((crm, "the CRM"), (books, "Books")):
            if fetched.gone:
                store.resolve_failures(run.module, fetched.gone, note=deleted_note(where))
        if _reviews(rows):
            _queue(run, store, rows, failures)
        if not run.targeted:
            failed = {f["record_key"] for f in failures}
            for (key, side), cursor in family.settle(run, crm, books, outcomes, failed).items():
                store.advance_cursor(key, side, cursor)
            # The cursors now stand for these settings: the next run reads incrementally.
            # Not after a failure: like the cursor, the settings stay unsettled, and the
            # next run reads every record again.
            fingerprint = run.facts.get("settings_fingerprint")
            if fingerprint and not failed:
                store.settle_cursor_settings(run.module, ("crm", "books"), fingerprint)
    calls = runtime.api_calls()
    api_calls = {s: calls.get(s, 0) - run.calls_before.get(s, 0) for s in ("crm", "books")}
    state = "completed_with_failures" if any(c["failed"] for c in tally.values()) \
        else "completed"
    store.finish_run(run.run_id, state, counts=tally, api_calls=api_calls,
                     plan_summary=dict(Counter(r["action"] for r in rows)), message=run.note)
    _plan_details(run, rows)
    if _reviews(rows):
        _review_artifact(run, store, rows)
    family.artifacts(run, rows)
    get_run_logger().info("%s %s: %s; API calls %s", run.module, state, tally, api_calls)
    return {"run_id": run.run_id, "state": state, "counts": tally, "api_calls": api_calls,
            **family.summary(crm, books),
            # Created by the flow itself (tasks/run.py `finish`), not by this task: the UI's
            # artifacts tab shows a run's own artifacts above those of its task runs.
            "artifacts": _tables(run, tally, api_calls, failures),
            # The first reasons, for the run's one-line Failed message (what an alert sends).
            "reasons": first_reasons(failures),
            "resolved": _resolved_runs(store, run.module, waiting)}


def first_reasons(failures: list[dict], limit: int = 3, width: int = 140) -> list[str]:
    """The first `limit` failures as short one-line reasons: `record: CODE message`."""
    reasons = []
    for failure in failures[:limit]:
        code = f"{failure['code']} " if failure.get("code") else ""
        text = " ".join(f"{failure['record_key']}: {code}{failure['message']}".split())
        reasons.append(text if len(text) <= width else text[:width - 1] + "…")
    return reasons


def _resolved_runs(store, module: str, waiting: set[str]) -> list[dict]:
    """The earlier runs that had unresolved failures before this run and have none left:
    their Prefect runs are marked resolved (tasks/run.py `finish`)."""
    left = set(store.failures(module=module)["run_id"]) if waiting else set()
    resolved = []
    for run_id in sorted(waiting - left):
        row = store.run(run_id)
        if row is not None and row.flow_run_id:
            resolved.append({"run_id": run_id, "flow_run_id": row.flow_run_id})
    return resolved


def _tables(run: RunContext, tally: dict, api_calls: dict, failures: list[dict]
            ) -> list[dict]:
    """The run's summary table and failures list for the Prefect UI (keys: lowercase and
    dashes), as `create_table_artifact` / `create_markdown_artifact` arguments (`markdown`
    set for the latter)."""
    prefix = f"{run.module}-{'plan' if run.dry_run else 'sync'}"
    summary = [{"side": side, **tally[side], "api_calls": api_calls.get(side, 0)}
               for side in SIDES]
    return [{"table": summary, "key": f"{prefix}-summary",
             "description": f"{run.module}: records per side (run {run.run_id})"},
            {"markdown": failures_markdown(failures), "key": f"{prefix}-failures",
             "description": f"{run.module}: failed records and what to do"}]


#: The failures artifact lists at most this many (`crmbooks history --failures` has them all).
FAILURE_DETAIL_ROWS = 200


def _prose(value) -> str:
    """Text for a markdown paragraph, on one line: markdown's own characters escaped, so a
    provider's message never turns into a link, a heading or HTML."""
    text = " ".join(str(value or "").split())
    for char in "\\`*_[]<>#|!":
        text = text.replace(char, "\\" + char)
    return text


def failures_markdown(failures: list[dict]) -> str:
    """The failures artifact: one short block per failed record, its "what to do" first and
    the provider's message under it, so both wrap in the UI's window (a table artifact has
    fixed columns, and at 1400 px cut the message and "what to do" off)."""
    if not failures:
        return "No failed records."
    lines = [f"**{len(failures)} failed record(s).** Fix each at its source, then retry it "
             "(`crmbooks retry`, or the `retry-failed-records/retry` deployment)."]
    for n, failure in enumerate(failures[:FAILURE_DETAIL_ROWS], start=1):
        where = [f"{failure['side']} side"]
        if failure.get("field"):
            where.append(f"field `{_cell(failure['field']).replace('`', '')}`")
        if failure.get("code"):
            where.append(f"`{_cell(failure['code']).replace('`', '')}`")
        lines += ["", "---", "",
                  f"**{n}. {_prose(failure['record_key'])}** · " + " · ".join(where), "",
                  f"→ what to do: {_prose(failure['hint'])}", "",
                  f"message: {_prose(failure['message'])}"]
    if len(failures) > FAILURE_DETAIL_ROWS:
        lines += ["", f"… and {len(failures) - FAILURE_DETAIL_ROWS} more: "
                      "`crmbooks history --failures` lists them all."]
    return "\n".join(lines)


def _plan_details(run: RunContext, rows: list[dict]) -> None:
    """In a dry run, what a sync would do, as a markdown artifact."""
    if run.dry_run:
        planned = [r for r in rows if r["action"] != "nothing"]
        if planned:
            create_markdown_artifact(_plan_markdown(planned),
                                     key=f"{run.module}-plan-details",
                                     description=f"{run.module}: what a sync would do")


def _reviews(rows: list[dict]) -> bool:
    """True for a plan that has a review queue (the record modules' plans)."""
    return bool(rows) and "review" in rows[0]


def _queue(run: RunContext, store, rows: list[dict], failures: list[dict]) -> None:
    """Queue the records this run left for review, and mark as applied the decisions whose
    records it synced (a pair merged, a separate record created)."""
    store.queue_reviews(run.run_id, run.module, [
        {"record_key": r["record_key"], "kind": r.get("kind"), "name": r.get("name"),
         **r["review"]} for r in rows if r.get("review")])
    pending = store.to_apply(run.module)
    if not pending:
        return
    failed = {f["record_key"] for f in failures}
    done = {str(r.get(col)) for r in rows if r["action"] not in ("fail", "skip")
            and r["record_key"] not in failed for col in ("crm_id", "books_id") if r.get(col)}
    store.mark_applied(run.module, [e.record_key for e in pending if e.record_id in done])


def _review_artifact(run: RunContext, store, rows: list[dict]) -> None:
    """The review queue as a table artifact: what waits for a decision after this run (in a
    dry run, what this run would queue)."""
    if run.dry_run:
        queued = [{"record": r["record_key"], "name": r.get("name") or "",
                   "candidates": ", ".join(c["id"] for c in r["review"]["candidates"]),
                   "evidence": "; ".join(r["review"]["evidence"])}
                  for r in rows if r.get("review")]
    else:
        queued = [{"record": e.record_key, "name": e.name or "",
                   "candidates": ", ".join(str(c.get("id")) for c in e.candidates or []),
                   "evidence": "; ".join(e.evidence or [])} for e in store.reviews(run.module)]
    if not queued:  # an artifact only when a decision waits: the tab shows what matters
        return
    prefix = f"{run.module}-{'plan' if run.dry_run else 'sync'}"
    create_table_artifact(
        queued, key=f"{prefix}-review",
        description=f"{run.module}: records waiting for a decision (`crmbooks duplicates`)")


def _cell(value) -> str:
    """Text for a markdown table cell: a trailing backslash must not escape the next pipe."""
    return str(value or "").replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _plan_markdown(rows: list[dict]) -> str:
    lines = ["| record | name | action | target | reason |", "|---|---|---|---|---|"]
    for r in rows[:PLAN_DETAIL_ROWS]:
        lines.append(f"| {r['record_key']} | {_cell(r.get('name'))} | "
                     f"{EVENT_OF.get(r['action'], r['action'])} | {r.get('target')} | "
                     f"{_cell(r.get('reason'))} |")
    if len(rows) > PLAN_DETAIL_ROWS:
        lines.append(f"\n… and {len(rows) - PLAN_DETAIL_ROWS} more")
    return "\n".join(lines)
