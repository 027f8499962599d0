"""Operator actions as flows, runnable from the Prefect UI with parameters (and the CLI).

Each chooses records, then runs the module's pipeline on exactly those (a targeted run):
retry failed records, fetch one customer or vendor from the CRM, import a CRM record found by
name. A targeted run never moves the cursors.
"""

from __future__ import annotations

from prefect import flow

from crmbooks.operations import RETRY_MODULES, failed_targets, fetch_targets, look_up
from crmbooks.runtime import get_runtime, open_store
from flows.pipeline import run_module


@flow(name="retry-failed-records", persist_result=True)
def retry_failed_records(module: str | None = None, run_id: str | None = None,
                         record_keys: list[str] | None = None, org_id: str | None = None,
                         dry_run: bool = False):
    """Retry unresolved failures: of a run, of a module, or given record keys; of one Books
    organization (`org_id`) or, by default, of every one.

    Each failure is retried in its own organization, by a run of that organization, which
    resolves only that organization's failures. A record fixed at its source syncs and its
    failure is resolved; one still broken stays failed with its reason (its attempts
    counter goes up); one the run's read by id finds deleted at its source is resolved
    with a note (the report does it), one unreadable for a transient error stays failed.
    Customers, vendors and items go first (transactions and deals need them linked), then
    transactions, then deals.
    """
    chosen = failed_targets(open_store(), run_id=run_id, module=module,
                            record_keys=record_keys, org_id=org_id)
    return [run_module(m, dry_run=dry_run, org_id=org, targets=targets[m])
            for org, targets in chosen.items() for m in RETRY_MODULES if m in targets]


@flow(name="fetch-one", persist_result=True)
def fetch_one(kind: str = "customer", crm_id: str | None = None, name: str | None = None,
              org_id: str | None = None, dry_run: bool = False):
    """Refresh one customer or vendor from the CRM, by CRM id or exact name."""
    module, targets = fetch_targets(get_runtime(org_id), kind, crm_id=crm_id, name=name)
    return run_module(module, dry_run=dry_run, org_id=org_id, targets=targets)


@flow(name="import-from-crm", persist_result=True)
def import_from_crm(name: str = "", where: str = "accounts", pick: int = 1,
                    org_id: str | None = None, dry_run: bool = False):
    """Find CRM records never imported by name and import the `pick`-th (1-based)."""
    if not name.strip():
        raise ValueError("give the name to look up in the CRM")
    found = [f for f in look_up(get_runtime(org_id), name, where) if not f.linked]
    if not 1 <= pick <= len(found):
        raise ValueError(f"{len(found)} CRM {where} named {name!r} were never imported; "
                         f"pick must be between 1 and {len(found)}")
    chosen = found[pick - 1]
    return run_module(chosen.module, dry_run=dry_run, org_id=org_id,
                        targets={"crm": [chosen.crm_id]})
