"""Flow-run names that say what a run is: module, Books organization and what started it.

The runs list of the Prefect UI shows a run's name first; Prefect's own names
(`admirable-seriema`) say nothing. A flow's `flow_run_name` is a callable here, called as the
run starts (inside its flow-run context), so it can read the run's parameters and how it was
created:

    customers · 20099001 · schedule     a scheduled run
    customers · 20099001 · manual       from the CLI, the UI's Run button or a script
    customers · 20099001 · event        a CRM notification or Books webhook (record ids given)
    customers · 20099001 · sync now     a child run of `sync now`
    customers · 20099001 · retry        the retry of failed records, or the UI's Retry
"""

from __future__ import annotations

from collections.abc import Callable

SEPARATOR = " · "
#: Parameters that carry the record ids of an event: a run given them was started by one.
EVENT_PARAMETERS = ("crm_ids", "books_ids", "deal_ids", "figures_of")


def organization(org_id: str | None, connection: str = "default") -> str:
    """The Books organization a run syncs: its parameter, else the connection's primary one
    (read from the state store), else the connection's name when nothing is connected."""
    if org_id:
        return str(org_id)
    try:
        from crmbooks.runtime import open_store

        row = open_store().connection(connection)
    except Exception:  # noqa: BLE001 - a name must never stop a run; the run reports why
        row = None
    return str(row.books_org_id) if row is not None and row.books_org_id else connection


def started_by(parameters: dict, flow_run, retry: bool = False) -> str:
    """What started the run: schedule, event, sync now, retry or manual."""
    # The name is made before the run goes Running: a run count above zero means this flow
    # run ran before (the UI's Retry, a flow retry, a crashed run started again).
    if retry or (flow_run is not None and (flow_run.run_count or 0) > 0):
        return "retry"
    if any(parameters.get(name) for name in EVENT_PARAMETERS):
        return "event"
    if flow_run is not None and flow_run.parent_task_run_id is not None:
        return "sync now"
    if flow_run is not None and flow_run.auto_scheduled:
        return "schedule"
    return "manual"


def run_name(what: str | Callable[[dict], str], retry: bool = False) -> Callable[[], str]:
    """A `flow_run_name` callable: `what` (a module, or a function of the parameters giving
    it), the organization and what started the run, joined by " · "."""

    def name() -> str:
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        parameters = dict(context.parameters or {}) if context else {}
        flow_run = context.flow_run if context else None
        subject = what(parameters) if callable(what) else what
        org = organization(parameters.get("org_id"), parameters.get("connection") or "default")
        return SEPARATOR.join((subject, org, started_by(parameters, flow_run, retry)))

    return name
