"""Transaction tasks (F14, CRM → Books): start, fetch, plan, push, report.

CRM quotes, sales orders, invoices and purchase orders become Books estimates, sales orders,
invoices and purchase orders for linked customers/vendors/items. Exactly-once: each Books
record is written by an upsert on its unique `cf_crm_id` custom field (the CRM record id) and
linked (module `transactions`) right after; the link keeps what was written, so an unchanged
record (or the echo of our own write) plans nothing. The Books id is written back to the CRM
record's `Books_Id__c`, so the transaction can be found from the CRM side.
"""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.context import get_run_context
from pydantic import BaseModel

from crmbooks.connectors.errors import RetriableError
from crmbooks.metadata import _cached, _is_unique_key, crm_field_metadata
from crmbooks.runtime import Runtime, get_runtime
from crmbooks.settings import SettingsError, parse_module_settings
from crmbooks.store.jsonsafe import json_safe
from crmbooks.sync.transactions import (
    CLOSED,
    CRM_BOOKS_ID,
    CRM_MODULE,
    NOUN,
    RESOURCE,
    books_body,
    crm_fields,
)
from tasks.report import COUNT_KEYS, SIDES
from tasks.start import refuse_if_stopped

MODULE = "transactions"
UNIQUE_FIELD = "cf_crm_id"


class TransactionsRun(BaseModel):
    """One transactions run (JSON-able, nothing secret)."""

    run_id: str
    org_id: str
    dry_run: bool
    catch_up: bool = True  # False: only the records of events (the cursors stay)
    modules: list[str]  # CRM modules synced
    fields: dict[str, list[str]]
    cursors: dict[str, datetime | None]
    customers_mode: str
    currencies: list[str]
    base_currency: str | None = None
    calls_before: dict[str, int] = {}

    def runtime(self) -> Runtime:
        """The store and clients of this run's organization."""
        return get_runtime(self.org_id or None)


def cursor_module(crm_module: str) -> str:
    """The store's cursor key of one CRM transaction module."""
    return f"{MODULE}:{crm_module}"


@task(name="start-transactions")
def start_transactions(dry_run: bool, org_id: str | None, only: str | None = None,
                       catch_up: bool = True) -> TransactionsRun | None:
    """Check connection and settings; None when transactions are off."""
    runtime = get_runtime(org_id)
    store, logger = runtime.store, get_run_logger()
    connection = store.connection()
    refuse_if_stopped(connection)
    version, raw = store.active_settings(MODULE) or (None, {})
    settings = parse_module_settings(MODULE, raw)
    if not settings.enabled:
        logger.info("transactions are off: `crmbooks configure transactions --enable`")
        return None
    modules = [CRM_MODULE[r] for r in settings.modules]
    if only is not None:
        if only not in modules:
            return None
        modules = [only]
    for module in modules:
        if not _is_unique_key(runtime, RESOURCE[module], UNIQUE_FIELD):
            raise SettingsError(f"Books {RESOURCE[module]} have no unique custom field "
                                f"{UNIQUE_FIELD}: create it so transactions write exactly once")
    fields = {m: crm_fields(m, {f.get("api_name") for f in crm_field_metadata(runtime, m)})
              for m in modules}
    currencies = _cached(runtime, "books-currencies",
                         lambda: [c.get("currency_code") for c in runtime.books.currencies()])
    customers = parse_module_settings("customers",
                                      (store.active_settings("customers") or (None, {}))[1])
    flow_run = getattr(get_run_context(), "task_run", None)
    run_id = store.start_run(MODULE, dry_run=dry_run, settings_version=version,
                             flow_run_id=str(flow_run.flow_run_id) if flow_run else None)
    return TransactionsRun(
        run_id=run_id, org_id=runtime.org_id, dry_run=dry_run, catch_up=catch_up,
        modules=modules, fields=fields,
        cursors={m: store.cursor(cursor_module(m), "crm") for m in modules},
        customers_mode=customers.crm_module, currencies=[c for c in currencies if c],
        base_currency=(connection.books_org or {}).get("currency"),
        calls_before=runtime.api_calls())


@task(name="fetch-crm-transactions")
def fetch_transactions(run: TransactionsRun, crm_ids: list[str] | None) -> dict[str, list]:
    """CRM records per module: these ids (events) or changed since each module's cursor."""
    crm, out = run.runtime().crm, {}
    for module in run.modules:
        if crm_ids:
            found = [crm.get_record(module, i, run.fields[module]) for i in dict.fromkeys(crm_ids)]
            out[module] = [r for r in found if r]
            continue
        records: dict[str, dict] = {}
        for page in crm.iter_records(module, run.fields[module], sort_by="Modified_Time",
                                     modified_since=run.cursors.get(module)):
            records.update({str(r["id"]): r for r in page})
        out[module] = list(records.values())
    return out


def _links(store) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"accounts": {}, "contacts": {}, "vendors": {},
                                      "items": {}}
    for module, kinds in (("customers", ("accounts", "contacts")), ("vendors", ("vendors",)),
                          ("items", ("products",))):
        for row in store.links(module).to_dict("records"):
            if row["kind"] in kinds:
                key = "items" if row["kind"] == "products" else row["kind"]
                out[key][str(row["crm_id"])] = str(row["books_id"])
    return out


@task(name="plan-transactions")
def plan_transactions(run: TransactionsRun, fetched: dict[str, list]) -> list[dict]:
    """Per record: create, update, nothing, skip (closed in Books) or fail (with reason)."""
    runtime = run.runtime()
    links = _links(runtime.store)
    known = runtime.store.links_by_crm_id(MODULE)
    plan = []
    for module, records in fetched.items():
        resource = RESOURCE[module]
        for record in records:
            crm_id = str(record["id"])
            row = {"crm_module": module, "resource": resource, "crm_id": crm_id,
                   "name": str(record.get("Subject") or ""), "books_id": None, "body": None,
                   "content": None, "reason": "", "modified": record.get("Modified_Time"),
                   "crm_value": str(record.get(CRM_BOOKS_ID) or "")}
            link = known.get(crm_id)
            body, why = books_body(record, module, customers_mode=run.customers_mode,
                                   links=links, currencies=frozenset(run.currencies),
                                   base_currency=run.base_currency)
            if body is None:
                plan.append({**row, "op": "fail", "reason": why})
                continue
            content = json_safe(body)
            row.update(body=body, content=content)
            if link is None:
                plan.append({**row, "op": "create", "reason": f"new {NOUN[resource]}"})
                continue
            row["books_id"] = link.books_id
            if (link.crm_values or {}) == content:
                op = "link_crm" if row["crm_value"] != link.books_id else "nothing"
                plan.append({**row, "op": op, "reason": "unchanged"})
                continue
            current = runtime.books.get(resource, link.books_id)
            status = (current or {}).get("status")
            if current is not None and status in CLOSED:
                plan.append({**row, "op": "skip", "reason": f"the Books {NOUN[resource]} is "
                             f"{status}: CRM changes are no longer applied"})
                continue
            plan.append({**row, "op": "update" if current else "create",
                         "reason": "changed in CRM"})
    return plan


@task(name="push-transactions")
def push_transactions(run: TransactionsRun, plan: list[dict]) -> list[dict]:
    """Upsert each record into Books and link it; then write the Books ids back to CRM."""
    runtime = run.runtime()
    books, store = runtime.books, runtime.store
    outcomes, back = [], {}
    for row in plan:
        if row["op"] == "link_crm":
            back.setdefault(row["crm_module"], {})[row["crm_id"]] = row["books_id"]
        if row["op"] not in ("create", "update"):
            continue
        try:
            result = books.upsert_by_custom_field(row["resource"], UNIQUE_FIELD, row["crm_id"],
                                                  row["body"])
        except RetriableError as exc:
            outcomes.append({**_slim(row), "side": "books", "ok": False,
                             "code": "RETRIES_EXHAUSTED", "message": str(exc)})
            continue
        if not result.ok:
            outcomes.append({**_slim(row), "side": "books", "ok": False, "code": result.code,
                             "field": result.field, "message": result.message})
            continue
        store.upsert_link(MODULE, crm_id=row["crm_id"], books_id=result.id,
                          kind=row["resource"], crm_module=row["crm_module"],
                          crm_values=row["content"], made_by="sync",
                          books_modified=(result.record or {}).get("last_modified_time"))
        outcomes.append({**_slim(row), "books_id": result.id, "side": "books", "ok": True})
        if row["crm_value"] != result.id:
            back.setdefault(row["crm_module"], {})[row["crm_id"]] = result.id
    for module, pairs in back.items():
        rows = [{"id": crm_id, CRM_BOOKS_ID: books_id} for crm_id, books_id in pairs.items()
                if CRM_BOOKS_ID in run.fields[module]]
        for sent, result in zip(rows, runtime.crm.update(module, rows) if rows else [],
                                strict=True):
            outcomes.append({"crm_module": module, "crm_id": sent["id"], "op": "link_crm",
                             "books_id": sent[CRM_BOOKS_ID], "name": "", "side": "crm",
                             "ok": result.ok, "code": result.code, "message": result.message,
                             "reason": "Books id shown on the CRM record"})
    return outcomes


def _slim(row: dict) -> dict:
    return {k: row[k] for k in ("crm_module", "resource", "crm_id", "name", "op", "reason",
                                "books_id")}


@task(name="report-transactions")
def report_transactions(run: TransactionsRun, plan: list[dict], outcomes: list[dict],
                        fetched: dict[str, list]) -> dict:
    """History, failures, cursors, artifacts; closes the run."""
    runtime = run.runtime()
    store = runtime.store
    counts = {s: dict.fromkeys(COUNT_KEYS, 0) for s in SIDES}
    events, failures = [], []
    for row in plan:
        key = f"{row['crm_module']}:{row['crm_id']}"
        if row["op"] == "skip":
            counts["books"]["skipped"] += 1
            events.append(_event(row, key, "skipped", "books", row["reason"]))
        elif row["op"] == "fail":
            counts["books"]["failed"] += 1
            events.append(_event(row, key, "failed", "books", row["reason"]))
            failures.append({"record_key": key, "side": "books", "crm_id": row["crm_id"],
                             "code": "INVALID_RECORD", "message": f"{row['name']}: "
                             f"{row['reason']}", "hint": "link what the reason names (sync "
                             "that module) or fix the record; the next run picks it up"})
        elif run.dry_run and row["op"] in ("create", "update"):
            counts["books"]["created" if row["op"] == "create" else "updated"] += 1
            events.append(_event(row, key, "created" if row["op"] == "create" else "updated",
                                 "books", row["reason"]))
    for o in outcomes:
        key = f"{o['crm_module']}:{o['crm_id']}"
        action = ("created" if o["op"] == "create" else "updated") if o["ok"] else "failed"
        counts[o["side"]][action] += 1
        events.append(_event(o, key, action, o["side"], o.get("reason") if o["ok"]
                             else f"{o.get('code')}: {o.get('message')}"))
        if not o["ok"]:
            failures.append({"record_key": key, "side": o["side"], "crm_id": o["crm_id"],
                             "code": str(o.get("code") or ""), "field": o.get("field"),
                             "message": f"{o.get('name') or o['crm_id']}: {o.get('message')}",
                             "hint": "correct the record, then run again"})
    store.clear_events(run.run_id)
    store.add_events(run.run_id, MODULE, events)
    if not run.dry_run:
        if failures:
            store.add_failures(run.run_id, MODULE, failures)
        failed = {f["record_key"] for f in failures}
        store.resolve_failures(MODULE, {f"{r['crm_module']}:{r['crm_id']}" for r in plan}
                               - failed)
        for module, records in fetched.items() if run.catch_up else ():
            _settle(run, store, module, records, failed)
    calls = runtime.api_calls()
    api_calls = {s: calls.get(s, 0) - run.calls_before.get(s, 0) for s in SIDES}
    state = "completed_with_failures" if failures or any(
        c["failed"] for c in counts.values()) else "completed"
    store.finish_run(run.run_id, state, counts=counts, api_calls=api_calls)
    create_table_artifact([{"side": s, **counts[s], "api_calls": api_calls[s]} for s in SIDES],
                          key=f"transactions-{'plan' if run.dry_run else 'sync'}-summary",
                          description=f"transactions: records per side (run {run.run_id})")
    create_table_artifact(
        [{"record": f["record_key"], "message": f["message"], "what to do": f["hint"]}
         for f in failures] or [{"record": "", "message": "no failures", "what to do": ""}],
        key=f"transactions-{'plan' if run.dry_run else 'sync'}-failures",
        description="transactions: failed records and what to do")
    get_run_logger().info("transactions %s: %s", state, counts)
    return {"run_id": run.run_id, "state": state, "counts": counts, "api_calls": api_calls}


def _event(row: dict, key: str, action: str, side: str, message) -> dict:
    return {"record_key": key, "side": side, "crm_id": row["crm_id"],
            "books_id": row.get("books_id"), "name": row.get("name"), "action": action,
            "message": message}


def _settle(run: TransactionsRun, store, module: str, records: list[dict],
            failed: set[str]) -> None:
    """Move a module's cursor past what was read, never past its first failed record."""
    stamps = {f"{module}:{r['id']}": datetime.fromisoformat(str(r["Modified_Time"]))
              for r in records if r.get("Modified_Time")}
    if not stamps:
        return
    bad = [stamps[k] for k in failed if k in stamps]
    new = min(bad) if bad else max(stamps.values())
    store.advance_cursor(cursor_module(module), "crm", new)

