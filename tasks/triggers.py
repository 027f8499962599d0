"""Deal-trigger tasks (F15–F17): start, fetch deals, plan, push, report.

The plan is :mod:`crmbooks.sync.triggers` (pure). Writes are exactly-once: a triggered
transaction is created by an upsert on its unique ``cf_crm_id`` custom field keyed by the deal
id and type (``<deal id>:estimate`` / ``<deal id>:invoice``), and its link (module ``deals``,
made_by ``trigger``) is stored right after. A deal's links hold the status the trigger left the
transaction in and the content it wrote, so a later run knows whether a person changed it in
Books (then nothing more is triggered) and whether the deal changed since.

Links of deals: one row per (deal, transaction) with ``crm_id = <deal>:<resource>:<books id>``
(a deal may link to several transactions, F27), ``parent_crm_id`` the deal id, ``kind`` the
Books resource and ``books_id`` the transaction (a transaction belongs to one deal).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.context import get_run_context
from pydantic import BaseModel

from crmbooks.connectors.errors import RetriableError
from crmbooks.metadata import _cached, _is_unique_key, crm_field_metadata
from crmbooks.operations import resolve_deleted
from crmbooks.runtime import Runtime, get_runtime
from crmbooks.settings import SettingsError, parse_module_settings
from crmbooks.sync.triggers import (
    CRM_ESTIMATE_FIELD,
    DEAL_FIELDS,
    NUMBER,
    DealContext,
    Existing,
    StageError,
    Stages,
    plan_deal,
    upsert_key,
)
from tasks.report import COUNT_KEYS, SIDES
from tasks.start import active_settings

MODULE = "deals"
UNIQUE_FIELD = "cf_crm_id"


class TriggerRun(BaseModel):
    """One deal-trigger run: JSON-able, nothing secret (like tasks.context.RunContext)."""

    run_id: str
    org_id: str
    dry_run: bool
    catch_up: bool
    settings: dict
    customers: dict
    module: str = MODULE  # the run lock's key (flows.pipeline.hold_run_lock)
    stages: list[tuple[str, int | None, str | None]]
    currencies: list[str]
    deal_fields: list[str]
    base_currency: str | None = None
    cursor: datetime | None = None
    calls_before: dict[str, int] = {}

    def runtime(self) -> Runtime:
        """The store and clients of this run's organization."""
        return get_runtime(self.org_id or None)

    def context(self, customer_links: dict) -> DealContext:
        """What :func:`plan_deal` needs besides the deal."""
        s = self.settings
        return DealContext(mode=s["mode"], stages=Stages(self.stages),
                           create_stage=s.get("create_stage"),
                           accept_stage=s.get("accept_stage"),
                           invoice_on_accept=bool(s.get("invoice_on_accept")),
                           customers=self.customers, customer_links=customer_links,
                           currencies=frozenset(self.currencies),
                           base_currency=self.base_currency)


def record_key(deal_id: str) -> str:
    """History and failure key of a deal."""
    return f"deal:{deal_id}"


def link_crm_id(deal_id: str, resource: str, books_id: str) -> str:
    """The link's crm_id for one (deal, transaction) pair."""
    return f"{deal_id}:{resource}:{books_id}"


def first_cursor(store) -> datetime | None:
    """Where catch-up starts before its first run: when deal triggers were first turned on.

    Deals last changed before triggers existed trigger nothing (they did not *reach* a stage
    while triggers were on); the operator runs them explicitly with deal ids if wanted.
    """
    enabled = [v for v in store.settings_history(MODULE) if (v.settings or {}).get("enabled")]
    if not enabled:
        return None
    first = min(v.created_at for v in enabled)
    first = first if first.tzinfo else first.replace(tzinfo=UTC)
    return first.replace(microsecond=0)


@task(name="start-deal-triggers")
def start_triggers(dry_run: bool, org_id: str | None, catch_up: bool) -> TriggerRun | None:
    """Check the connection and settings, read stage metadata; None when triggers are off."""
    runtime = get_runtime(org_id)
    store, logger = runtime.store, get_run_logger()
    connection, version, settings = active_settings(runtime, MODULE)
    if not settings.enabled:
        logger.info("deal triggers are off: `crmbooks configure deals --mode quote|invoice …`")
        return None
    stages = [tuple(s) for s in _cached(runtime, "crm-deal-stages", runtime.crm.deal_stages)]
    book = Stages(stages)
    try:
        for name in ("create_stage", "accept_stage"):
            if getattr(settings, name):
                book.require(getattr(settings, name), name)
    except StageError as exc:
        raise SettingsError(f"{exc}; run `crmbooks configure deals` again") from None
    resources = ["estimates"] if settings.mode == "quote" else []
    if settings.mode == "invoice" or settings.invoice_on_accept:
        resources.append("invoices")
    for resource in resources:
        if not _is_unique_key(runtime, resource, UNIQUE_FIELD):  # a probe that writes nothing
            raise SettingsError(f"Books {resource} have no unique custom field {UNIQUE_FIELD}: "
                                "create it (Settings > Preferences > "
                                f"{resource.title()} > Field Customization, unique) so "
                                "triggers can write exactly once")
    currencies = _cached(runtime, "books-currencies",
                         lambda: [c.get("currency_code") for c in runtime.books.currencies()])
    present = {f.get("api_name") for f in crm_field_metadata(runtime, "Deals")}
    deal_fields = [f for f in DEAL_FIELDS if f in present]  # Currency: multi-currency only
    customers = (store.active_settings("customers") or (None, {}))[1]
    customers = parse_module_settings("customers", customers).model_dump(mode="json")
    flow_run = getattr(get_run_context(), "task_run", None)
    run_id = store.start_run(MODULE, dry_run=dry_run, settings_version=version,
                             flow_run_id=str(flow_run.flow_run_id) if flow_run else None)
    books_org = connection.books_org or {}
    cursor = store.cursor(MODULE, "crm") or first_cursor(store) if catch_up else None
    logger.info("run %s of deal triggers (%s mode, %s)", run_id, settings.mode,
                "catch-up" if catch_up else "events")
    return TriggerRun(run_id=run_id, org_id=runtime.org_id, dry_run=dry_run, catch_up=catch_up,
                      settings=settings.model_dump(mode="json"), customers=customers,
                      stages=stages, currencies=[c for c in currencies if c],
                      deal_fields=deal_fields,
                      base_currency=books_org.get("currency"), cursor=cursor,
                      calls_before=runtime.api_calls())


@task(name="fetch-deals")
def fetch_deals(run: TriggerRun, deal_ids: list[str] | None) -> list[dict]:
    """The deals as they are now: by id (events) or changed since the cursor (catch-up)."""
    crm = run.runtime().crm
    if deal_ids:
        deals, gone = [], []
        for deal_id in dict.fromkeys(str(i) for i in deal_ids):
            deal = crm.get_record("Deals", deal_id, run.deal_fields)
            if deal is None:  # not found (a transient error raises)
                get_run_logger().info("deal %s no longer exists: nothing to trigger", deal_id)
                gone.append(f"deal:{deal_id}")
                continue
            deals.append(deal)
        resolve_deleted(run.runtime().store, MODULE, gone, "the CRM", run.dry_run)
        return deals
    deals: dict[str, dict] = {}
    for page in crm.iter_records("Deals", run.deal_fields, modified_since=run.cursor,
                                 sort_by="Modified_Time"):
        for deal in page:
            deals[str(deal["id"])] = deal  # the boundary may repeat: keep each deal once
    return list(deals.values())


def trigger_links(store, deal_ids: set[str]) -> pd.DataFrame:
    """Links the trigger made for these deals."""
    links = store.links(MODULE)
    if links.empty:
        return links
    return links[links["parent_crm_id"].isin(deal_ids) & (links["made_by"] == "trigger")]


def customer_links(store) -> dict[str, dict[str, str]]:
    """kind → CRM id → Books customer id, from the customers links."""
    links = store.links("customers")
    out: dict[str, dict[str, str]] = {"accounts": {}, "contacts": {}}
    for row in links.to_dict("records"):
        if row["kind"] in out:
            out[row["kind"]][str(row["crm_id"])] = str(row["books_id"])
    return out


@task(name="plan-deal-triggers")
def plan_triggers(run: TriggerRun, deals: list[dict]) -> list[dict]:
    """Every deal's steps (pure plan over the deal, its transactions now, and the links)."""
    runtime = run.runtime()
    if any(not Stages(run.stages).get(d.get("Stage")) for d in deals):
        # A stage newer than the cached metadata: read the stages once more before failing.
        run = run.model_copy(update={"stages": [tuple(s) for s in runtime.crm.deal_stages()]})
    ctx = run.context(customer_links(runtime.store))
    links = trigger_links(runtime.store, {str(d["id"]) for d in deals})
    existing: dict[str, dict[str, Existing]] = {}
    for link in links.to_dict("records"):
        record = runtime.books.get(link["kind"], link["books_id"])
        if record is None:  # deleted in Books: the upsert key is free again
            continue
        values = link["books_values"] or {}
        existing.setdefault(str(link["parent_crm_id"]), {})[link["kind"]] = Existing(
            link["kind"], str(link["books_id"]), str(record.get(NUMBER[link["kind"]]) or ""),
            str(record.get("status") or "draft"), values.get("status"),
            values.get("content") or {}, values.get("pending"))
    steps = []
    for deal in deals:
        for step in plan_deal(deal, ctx, existing.get(str(deal["id"]), {})):
            if step["op"] == "crm_link" and CRM_ESTIMATE_FIELD not in run.deal_fields:
                continue  # the CRM org has no such field: zcrm_potential_id alone links them
            step["modified"] = deal.get("Modified_Time")
            step["crm_value"] = str(deal.get(CRM_ESTIMATE_FIELD) or "")
            steps.append(step)
    return steps


def sync_customers_first(run: TriggerRun, crm_ids: list[str]) -> bool:
    """Link the accounts/contacts deals need by a targeted customers run (like `crmbooks
    fetch customer`); True if it ran. A refusal (paused, another customers run going) or a
    customer that cannot be synced leaves those deals failing with their reason."""
    from flows.pipeline import run_pipeline

    logger = get_run_logger()
    logger.info("syncing %d customer(s) the deals need first", len(crm_ids))
    try:
        run_pipeline("customers", org_id=run.org_id or None, targets={"crm": crm_ids})
    except Exception as exc:
        logger.warning("the customers the deals need could not be synced first: %s", exc)
        return False
    return True


@task(name="push-deal-triggers")
def push_triggers(run: TriggerRun, steps: list[dict]) -> list[dict]:
    """Carry out the steps deal by deal; a rejected step stops that deal's later steps."""
    runtime = run.runtime()
    outcomes: list[dict] = []
    crm_links: dict[str, str] = {}
    by_deal: dict[str, list[dict]] = {}
    for step in steps:
        by_deal.setdefault(step["deal_id"], []).append(step)
    for deal_id, deal_steps in by_deal.items():
        made: dict[str, str] = {}
        for step in deal_steps:
            if step["op"] in ("nothing", "skip", "fail"):
                continue
            if step["op"] == "crm_link":
                if CRM_ESTIMATE_FIELD in run.deal_fields:
                    crm_links[deal_id] = step["books_id"]
                continue
            if not step["books_id"] and step["op"] != "create":
                step = {**step, "books_id": made.get(step["resource"])}  # made in this run
            try:
                outcome = _push_step(runtime, step, made)
            except RetriableError as exc:  # retries exhausted: this deal waits for a rerun
                outcome = {**_outcome(step), "ok": False, "code": "RETRIES_EXHAUSTED",
                           "message": str(exc)}
            outcomes.append(outcome)
            if not outcome["ok"]:
                break
            if step["op"] == "create":
                made[step["resource"]] = outcome["books_id"]
                if step["resource"] == "estimates" and CRM_ESTIMATE_FIELD in run.deal_fields \
                        and step["crm_value"] != outcome["books_id"]:
                    crm_links[deal_id] = outcome["books_id"]
    outcomes += _push_crm_links(runtime, crm_links, steps)
    return outcomes


def _outcome(step: dict, **extra) -> dict:
    return {"deal_id": step["deal_id"], "name": step["name"], "op": step["op"],
            "resource": step["resource"], "side": "books", "books_id": step.get("books_id"),
            "status": step.get("status"), "before": step.get("before"),
            "content": step.get("content"), "reason": step.get("reason"), **extra}


def _body(step: dict, made: dict[str, str]) -> dict[str, Any]:
    """The step's Books body with money as Decimal and the just-made quote id filled in."""
    body = dict(step["body"])
    body["line_items"] = [{**line, "rate": Decimal(line["rate"])}
                          for line in body["line_items"]]
    if body.get("invoiced_estimate_id") == "$estimate":
        if made.get("estimates"):
            body["invoiced_estimate_id"] = made["estimates"]
        else:
            body.pop("invoiced_estimate_id")
    return body


def _push_step(runtime: Runtime, step: dict, made: dict[str, str]) -> dict:
    books, store = runtime.books, runtime.store
    resource, deal_id = step["resource"], step["deal_id"]
    if step["op"] == "create":
        result = books.upsert_by_custom_field(resource, UNIQUE_FIELD,
                                              upsert_key(deal_id, resource), _body(step, made))
        status = (result.record or {}).get("status") or "draft"
        values = {"status": status, "content": step["content"]}
    elif step["op"] == "update":
        result = books.update(resource, step["books_id"], _body(step, made))
        values = {"content": step["content"]}
    else:  # mark: the intended status is noted first, so a crash right after the mark
        # cannot make the trigger mistake its own status change for a person's (B2).
        _save_link(store, deal_id, resource, step["books_id"], {"pending": step["status"]},
                   None)
        mark = books.mark_estimate if resource == "estimates" else books.mark_invoice
        result = mark(step["books_id"], step["status"])
        values = {"status": step["status"], "pending": None}
    if not result.ok:
        return _outcome(step, ok=False, code=result.code, field=result.field,
                        message=result.message)
    books_id = str(result.id or step["books_id"])
    _save_link(store, deal_id, resource, books_id, values, result.record)
    return _outcome(step, ok=True, books_id=books_id,
                    number=(result.record or {}).get(NUMBER[resource]))


def _save_link(store, deal_id: str, resource: str, books_id: str, values: dict,
               record: dict | None) -> None:
    """The trigger's link, right after its write (exactly-once, B2)."""
    found = store.find_link(MODULE, books_id=books_id)
    merged = {**((found.books_values or {}) if found else {}), **values}
    store.upsert_link(MODULE, crm_id=link_crm_id(deal_id, resource, books_id), books_id=books_id,
                      kind=resource, crm_module="Deals", parent_crm_id=deal_id,
                      books_values=merged, made_by="trigger",
                      books_modified=(record or {}).get("last_modified_time"))


def _push_crm_links(runtime: Runtime, crm_links: dict[str, str], steps: list[dict]) -> list:
    """Show each deal's quote on the deal (Books_Estimate_Id__c), 100 deals per call."""
    if not crm_links:
        return []
    names = {s["deal_id"]: s["name"] for s in steps}
    rows = [{"id": deal_id, CRM_ESTIMATE_FIELD: books_id} for deal_id, books_id
            in crm_links.items()]
    outcomes = []
    for row, result in zip(rows, runtime.crm.update("Deals", rows), strict=True):
        outcomes.append({"deal_id": row["id"], "name": names.get(row["id"], ""),
                         "op": "crm_link", "resource": "estimates", "side": "crm",
                         "books_id": row[CRM_ESTIMATE_FIELD], "ok": result.ok,
                         "code": result.code, "field": result.field,
                         "message": result.message,
                         "reason": f"quote {row[CRM_ESTIMATE_FIELD]} shown on the deal"})
    return outcomes


# ------------------------------------------------------------------------------------ report
EVENT = {"create": "created", "update": "updated", "mark": "updated", "crm_link": "updated",
         "skip": "skipped", "fail": "failed"}


def trigger_events(steps: list[dict], outcomes: list[dict], dry_run: bool) -> list[dict]:
    """History rows (B4): planned steps in a dry run, what was written otherwise."""
    rows = []
    done = outcomes if not dry_run else [
        {**s, "ok": True, "side": "crm" if s["op"] == "crm_link" else "books"}
        for s in steps if s["op"] in ("create", "update", "mark", "crm_link")]
    for s in [s for s in steps if s["op"] in ("skip", "fail")]:
        rows.append(_event(s, EVENT[s["op"]], "books", s["reason"]))
    for o in done:
        action = EVENT[o["op"]] if o["ok"] else "failed"
        message = o.get("reason") if o["ok"] else f"{o.get('code')}: {o.get('message')}"
        rows.append(_event(o, action, o["side"], message, _changes(o)))
    return rows


def _event(row: dict, action: str, side: str, message: str | None,
           changes: list | None = None) -> dict:
    return {"side": side, "record_key": record_key(row["deal_id"]), "crm_id": row["deal_id"],
            "books_id": row.get("books_id"), "name": row.get("name"), "action": action,
            "message": message, "changes": changes or []}


def _changes(o: dict) -> list[dict]:
    if o["op"] == "mark":
        return [{"field": "status", "before": o.get("before"), "after": o.get("status")}]
    if o["op"] == "crm_link":
        return [{"field": CRM_ESTIMATE_FIELD, "before": None, "after": o.get("books_id")}]
    before, after = o.get("before") or {}, o.get("content") or {}
    return [{"field": k, "before": before.get(k), "after": after.get(k)}
            for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]


def trigger_failures(steps: list[dict], outcomes: list[dict]) -> list[dict]:
    """Failure rows: deals that cannot trigger, and writes the provider rejected."""
    rows = [{"record_key": record_key(s["deal_id"]), "side": "books", "crm_id": s["deal_id"],
             "code": "INVALID_DEAL", "message": f"{s['name'] or s['deal_id']}: {s['reason']}",
             "hint": "fix the deal in the CRM (or sync its customer); the next trigger run "
                     "picks it up"} for s in steps if s["op"] == "fail"]
    for o in outcomes:
        if not o["ok"]:
            rows.append({"record_key": record_key(o["deal_id"]), "side": o["side"],
                         "crm_id": o["deal_id"], "books_id": o.get("books_id"),
                         "code": str(o.get("code") or ""), "field": o.get("field"),
                         "message": f"{o['name'] or o['deal_id']}: {o.get('message')}",
                         "hint": "correct the deal or the Books transaction, then run "
                                 "`crmbooks deals trigger` or wait for the next catch-up"})
    return rows


def trigger_counts(steps: list[dict], outcomes: list[dict], dry_run: bool) -> dict:
    """Counts per side, in the shape every run reports (cli.md)."""
    counts = {s: dict.fromkeys(COUNT_KEYS, 0) for s in SIDES}
    for s in steps:
        if s["op"] == "skip":
            counts["books"]["skipped"] += 1
        elif s["op"] == "fail":
            counts["books"]["failed"] += 1
        elif dry_run and s["op"] in ("create", "update", "mark", "crm_link"):
            side = "crm" if s["op"] == "crm_link" else "books"
            counts[side]["created" if s["op"] == "create" else "updated"] += 1
    for o in outcomes:
        key = ("created" if o["op"] == "create" else "updated") if o["ok"] else "failed"
        counts[o["side"]][key] += 1
    return counts


def _new_cursor(run: TriggerRun, deals: list[dict], failed: set[str]) -> datetime | None:
    """Catch-up only: past every deal read, but never past the first that failed."""
    stamps = {str(d["id"]): datetime.fromisoformat(str(d["Modified_Time"]))
              for d in deals if d.get("Modified_Time")}
    if not stamps:
        return None
    bad = [stamps[i] for i in failed if i in stamps]
    new = min(bad) if bad else max(stamps.values())
    return new if run.cursor is None or new > run.cursor else None


@task(name="report-deal-triggers")
def report_triggers(run: TriggerRun, steps: list[dict], outcomes: list[dict],
                    deals: list[dict]) -> dict:
    """History, failures, cursor, artifacts; closes the run."""
    runtime, logger = run.runtime(), get_run_logger()
    store = runtime.store
    counts = trigger_counts(steps, outcomes, run.dry_run)
    failures = trigger_failures(steps, outcomes)
    store.clear_events(run.run_id)
    store.add_events(run.run_id, MODULE, trigger_events(steps, outcomes, run.dry_run))
    if not run.dry_run:
        if failures:
            store.add_failures(run.run_id, MODULE, failures)
        failed = {f["crm_id"] for f in failures}
        fine = {record_key(str(d["id"])) for d in deals if str(d["id"]) not in failed}
        store.resolve_failures(MODULE, fine)
        if run.catch_up:
            cursor = _new_cursor(run, deals, failed)
            if cursor is not None:
                store.advance_cursor(MODULE, "crm", cursor)
    calls = runtime.api_calls()
    api_calls = {s: calls.get(s, 0) - run.calls_before.get(s, 0) for s in ("crm", "books")}
    state = "completed_with_failures" if any(c["failed"] for c in counts.values()) \
        else "completed"
    summary_plan = pd.Series([s["op"] for s in steps], dtype=object).value_counts().to_dict()
    store.finish_run(run.run_id, state, counts=counts, api_calls=api_calls,
                     plan_summary={str(k): int(v) for k, v in summary_plan.items()})
    _artifacts(run, steps, counts, api_calls, failures)
    logger.info("deal triggers %s: %s deal(s), %s; API calls %s", state, len(deals), counts,
                api_calls)
    return {"run_id": run.run_id, "state": state, "counts": counts, "api_calls": api_calls,
            "deals": len(deals)}


def _artifacts(run: TriggerRun, steps: list[dict], counts: dict, api_calls: dict,
               failures: list[dict]) -> None:
    prefix = f"deals-{'plan' if run.dry_run else 'triggers'}"
    create_table_artifact([{"side": side, **counts[side], "api_calls": api_calls.get(side, 0)}
                           for side in SIDES], key=f"{prefix}-summary",
                          description=f"deal triggers: records per side (run {run.run_id})")
    create_table_artifact(
        [{"deal": s["deal_id"], "name": s["name"], "step": s["op"], "type": s["resource"] or "",
          "reason": s["reason"]} for s in steps if s["op"] != "nothing"]
        or [{"deal": "", "name": "", "step": "", "type": "", "reason": "nothing to do"}],
        key=f"{prefix}-steps", description="deal triggers: what each deal asked for")
    create_table_artifact(
        [{"record": f["record_key"], "side": f["side"], "code": f.get("code") or "",
          "message": f["message"], "what to do": f["hint"]} for f in failures]
        or [{"record": "", "side": "", "code": "", "message": "no failures", "what to do": ""}],
        key=f"{prefix}-failures", description="deal triggers: failed deals and what to do")
