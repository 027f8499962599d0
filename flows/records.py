"""Operator actions as flows, runnable from the Prefect UI with parameters (and the CLI).

Each chooses records, then runs the module's pipeline on exactly those (a targeted run):
retry failed records, fetch one customer or vendor from the CRM, import a CRM record found by
name. A targeted run never moves the cursors. Retried transactions and deals run through
their own flows (sync-transactions, sync-deal-triggers) as events of exactly those records.
"""

from __future__ import annotations

from prefect import flow

from crmbooks.operations import failed_targets, fetch_targets, look_up
from crmbooks.runtime import get_runtime
from crmbooks.sync.transactions import RESOURCE
from flows.deal_triggers import sync_deal_triggers
from flows.pipeline import run_pipeline
from flows.transactions import sync_transactions

MODULE_ORDER = ("customers", "vendors", "items")


@flow(name="retry-failed-records", persist_result=True)
def retry_failed_records(module: str | None = None, run_id: str | None = None,
                         record_keys: list[str] | None = None, org_id: str | None = None,
                         dry_run: bool = False):
    """Retry unresolved failures: of a run, of a module, or given record keys.

    A record fixed at its source syncs and its failure is resolved; one still broken stays
    failed with its reason (its attempts counter goes up); one the run's read by id finds
    deleted at its source is resolved with a note (crmbooks.operations.resolve_deleted), one
    unreadable for a transient error stays failed. Customers, vendors and items go
    first (transactions and deals need them linked), then transactions, then deals.
    """
    runtime = get_runtime(org_id)
    chosen = failed_targets(runtime.store, run_id=run_id, module=module,
                            record_keys=record_keys)
    runs = [run_pipeline(m, dry_run=dry_run, org_id=org_id, targets=chosen[m])
            for m in MODULE_ORDER if m in chosen]
    runs += [retry_transactions(source, ids, dry_run, org_id)
             for source, ids in chosen.get("transactions", {}).items()]
    if chosen.get("deals", {}).get("deals"):
        runs.append(sync_deal_triggers(deal_ids=chosen["deals"]["deals"], dry_run=dry_run,
                                       org_id=org_id, return_state=True))
    return runs


def retry_transactions(source: str, ids: list[str], dry_run: bool, org_id: str | None):
    """One targeted transactions run: CRM ids of a CRM module into Books, or Books ids of a
    Books resource into the CRM (the two halves of a transaction failure's key)."""
    direction = ({"crm_module": source, "crm_ids": ids} if source in RESOURCE else
                 {"books_resource": source, "books_ids": ids})
    return sync_transactions(dry_run=dry_run, org_id=org_id, return_state=True, **direction)


@flow(name="fetch-one", persist_result=True)
def fetch_one(kind: str = "customer", crm_id: str | None = None, name: str | None = None,
              org_id: str | None = None, dry_run: bool = False):
    """F20: refresh one customer or vendor from the CRM, by CRM id or exact name."""
    module, targets = fetch_targets(get_runtime(org_id), kind, crm_id=crm_id, name=name)
    return run_pipeline(module, dry_run=dry_run, org_id=org_id, targets=targets)


@flow(name="import-from-crm", persist_result=True)
def import_from_crm(name: str = "", where: str = "accounts", pick: int = 1,
                    org_id: str | None = None, dry_run: bool = False):
    """F26: find CRM records never imported by name and import the `pick`-th (1-based)."""
    if not name.strip():
        raise ValueError("give the name to look up in the CRM")
    found = [f for f in look_up(get_runtime(org_id), name, where) if not f.linked]
    if not 1 <= pick <= len(found):
        raise ValueError(f"{len(found)} CRM {where} named {name!r} were never imported; "
                         f"pick must be between 1 and {len(found)}")
    chosen = found[pick - 1]
    return run_pipeline(chosen.module, dry_run=dry_run, org_id=org_id,
                        targets={"crm": [chosen.crm_id]})
