"""The one pipeline every module runs — customers, vendors, items, transactions and deal
triggers — as a table of contents:

    start → lock → fetch → map → dedupe → plan → push → deletions → follow up → report

Each step is a Prefect task over whole batches (tasks/steps.py) that asks the module's family
what it means for that module (tasks/family.py). A dry run stops after the plan and only
reports it. A targeted run (an event, a retry, fetch one, import) syncs only the given
records and never moves the cursors.
"""

from __future__ import annotations

from flows.outcome_logs import install as one_line_outcomes
from tasks.deletions import deletions
from tasks.report import report
from tasks.run import finish, off, run_lock, start_run
from tasks.steps import (
    dedupe,
    fetch_books,
    fetch_crm,
    follow_up,
    keys_only,
    map_records,
    needs,
    plan_changes,
    push,
    then,
)

# Every process that runs a flow imports this module first: its logs then say a run's
# ordinary outcome (records failed, run refused) in one line.
one_line_outcomes()


def run_module(module: str, *, dry_run: bool = False, org_id: str | None = None,
               connection: str = "default", targets: dict[str, list[str]] | None = None,
               full: bool = False, preview: dict | None = None):
    """Sync one module (or only the `targets`); returns the run summary in a Prefect state.

    `full` reads every record, not only those changed since the cursors (a record is still
    written only where its mapped values differ); `preview` plans, as a dry run, settings
    not saved yet."""
    run = start_run(module, dry_run, org_id, targets, connection, full, preview)
    if run is None:
        return off(module)
    with run_lock(run):
        crm = fetch_crm(run)
        books = fetch_books(run)
        mapped = map_records(run, crm, books)
        found = dedupe(run, crm, books, mapped)
        plan = plan_changes(run, mapped, found)
        if sync_first(run, needs(run, plan)):
            plan = plan_changes(run, mapped, found, again=True)
        # The push and the report need the plan, not the records it came from: let them go
        # (the mapped ones, and the fetched ones but for their ids and stamps), so the push
        # runs in what the plan takes.
        del mapped, found
        crm, books = keys_only(run, crm), keys_only(run, books)
        outcomes = [] if dry_run else push(run, plan)
        outcomes, held = deletions(run, crm, books, outcomes)
        if held:  # the brake: kept as the run's message, said in its summary
            run = run.model_copy(update={"note": "; ".join(filter(None, (run.note, held)))})
        extra = {} if dry_run else follow_up(run, outcomes)
        summary = {**report(run, plan, outcomes, crm, books), **extra}
    # after the lock: the follow-up run may take another module's lock, never this one's
    sync_after(run, then(run, outcomes))
    return finish(summary)


def sync_first(run, wanted: dict[str, list[str]]) -> bool:
    """Sync the records of other modules the plan waits for (the customers of deals, say), as
    targeted runs; True if any ran. A refusal (paused, another run of that module) or a record
    that cannot be synced leaves the waiting records failing with their reason."""
    from prefect import get_run_logger

    ran = False
    for module, crm_ids in wanted.items():
        get_run_logger().info("syncing %d %s record(s) the plan needs first", len(crm_ids),
                              module)
        try:
            run_module(module, org_id=run.org_id or None, connection=run.connection,
                       targets={"crm": crm_ids})
        except Exception as exc:
            get_run_logger().warning("the %s records the plan needs could not be synced "
                                     "first: %s", module, exc)
            continue
        ran = True
    return ran


def sync_after(run, wanted: dict[str, dict[str, list[str]]]) -> None:
    """Targeted runs of other modules for what this run wrote (the transactions a deal
    trigger made, shown in the CRM by the transactions module). A module that is off does
    nothing; one that is refused or fails leaves the records to its own catch-up."""
    from prefect import get_run_logger

    for module, targets in wanted.items():
        try:
            run_module(module, org_id=run.org_id or None, connection=run.connection,
                       targets=targets)
        except Exception as exc:
            get_run_logger().warning("%s did not run for the records this run wrote (its "
                                     "catch-up will): %s", module, exc)


def record_targets(crm_ids: list[str] | None, books_ids: list[str] | None
                   ) -> dict[str, list[str]] | None:
    """The targets of a record module's run for these CRM and Books ids; None (every record
    changed since the cursors) when neither is given."""
    targets = {side: [str(i) for i in ids] for side, ids in (("crm", crm_ids),
                                                             ("books", books_ids)) if ids}
    return targets or None
