"""The vendors module as a Prefect flow over the one pipeline (flows/pipeline.py)."""

from __future__ import annotations

from prefect import flow

from flows.fleet import org_slot
from flows.forms import BooksIds, CrmIds
from flows.names import run_name
from flows.pipeline import record_targets, run_module
from tasks.policy import flow_options


@flow(**flow_options("sync-vendors"), flow_run_name=run_name("vendors"))
def sync_vendors(dry_run: bool = False, org_id: str | None = None,
                 connection: str = "default", exclusive: bool = False,
                 crm_ids: CrmIds = None, books_ids: BooksIds = None,
                 full: bool = False):
    """Sync vendors between Zoho CRM and Zoho Books.

    Args:
        dry_run: Only plan: show what would change, write nothing.
        full: Read every record, not only those changed since the last run, and write
            those whose mapped values differ (after a settings change, say).
        org_id: Books organization id; empty means the primary one (an extra one syncs CRM
            to Books only).
        connection: The connection (its credentials and organization) to sync, as a fleet
            names it; "default" for a single organization.
        exclusive: Hold the organization's concurrency slot (sync-org-<org>) for the whole
            run, so its other modules wait instead of sharing its API budget.
        crm_ids: Sync only these CRM records (an event's), leaving the cursors alone;
            empty for a whole run.
        books_ids: Sync only these Books records (an event's), leaving the cursors alone;
            empty for a whole run.
    """
    with org_slot(org_id, connection, exclusive):
        return run_module("vendors", dry_run=dry_run, org_id=org_id, connection=connection,
                          full=full,
                          targets=record_targets(crm_ids, books_ids))
