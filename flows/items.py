"""The items module as a Prefect flow over the one pipeline (flows/pipeline.py)."""

from __future__ import annotations

from prefect import flow

from flows.fleet import org_slot
from flows.pipeline import run_module
from tasks.policy import flow_options


@flow(**flow_options("sync-items"))
def sync_items(dry_run: bool = False, org_id: str | None = None,
               connection: str = "default", exclusive: bool = False):
    """Sync items between Zoho CRM and Zoho Books; `dry_run` only plans.

    A fleet (docs/scaling.md) names the organization's `connection`; `exclusive` holds its
    global concurrency limit sync-org-<org> for the whole run.
    """
    with org_slot(org_id, connection, exclusive):
        return run_module("items", dry_run=dry_run, org_id=org_id, connection=connection)
