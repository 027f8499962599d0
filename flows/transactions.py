"""Transactions as a Prefect flow over the one pipeline (flows/pipeline.py): every document
type of mappings/transactions.yaml, both ways.

Started by the event receiver for the records of a CRM notification (`crm_module` +
`crm_ids`: CRM → Books only) or of a Books webhook (`books_resource` + `books_ids`: Books →
CRM only), both leaving the cursors alone; and by the schedule as the catch-up both ways over
every record changed since the cursors.
"""

from __future__ import annotations

from prefect import flow

from crmbooks.sync.registry import document_types
from flows.fleet import org_slot
from flows.forms import BooksIds, CrmIds
from flows.names import run_name
from flows.pipeline import run_module
from tasks.policy import flow_options


@flow(**flow_options("sync-transactions"), flow_run_name=run_name("transactions"))
def sync_transactions(dry_run: bool = False, org_id: str | None = None,
                      crm_module: str | None = None, crm_ids: CrmIds = None,
                      books_resource: str | None = None, books_ids: BooksIds = None,
                      connection: str = "default", exclusive: bool = False):
    """Sync transactions: the CRM records of an event into Books, the Books records of a
    webhook into the CRM, or, given neither, every record changed on either side since the
    last run.

    Args:
        dry_run: Only plan: show what would change, write nothing.
        org_id: Books organization id; empty means the primary one.
        crm_module: The CRM module of `crm_ids`, as a CRM notification names it (e.g.
            Quotes, Sales_Orders, Invoices).
        crm_ids: CRM record ids of `crm_module` to sync into Books; empty for the catch-up.
        books_resource: The Books document type of `books_ids` (e.g. estimates,
            salesorders, invoices).
        books_ids: Books record ids of `books_resource` to sync into the CRM; empty for the
            catch-up.
        connection: The connection (its credentials and organization) to sync, as a fleet
            names it; "default" for a single organization.
        exclusive: Hold the organization's concurrency slot (sync-org-<org>) for the whole
            run, so its other modules wait instead of sharing its API budget.
    """
    targets = {}
    if crm_ids:
        targets[f"crm:{crm_module}"] = crm_ids
    if books_ids:
        if books_resource not in document_types():
            raise ValueError(f"books_resource must be one of {', '.join(document_types())}, "
                             f"got {books_resource!r}")
        targets[f"books:{books_resource}"] = books_ids
    with org_slot(org_id, connection, exclusive):
        return run_module("transactions", dry_run=dry_run, org_id=org_id,
                          connection=connection, targets=targets)
