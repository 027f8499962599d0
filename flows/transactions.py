"""Transactions (F14) as a Prefect flow, both ways: start → (CRM → Books: fetch → plan → push)
→ (Books → CRM: fetch → plan → push) → report.

CRM quotes, sales orders, invoices and purchase orders become Books estimates, sales orders,
invoices and purchase orders; Books status, totals, custom fields and new transactions of
linked customers/vendors come back to the CRM. Started by the event receiver for the records
of a CRM notification (`crm_module` + `crm_ids`: CRM → Books only) or of a Books webhook
(`books_resource` + `books_ids`: Books → CRM only), both leaving the cursors alone; and by the
schedule as the catch-up both ways over every record changed since the cursors. One run at a
time: the run takes the store's run lock (a dry run, which writes nothing, takes none).
"""

from __future__ import annotations

from prefect import flow
from prefect.states import Completed

from crmbooks.sync.transactions import CRM_MODULE
from flows.pipeline import abandon, finish, hold_run_lock, release_run_lock
from tasks.transactions import (
    fetch_transactions,
    plan_transactions,
    push_transactions,
    report_transactions,
    start_transactions,
)
from tasks.transactions_books import (
    fetch_books_transactions,
    plan_books_transactions,
    push_books_transactions,
)


@flow(name="sync-transactions", log_prints=False)
def sync_transactions(dry_run: bool = False, org_id: str | None = None,
                      crm_module: str | None = None, crm_ids: list[str] | None = None,
                      books_resource: str | None = None, books_ids: list[str] | None = None):
    """Sync transactions: `crm_ids` of `crm_module` into Books (CRM events), `books_ids` of
    `books_resource` into the CRM (Books webhooks), or, given neither, every record changed
    on either side since the last run; `dry_run` only plans (B1)."""
    if books_ids and books_resource not in CRM_MODULE:
        raise ValueError(f"books_resource must be one of {', '.join(CRM_MODULE)}, got "
                         f"{books_resource!r}")
    event = bool(crm_ids or books_ids)
    only = crm_module if crm_ids else CRM_MODULE[books_resource] if books_ids else None
    run = start_transactions(dry_run, org_id, only, catch_up=not event,
                             to_books=not books_ids, to_crm=not crm_ids)
    if run is None:
        return Completed(message="transactions are off (or this module is not synced): run "
                                 "`crmbooks configure transactions --enable`",
                         data={"state": "off", "run_id": None})
    hold_run_lock(run)
    try:
        fetched = fetch_transactions(run, crm_ids)
        plan = plan_transactions(run, fetched)
        outcomes = [] if dry_run else push_transactions(run, plan)

        books_fetched = fetch_books_transactions(run, books_resource, books_ids, plan,
                                                 outcomes)
        back_plan = plan_books_transactions(run, books_fetched)
        back = [] if dry_run else push_books_transactions(run, back_plan)

        summary = report_transactions(run, plan + back_plan, outcomes + back, fetched,
                                      books_fetched)
    except BaseException as exc:
        abandon(run, exc)
        raise
    finally:
        release_run_lock(run)
    return finish(summary)
