"""Transactions (F14) as a Prefect flow: start → fetch → plan → push → report.

CRM quotes, sales orders, invoices and purchase orders become Books estimates, sales orders,
invoices and purchase orders (CRM → Books), for customers, vendors and items that are already
linked. Started by the event receiver for the records of a CRM notification (`crm_module` +
`crm_ids`), and by the schedule as a catch-up over every record changed since the cursor.
"""

from __future__ import annotations

from prefect import flow
from prefect.states import Completed

from flows.pipeline import abandon, finish
from tasks.transactions import (
    fetch_transactions,
    plan_transactions,
    push_transactions,
    report_transactions,
    start_transactions,
)


@flow(name="sync-transactions", log_prints=False)
def sync_transactions(dry_run: bool = False, org_id: str | None = None,
                      crm_module: str | None = None, crm_ids: list[str] | None = None):
    """Sync CRM transactions into Books: `crm_ids` of `crm_module` (events), or every record
    changed since the last run; `dry_run` only plans (B1)."""
    only = crm_module if crm_ids else None
    run = start_transactions(dry_run, org_id, only, catch_up=not crm_ids)
    if run is None:
        return Completed(message="transactions are off (or this module is not synced): run "
                                 "`crmbooks configure transactions --enable`",
                         data={"state": "off", "run_id": None})
    try:
        fetched = fetch_transactions(run, crm_ids)
        plan = plan_transactions(run, fetched)
        outcomes = [] if dry_run else push_transactions(run, plan)
        summary = report_transactions(run, plan, outcomes, fetched)
    except BaseException as exc:
        abandon(run, exc)
        raise
    return finish(summary)
