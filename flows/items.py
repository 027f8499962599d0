"""The items module as a Prefect flow over the one pipeline (flows/pipeline.py)."""

from __future__ import annotations

from prefect import flow

from flows.fleet import org_slot
from flows.pipeline import record_targets, run_module
from tasks.policy import flow_options


@flow(**flow_options("sync-items"))
def sync_items(dry_run: bool = False, org_id: str | None = None,
               connection: str = "default", exclusive: bool = False,
               crm_ids: list[str] | None = None, books_ids: list[str] | None = None):
    """Sync items between Zoho CRM and Zoho Books; `dry_run` only plans.

    A fleet (docs/scaling.md) names the organization's `connection`; `exclusive` holds its
    global concurrency limit sync-org-<org> for the whole run. `crm_ids` / `books_ids`
    sync only those records (the event receiver's runs), leaving the cursors alone.
    """
    with org_slot(org_id, connection, exclusive):
        return run_module("items", dry_run=dry_run, org_id=org_id, connection=connection,
                          targets=record_targets(crm_ids, books_ids))
