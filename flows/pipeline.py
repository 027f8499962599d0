"""The one pipeline every record module runs: start → fetch → map → dedupe → plan → push → report.

Each step is a Prefect task over whole batches (never a task per record: reference/prefect.md
§3); pushes go in batches of up to 100 records. A dry run (B1) stops after the plan and only
reports it. Module flows (customers, vendors, items) are this function with their name.
"""

from __future__ import annotations

from prefect import get_run_logger
from prefect.states import Completed, Failed

from crmbooks.store import RunLockHeld
from crmbooks.sync.lifecycle import RecordsFailed, RunInProgress
from tasks.fetch import fetch_books, fetch_crm
from tasks.guards import assert_currency_unchanged
from tasks.plan import dedupe, map_records, plan_changes
from tasks.progress import Progress
from tasks.push import (
    BOOKS_BATCH,
    CRM_BATCH,
    batches,
    link_pairs,
    pairs_to_link,
    push_books,
    push_crm,
    rows_for,
)
from tasks.report import report
from tasks.start import start_run


def run_pipeline(module: str, dry_run: bool = False, org_id: str | None = None,
                 targets: dict[str, list[str]] | None = None, connection: str = "default"):
    """Sync one module (or only the `targets` ids); returns the run summary in a state."""
    run = start_run(module, dry_run, org_id, targets, connection)
    hold_run_lock(run)
    try:
        crm = fetch_crm(run)
        books = fetch_books(run)
        mapped = map_records(run, crm, books)
        indexes = dedupe(run, crm, books)
        plan = plan_changes(run, mapped, indexes)
        outcomes = [] if dry_run else push_all(run, plan)
        summary = report(run, plan, outcomes, crm, books)
    except BaseException as exc:
        abandon(run, exc)
        raise
    finally:
        release_run_lock(run)
    return finish(summary)


def hold_run_lock(run) -> None:
    """Make this the only live run of its module (issue 8): Prefect's deployment concurrency
    limit does not cover a manual `crmbooks sync` or sync-now's child runs. A second run is
    refused and recorded as such; a dry run writes nothing remote and takes no lock."""
    if run.dry_run:
        return
    store = run.runtime().store
    try:
        stale = store.acquire_run_lock(run.module, run.run_id)
    except RunLockHeld as exc:
        store.finish_run(run.run_id, "refused", message=str(exc))
        get_run_logger().warning("%s", exc)
        raise RunInProgress(str(exc)) from None
    if stale is not None:
        get_run_logger().warning(
            "run %s of %s had stopped without finishing (process %s on %s): took over its "
            "lock", stale.run_id, run.module, stale.pid, stale.host)


def release_run_lock(run) -> None:
    """Let the next run of the module start (after the report, or after a failure)."""
    if not run.dry_run:
        run.runtime().store.release_run_lock(run.module, run.run_id)


def abandon(run, exc: BaseException) -> None:
    """Close the history row of a run that stopped on an error (it must not stay 'running')."""
    message = f"{type(exc).__name__}: {exc}"
    run.runtime().store.finish_run(run.run_id, "failed", message=message[:2000])


def push_all(run, plan) -> list[dict]:
    """Push the plan: Books first for rows bound there, then CRM (links its rows too).

    Pairs with nothing to write are linked first: after a crash between a create and its
    link, the rerun finds the record by the stored id, and only the link is left to store.
    """
    books_rows, crm_rows = rows_for(plan, "books"), rows_for(plan, "crm")
    if books_rows or crm_rows:
        assert_currency_unchanged(run)
    link_pairs(run, pairs_to_link(plan))
    inline = inline_by_parent(plan)
    progress = Progress(run.module, len(books_rows) + len(crm_rows))
    outcomes: list[dict] = []
    for batch in batches(books_rows, BOOKS_BATCH):
        parents = dict.fromkeys(r.get("crm_id") for r in batch)
        outcomes += push_books(run, batch, [c for p in parents for c in inline.get(p, [])])
        progress.advance(len(batch))
    books_done = [o for o in outcomes if o["side"] == "books"]
    for batch in batches(crm_rows, CRM_BATCH):
        outcomes += push_crm(run, batch, books_done)
        progress.advance(len(batch))
    progress.done()
    return outcomes


def inline_by_parent(plan) -> dict:
    """{parent CRM id: its plan rows created inside the parent (persons)}, in plan order.

    Grouped once: filtering every inline row for every batch was quadratic (about 5·10⁹ steps
    for 50,000 customers with 100,000 contacts, issue 8's benchmark)."""
    out: dict = {}
    for row in plan.to_dict("records") if not plan.empty else []:
        if row.get("inline") is True:
            out.setdefault(row["parent_crm_id"], []).append(row)
    return out


def finish(summary: dict):
    """A run with failed records ends Failed, so the run list shows it is not fully synced."""
    failed = sum(side["failed"] for side in summary["counts"].values())
    if failed:
        message = (f"{failed} record(s) failed: see the failures artifact, fix them at the "
                   "source, then retry")
        get_run_logger().warning(message)
        return Failed(message=message, data=RecordsFailed(message, summary))
    return Completed(message="all records synced", data=summary)
