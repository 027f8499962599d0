"""Deal triggers (F15–F17) as a Prefect flow: start → fetch deals → plan → push → report.

Started with `deal_ids` by the event receiver (`crmbooks webhook`) within seconds of a deal
change, and without them by the schedule as a catch-up over every deal modified since the
cursor. Both read the deals as they are now, so a repeated, late or reordered event plans
nothing new; writes are upserts keyed by deal id and type. Like every module run, a live run
holds the store's run lock of module "deals" (a second one at once is refused with
RunInProgress, which the event receiver requeues); a dry run takes none.
"""

from __future__ import annotations

from prefect import flow
from prefect.states import Completed

from flows.pipeline import abandon, finish, hold_run_lock, release_run_lock
from tasks.triggers import (
    fetch_deals,
    plan_triggers,
    push_triggers,
    report_triggers,
    start_triggers,
    sync_customers_first,
)


@flow(name="sync-deal-triggers", log_prints=False)
def sync_deal_triggers(deal_ids: list[str] | None = None, dry_run: bool = False,
                       org_id: str | None = None):
    """Apply the deal triggers to `deal_ids` (events), or to every deal changed since the
    last catch-up; `dry_run` only plans (B1)."""
    run = start_triggers(dry_run, org_id, catch_up=not deal_ids)
    if run is None:
        return Completed(message="deal triggers are off: run `crmbooks configure deals`",
                         data={"state": "off", "run_id": None})
    hold_run_lock(run)
    try:
        deals = fetch_deals(run, deal_ids)
        steps = plan_triggers(run, deals)
        missing = sorted({s["missing_customer"] for s in steps if s.get("missing_customer")})
        if missing and not dry_run and sync_customers_first(run, missing):
            steps = plan_triggers(run, deals)  # with the customers just linked
        outcomes = [] if dry_run else push_triggers(run, steps)
        summary = report_triggers(run, steps, outcomes, deals)
    except BaseException as exc:
        abandon(run, exc)
        raise
    finally:
        release_run_lock(run)
    return finish(summary)
