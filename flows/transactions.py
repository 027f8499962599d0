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
from flows.pipeline import run_module
from tasks.policy import flow_options


@flow(**flow_options("sync-transactions"))
def sync_transactions(dry_run: bool = False, org_id: str | None = None,
                      crm_module: str | None = None, crm_ids: list[str] | None = None,
                      books_resource: str | None = None, books_ids: list[str] | None = None,
                      connection: str = "default", exclusive: bool = False):
    """Sync transactions: `crm_ids` of `crm_module` into Books (CRM events), `books_ids` of
    `books_resource` into the CRM (Books webhooks), or, given neither, every record changed
    on either side since the last run; `dry_run` only plans."""
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
