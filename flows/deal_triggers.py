"""Deal triggers as a Prefect flow over the one pipeline (flows/pipeline.py).

Started with `deal_ids` by the event receiver (`crmbooks webhook`) within seconds of a deal
change, and without them by the schedule as a catch-up over every deal modified since the
cursor. Both read the deals as they are now, so a repeated, late or reordered event plans
nothing new; writes are upserts keyed by deal id and type.
"""

from __future__ import annotations

from prefect import flow

from flows.fleet import org_slot
from flows.forms import CrmIds
from flows.names import run_name
from flows.pipeline import run_module
from tasks.policy import flow_options


@flow(**flow_options("sync-deal-triggers"), flow_run_name=run_name("deal triggers"))
def sync_deal_triggers(deal_ids: CrmIds = None, dry_run: bool = False,
                       org_id: str | None = None, connection: str = "default",
                       exclusive: bool = False):
    """Apply the deal triggers to the given deals (events), or to every deal changed since
    the last catch-up.

    Args:
        deal_ids: CRM deal ids to apply the triggers to; empty for the catch-up.
        dry_run: Only plan: show what would change, write nothing.
        org_id: Books organization id; empty means the primary one.
        connection: The connection (its credentials and organization) to sync, as a fleet
            names it; "default" for a single organization.
        exclusive: Hold the organization's concurrency slot (sync-org-<org>) for the whole
            run, so its other modules wait instead of sharing its API budget.
    """
    targets = {"crm": [str(i) for i in deal_ids]} if deal_ids else {}
    with org_slot(org_id, connection, exclusive):
        return run_module("deals", dry_run=dry_run, org_id=org_id, connection=connection,
                          targets=targets)
