"""Operator flows: instant sync, a manual run of everything or of chosen modules.

`sync_now` runs the module flows in dependency order as subflows of one flow run — customers,
vendors, items, transactions, deal triggers — so the Prefect UI shows one "sync now" run with
a child run per module (each with its own artifacts), and its "Custom run" form offers the
typed parameters. It is deployed as `sync-now/on-demand` (prefect.yaml, deployments/serve.py)
with no schedule.

A paused or disabled integration refuses: the first refusal stops the whole run. A module
that is turned off (transactions not enabled, deal triggers not configured) is skipped with
its reason and is no failure. A module whose records partly failed, or that could not start,
does not stop the modules after it; the run then ends Failed, naming them.
"""

from __future__ import annotations

import importlib

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from crmbooks.sync.registry import DEALS, MODULE_ORDER, modules_to_sync
from flows.forms import SyncModule
from flows.names import run_name

__all__ = ["MODULE_ORDER", "module_flow", "wanted_modules", "sync_now"]

#: The flow of each module whose file is not named after it.
_FLOW_OF = {DEALS: ("deal_triggers", "sync_deal_triggers")}


def module_flow(module: str):
    """The flow of one module: `flows.<module>.sync_<module>` (deals: the deal triggers')."""
    where, name = _FLOW_OF.get(module, (module, f"sync_{module}"))
    return getattr(importlib.import_module(f"flows.{where}"), name)


def wanted_modules(modules: list[str]) -> list[str]:
    """The modules to run, in dependency order; `all` (or nothing) means every module, and an
    alias (deal-triggers) its module. ValueError naming the valid names otherwise."""
    return modules_to_sync(modules)


@flow(name="sync-now", log_prints=False,
      flow_run_name=run_name(lambda p: "sync now: " + ", ".join(p.get("modules") or ["all"])))
def sync_now(modules: list[SyncModule] = ["all"], dry_run: bool = False,  # noqa: B006 (UI default)
             org_id: str | None = None):
    """Sync now: the chosen modules in dependency order, one child run each.

    Args:
        modules: The modules to sync (customers, vendors, items, transactions, deals: the
            deal triggers), or all of them. One that is turned off is skipped, not failed.
        dry_run: Only plan: show what would change, write nothing.
        org_id: Books organization id; empty means the primary one (an extra one syncs CRM
            to Books only).
    """
    from crmbooks.runtime import open_store
    from crmbooks.sync.lifecycle import RecordsFailed, RunRefused
    from tasks.run import off_reason

    logger = get_run_logger()
    results: dict[str, dict] = {}
    store = open_store()
    for module in wanted_modules(modules):
        reason = off_reason(store, module, org_id or None)
        if reason:  # turned off (not enabled, not configured): said, no child run, no failure
            logger.info("%s skipped: %s", module, reason)
            results[module] = {"state": "skipped", "reason": reason}
            continue
        state = module_flow(module)(dry_run=dry_run, org_id=org_id, return_state=True)
        outcome = state.result(raise_on_failure=False)
        if state.is_completed() and (outcome or {}).get("state") == "off":
            # turned off between the check and the run's start
            results[module] = {"state": "skipped", "reason": state.message}
        elif state.is_completed():
            results[module] = {"state": "completed", "summary": outcome}
        elif isinstance(outcome, RecordsFailed):
            results[module] = {"state": "completed_with_failures", "summary": outcome.summary}
        elif isinstance(outcome, RunRefused):
            logger.warning("%s: %s", module, outcome)
            return Failed(message=str(outcome), data=results)
        else:
            logger.error("%s failed: %s", module, outcome)
            results[module] = {"state": "failed", "error": str(outcome)}
    bad = [m for m, r in results.items() if r["state"] not in ("completed", "skipped")]
    if bad:
        return Failed(message=f"not fully synced: {', '.join(bad)} (see their runs)",
                      data=results)
    synced = [m for m, r in results.items() if r["state"] == "completed"]
    skipped = [f"{m} ({r['reason']})" for m, r in results.items() if r["state"] == "skipped"]
    return Completed(message="; ".join(filter(None, (
        f"synced {', '.join(synced)}" if synced else "",
        f"skipped, turned off: {', '.join(skipped)}" if skipped else ""))), data=results)
