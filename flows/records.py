"""Operator actions as flows, runnable from the Prefect UI with parameters (and the CLI).

Each chooses records, then runs the module's pipeline on exactly those (a targeted run):
retry failed records, fetch one customer or vendor from the CRM, import a CRM record found by
name. A targeted run never moves the cursors.
"""

from __future__ import annotations

from prefect import flow

from crmbooks.operations import RETRY_MODULES, failed_targets, fetch_targets, look_up
from crmbooks.runtime import get_runtime, open_store
from flows.forms import FetchKind, LookupWhere, Module, RecordKeys
from flows.names import run_name
from flows.pipeline import run_module


@flow(name="retry-failed-records", persist_result=True,
      flow_run_name=run_name(lambda p: p.get("module") or "failed records", retry=True))
def retry_failed_records(module: Module | None = None, run_id: str | None = None,
                         record_keys: RecordKeys = None, org_id: str | None = None,
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

    Args:
        module: Retry the unresolved failures of this module; empty for any module.
        run_id: Retry the failures of this run: its id in `crmbooks history`, or its
            Prefect flow-run id; empty for any run.
        record_keys: Retry only these records, by the key `crmbooks history --failures`
            shows; empty for all that the other fields choose.
        org_id: Retry only this Books organization's failures; empty retries those of every
            organization (the primary one first), each in its own.
        dry_run: Only plan: show what would change, write nothing.
    """
    chosen = failed_targets(open_store(), run_id=run_id, module=module,
                            record_keys=record_keys, org_id=org_id)
    return [run_module(m, dry_run=dry_run, org_id=org, targets=targets[m])
            for org, targets in chosen.items() for m in RETRY_MODULES if m in targets]


@flow(name="fetch-one", persist_result=True,
      flow_run_name=run_name(lambda p: f"fetch {p.get('kind') or 'customer'}"))
def fetch_one(kind: FetchKind = "customer", crm_id: str | None = None,
              name: str | None = None, org_id: str | None = None, dry_run: bool = False):
    """Refresh one customer or vendor from the CRM, by CRM id or exact name.

    Args:
        kind: What to refresh: a customer (CRM account or contact) or a vendor.
        crm_id: The CRM record id; give this or `name`.
        name: The record's exact name in the CRM; give this or `crm_id`.
        org_id: Books organization id; empty means the primary one.
        dry_run: Only plan: show what would change, write nothing.
    """
    module, targets = fetch_targets(get_runtime(org_id), kind, crm_id=crm_id, name=name)
    return run_module(module, dry_run=dry_run, org_id=org_id, targets=targets)


@flow(name="import-from-crm", persist_result=True,
      flow_run_name=run_name(lambda p: f"import from {p.get('where') or 'accounts'}"))
def import_from_crm(name: str = "", where: LookupWhere = "accounts", pick: int = 1,
                    org_id: str | None = None, dry_run: bool = False):
    """Find CRM records never imported by name and import the `pick`-th (1-based).

    Args:
        name: The name to look up in the CRM (an account's or vendor's name, a contact's
            first or last name).
        where: The CRM records to look in.
        pick: Which of the records found (never imported) to import, counting from 1, in
            the order `crmbooks search` lists them.
        org_id: Books organization id; empty means the primary one.
        dry_run: Only plan: show what would change, write nothing.
    """
    if not name.strip():
        raise ValueError("give the name to look up in the CRM")
    found = [f for f in look_up(get_runtime(org_id), name, where) if not f.linked]
    if not 1 <= pick <= len(found):
        raise ValueError(f"{len(found)} CRM {where} named {name!r} were never imported; "
                         f"pick must be between 1 and {len(found)}")
    chosen = found[pick - 1]
    return run_module(chosen.module, dry_run=dry_run, org_id=org_id,
                        targets={"crm": [chosen.crm_id]})


@flow(name="preview-settings", persist_result=True,
      flow_run_name=run_name(lambda p: f"preview {p.get('module') or 'settings'}"))
def preview_settings(module: Module, settings: dict, org_id: str | None = None):
    """Plan, as a dry run over every record, what a record module's settings not saved yet
    would do: what `crmbooks configure` says a change will do before it saves it.

    Args:
        module: customers, vendors or items.
        settings: The module's settings as they would be saved (every key).
        org_id: Books organization id; empty means the primary one.
    """
    return run_module(module, dry_run=True, org_id=org_id, preview=settings)
