"""The items module (see mission F5–F11): a Prefect flow over the shared pipeline."""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.fleet import org_slot
from flows.pipeline import run_pipeline


@flow(name="sync-items", task_runner=ThreadPoolTaskRunner(max_workers=4),
      log_prints=False, persist_result=True)
def sync_items(dry_run: bool = False, org_id: str | None = None,
               connection: str = "default", exclusive: bool = False):
    """Sync items between Zoho CRM and Zoho Books; `dry_run` only plans (B1).

    A fleet (docs/scaling.md) names the organization's `connection`; `exclusive` holds its
    global concurrency limit sync-org-<org> for the whole run.
    """
    with org_slot(org_id, connection, exclusive):
        return run_pipeline("items", dry_run=dry_run, org_id=org_id, connection=connection)
