"""Operator flows: instant sync, a manual run of everything or of chosen modules.

`sync_now` runs the module flows in dependency order as subflows of one flow run, so the
Prefect UI shows one "sync now" run with a child run per module (each with its own artifacts),
and its "Custom run" form offers the two typed parameters. It is deployed as
`sync-now/on-demand` (prefect.yaml, deployments/serve.py) with no schedule.

A paused or disabled integration refuses: the first refusal stops the whole run. A module
whose records partly failed, or that could not start, does not stop the modules after it; the
run then ends Failed, naming them.
"""

from __future__ import annotations

import importlib

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from flows.forms import SyncModule
from flows.names import run_name

#: Dependency order of `all`, as `crmbooks sync` runs it. Transactions and deal triggers are
#: not among them: they have flows of their own (flows/transactions.py, flows/deal_triggers.py).
MODULE_ORDER: tuple[str, ...] = ("customers", "vendors", "items")


def module_flow(module: str):
    """The flow of one module: `flows.<module>.sync_<module>`."""
    return getattr(importlib.import_module(f"flows.{module}"), f"sync_{module}")


def wanted_modules(modules: list[str]) -> list[str]:
    """The modules to run, in dependency order; `all` (or nothing) means every module."""
    names = [m.strip().lower() for m in modules or [] if m and m.strip()]
    if not names or "all" in names:
        return list(MODULE_ORDER)
    unknown = sorted(set(names) - set(MODULE_ORDER))
    if unknown:
        raise ValueError(f"unknown module(s) {', '.join(unknown)}: use "
                         f"{', '.join(MODULE_ORDER)} or all")
    return [m for m in MODULE_ORDER if m in names]


@flow(name="sync-now", log_prints=False,
      flow_run_name=run_name(lambda p: "sync now: " + ", ".join(p.get("modules") or ["all"])))
def sync_now(modules: list[SyncModule] = ["all"], dry_run: bool = False,  # noqa: B006 (UI default)
             org_id: str | None = None):
    """Sync now: the chosen modules in dependency order, one child run each.

    Args:
        modules: The modules to sync (customers, vendors, items), or all of them.
        dry_run: Only plan: show what would change, write nothing.
        org_id: Books organization id; empty means the primary one (an extra one syncs CRM
            to Books only).
    """
    from crmbooks.sync.lifecycle import RecordsFailed, RunRefused

    logger = get_run_logger()
    results: dict[str, dict] = {}
    for module in wanted_modules(modules):
        state = module_flow(module)(dry_run=dry_run, org_id=org_id, return_state=True)
        outcome = state.result(raise_on_failure=False)
        if state.is_completed():
            results[module] = {"state": "completed", "summary": outcome}
        elif isinstance(outcome, RecordsFailed):
            results[module] = {"state": "completed_with_failures", "summary": outcome.summary}
        elif isinstance(outcome, RunRefused):
            logger.warning("%s: %s", module, outcome)
            return Failed(message=str(outcome), data=results)
        else:
            logger.error("%s failed: %s", module, outcome)
            results[module] = {"state": "failed", "error": str(outcome)}
    bad = [m for m, r in results.items() if r["state"] != "completed"]
    if bad:
        return Failed(message=f"not fully synced: {', '.join(bad)} (see their runs)",
                      data=results)
    return Completed(message=f"synced {', '.join(results)}", data=results)
