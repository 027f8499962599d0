"""Transaction tasks (F14): start, fetch, plan, push, report — the CRM → Books half here, the
Books → CRM half in tasks/transactions_books.py; one run (and one report) covers both.

CRM quotes, sales orders, invoices and purchase orders become Books estimates, sales orders,
invoices and purchase orders for linked customers/vendors/items. Exactly-once: each Books
record is written by an upsert on its unique `cf_crm_id` custom field (the CRM record id) and
linked (module `transactions`) right after; the link keeps what was written, so an unchanged
record (or the echo of our own write) plans nothing. The Books id is written back to the CRM
record's `Books_Id__c`, so the transaction can be found from the CRM side.

Who wins (docs/decisions.md): CRM → Books runs first. While the Books record is a draft, CRM
changes reach it; once Books moved it past draft (sent, accepted, paid, void …), Books owns
its status and amounts and only the mapped custom fields still travel CRM → Books.
"""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.context import get_run_context
from pydantic import BaseModel

from crmbooks.connectors.errors import RetriableError
from crmbooks.metadata import _cached, _is_unique_key, books_custom_fields, crm_field_metadata
from crmbooks.operations import resolve_deleted
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
from crmbooks.sync.transactions_crm import CRM_MAPPABLE, crm_body, custom_to_books, custom_to_crm
from tasks.report import COUNT_KEYS, SIDES, _credible, _stamp
from tasks.start import active_settings

MODULE = "transactions"
UNIQUE_FIELD = "cf_crm_id"


class TransactionsRun(BaseModel):
    """One transactions run (JSON-able, nothing secret)."""

    run_id: str
    org_id: str
    dry_run: bool
    module: str = MODULE  # the run lock's key (flows/pipeline.hold_run_lock)
    catch_up: bool = True  # False: only the records of events (the cursors stay)
    to_books: bool = True  # the CRM → Books path runs
    to_crm: bool = True  # the Books → CRM path runs
    modules: list[str]  # CRM modules synced
    fields: dict[str, list[str]]
    present: dict[str, list[str]] = {}  # every field the CRM org has, per module
    statuses: dict[str, list[str] | None] = {}  # the CRM Status picklist, per module
    maps: dict[str, list[dict]] = {}  # custom-field maps per CRM module, with both field types
    cursors: dict[str, datetime | None]
    books_cursors: dict[str, datetime | None] = {}  # per Books resource
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
                       catch_up: bool = True, to_books: bool = True,
                       to_crm: bool = True) -> TransactionsRun | None:
    """Check connection and settings (custom-field maps against both sides' live fields,
    before any write); None when transactions are off or `only` is not synced."""
    runtime = get_runtime(org_id)
    store, logger = runtime.store, get_run_logger()
    connection, version, settings = active_settings(runtime, MODULE)
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
    meta = {m: {f.get("api_name"): f for f in crm_field_metadata(runtime, m)} for m in modules}
    if to_crm:
        _check_books_id_unique(meta)
    maps = field_maps(runtime, settings.maps, modules, meta)
    fields = {m: list(dict.fromkeys(crm_fields(m, set(meta[m])) + [x["crm"] for x in maps[m]]))
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
        to_books=to_books, to_crm=to_crm, modules=modules, fields=fields,
        present={m: sorted(k for k in meta[m] if k) for m in modules},
        statuses={m: _picklist(meta[m].get("Status")) for m in modules}, maps=maps,
        cursors={m: store.cursor(cursor_module(m), "crm") for m in modules},
        books_cursors={RESOURCE[m]: store.cursor(cursor_module(RESOURCE[m]), "books")
                       for m in modules},
        customers_mode=customers.crm_module, currencies=[c for c in currencies if c],
        base_currency=(connection.books_org or {}).get("currency"),
        calls_before=runtime.api_calls())


def _picklist(field: dict | None) -> list[str] | None:
    if not field:
        return None
    return [str(v.get("actual_value") or v.get("display_value"))
            for v in field.get("pick_list_values") or []]


def _check_books_id_unique(meta: dict[str, dict[str, dict]]) -> None:
    """Books → CRM creates upsert by Books_Id__c: it must exist and be unique (exactly once)."""
    for module, fields in meta.items():
        field = fields.get(CRM_BOOKS_ID)
        if not field or not field.get("unique"):
            raise SettingsError(f"CRM {module} need a unique field {CRM_BOOKS_ID} (Books Id): "
                                "create it (mark it unique) so Books transactions are copied to "
                                "the CRM exactly once")


def field_maps(runtime, maps, modules: list[str], meta: dict[str, dict[str, dict]]
               ) -> dict[str, list[dict]]:
    """The custom-field maps of each CRM module with both fields' types, checked against the
    live metadata of both sides; SettingsError naming every bad map (nothing is written)."""
    out: dict[str, list[dict]] = {m: [] for m in modules}
    problems = []
    for module in modules:
        resource = RESOURCE[module]
        wanted = [m for m in maps if m.section in (None, resource)]
        books = {f.get("api_name"): f for f in books_custom_fields(runtime, resource)} \
            if wanted else {}
        for m in wanted:
            cf = m.books.removeprefix("custom_fields.")
            crm = meta[module].get(m.crm)
            if crm is None:
                problems.append(f"{m.books}={m.crm}: CRM {module} have no field {m.crm}")
            elif crm.get("data_type") not in CRM_MAPPABLE:
                problems.append(f"{m.books}={m.crm}: CRM field {m.crm} is a "
                                f"{crm.get('data_type')} field, which cannot carry a Books "
                                "custom field value")
            elif m.direction != "to_books" and (crm.get("read_only")
                                                or crm.get("field_read_only")):
                problems.append(f"{m.books}={m.crm}: CRM field {m.crm} is read-only")
            if cf not in books:
                problems.append(f"{m.books}={m.crm}: Books {resource} have no custom field "
                                f"{cf} (create it in Books — crmbooks reads the custom fields "
                                f"off the newest {NOUN[resource]}, so give it a value there — "
                                "or fix the map)")
            if crm is not None and cf in books:
                out[module].append({"crm": m.crm, "books": cf, "direction": m.direction,
                                    "crm_type": crm.get("data_type"),
                                    "books_type": books[cf].get("data_type")})
    if problems:
        raise SettingsError("transactions maps do not fit the live fields: "
                            + "; ".join(problems) + " (`crmbooks configure transactions "
                            "--unmap cf_…` removes a map); nothing was written")
    return out


@task(name="fetch-crm-transactions")
def fetch_transactions(run: TransactionsRun, crm_ids: list[str] | None) -> dict[str, list]:
    """CRM records per module: these ids (events) or changed since each module's cursor."""
    crm, out = run.runtime().crm, {}
    for module in run.modules if run.to_books else ():
        if crm_ids:
            ids = list(dict.fromkeys(str(i) for i in crm_ids))
            found = [crm.get_record(module, i, run.fields[module]) for i in ids]
            out[module] = [r for r in found if r]
            # not found (a transient error raises): a failure of it is resolved with a note
            resolve_deleted(run.runtime().store, MODULE, [
                f"{module}:{i}" for i, r in zip(ids, found, strict=True) if not r],
                "the CRM", run.dry_run)
            continue
        records: dict[str, dict] = {}
        for page in crm.iter_records(module, run.fields[module], sort_by="Modified_Time",
                                     modified_since=run.cursors.get(module)):
            records.update({str(r["id"]): r for r in page})
        out[module] = list(records.values())
    return out


def links_of(store) -> dict[str, dict[str, str]]:
    """{accounts|contacts|vendors|items: {CRM id: Books id}} from the links of those modules."""
    out: dict[str, dict[str, str]] = {"accounts": {}, "contacts": {}, "vendors": {},
                                      "items": {}}
    for module, kinds in (("customers", ("accounts", "contacts")), ("vendors", ("vendors",)),
                          ("items", ("products",))):
        for row in store.links(module).to_dict("records"):
            if row["kind"] in kinds:
                key = "items" if row["kind"] == "products" else row["kind"]
                out[key][str(row["crm_id"])] = str(row["books_id"])
    return out


def parties_back(store) -> dict[str, dict]:
    """{Books customer/vendor id: the CRM lookup that names it} from the links."""
    out: dict[str, dict] = {}
    for module, kinds in (("customers", {"accounts": "Account_Name",
                                         "contacts": "Contact_Name"}),
                          ("vendors", {"vendors": "Vendor_Name"})):
        for row in store.links(module).to_dict("records"):
            field = kinds.get(row["kind"])
            if field and str(row["books_id"]) not in out:
                out[str(row["books_id"])] = {field: {"id": str(row["crm_id"])}}
    return out


def items_back(store) -> dict[str, str]:
    """{Books item id: CRM product id} from the items links."""
    return {str(r["books_id"]): str(r["crm_id"])
            for r in store.links("items", "products").to_dict("records")}


def crm_content(body: dict, record: dict) -> dict:
    """What a link keeps of a Books record as the CRM saw it last (its `books_values`): the
    CRM body, plus the Books status and total a list summary can be checked against."""
    return json_safe({**body, "$status": record.get("status"), "$total": record.get("total")})


def is_echo(link, summary: dict) -> bool:
    """A Books record that still carries the stamp, status and total our last write left: it
    needs no detail read and no plan. (Stamps have one-second resolution: a person's edit in
    the very second of our write differs at least in status or total, or waits for the next
    webhook, which is read in full.)"""
    values = link.books_values or {}
    return bool(link.books_modified) and link.books_modified == summary.get(
        "last_modified_time") and values.get("$status") == summary.get("status") and str(
        values.get("$total")) == str(json_safe(summary.get("total")))


def id_field(resource: str) -> str:
    """estimates → estimate_id, salesorders → salesorder_id …"""
    return f"{resource[:-1]}_id"


def party_id(record: dict, resource: str) -> str:
    """The Books customer (vendor, for a purchase order) id of a Books transaction."""
    return str(record.get("vendor_id" if resource == "purchaseorders" else "customer_id") or "")


def _books_values(run: TransactionsRun, resource: str, record: dict | None, maps,
                  parties: dict, items: dict) -> dict | None:
    """The `books_values` of a record we just wrote to Books, so that its echo (a webhook, the
    catch-up) plans nothing on the Books → CRM path. `parties`/`items`: the links read
    backwards (parties_back, items_back), read once per push."""
    if not record:
        return None
    module = CRM_MODULE[resource]
    body, _ = crm_body(record, resource, party=parties.get(party_id(record, resource)),
                       items_back=items,
                       picklist=run.statuses.get(module), present=set(run.present[module]))
    custom, problems = custom_to_crm(record, maps)
    return None if body is None or problems else crm_content({**body, **custom}, record)


@task(name="plan-transactions")
def plan_transactions(run: TransactionsRun, fetched: dict[str, list]) -> list[dict]:
    """Per record: create, update, nothing, skip (past draft/closed in Books) or fail."""
    runtime = run.runtime()
    links = links_of(runtime.store)
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
            custom, problems = custom_to_books(record, run.maps.get(module, []))
            if body is None or problems:
                plan.append({**row, "op": "fail",
                             "reason": "; ".join(([why] if why else []) + problems)})
                continue
            if custom:
                body["custom_fields"] = custom
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
            plan.append(_past_draft(run, row, link, custom))
    return plan


def _past_draft(run: TransactionsRun, row: dict, link, custom: list[dict]) -> dict:
    """A changed CRM record of a linked transaction: the whole body while Books has it as a
    draft; past draft Books owns status and amounts, so only the custom fields go (and the
    Books record they leave is set back over the CRM record, `restore_after`), or, with none
    changed, the row carries the Books record (`restore`) for the Books → CRM path to set the
    CRM record back to."""
    resource = row["resource"]
    current = run.runtime().books.get(resource, link.books_id)
    status = (current or {}).get("status")
    if current is None:
        return {**row, "op": "create", "reason": f"the Books {NOUN[resource]} was deleted"}
    if status in CLOSED:
        return {**row, "op": "skip", "restore": current, "reason": f"the Books "
                f"{NOUN[resource]} is {status}: CRM changes are no longer applied (the CRM "
                "record is set back to the Books values)"}
    if status in (None, "", "draft"):
        return {**row, "op": "update", "reason": "changed in CRM"}
    if custom and any(c["value"] != _books_value(current, c["api_name"]) for c in custom):
        # `restore_after`: once the custom fields are in Books, the Books record as that write
        # left it goes back over the CRM record (its amounts and status, with the new custom
        # values): the CRM does not keep amounts Books does not have. Not before the write: a
        # failed one must not take the CRM user's custom values away.
        return {**row, "body": {"custom_fields": custom}, "op": "update",
                "restore_after": True,
                "reason": f"custom fields changed in CRM (the Books {NOUN[resource]} is "
                          f"{status}: Books keeps its status and amounts, the CRM record is "
                          "set back to them)"}
    return {**row, "op": "skip", "restore": current, "reason": f"the Books {NOUN[resource]} "
            f"is {status}: past draft Books owns its status and amounts, CRM changes to them "
            "are not applied (the CRM record is set back to the Books values)"}


def _books_value(record: dict, api_name: str) -> str:
    return next((str(cf.get("value") or "") for cf in record.get("custom_fields") or []
                 if cf.get("api_name") == api_name), "")


@task(name="push-transactions")
def push_transactions(run: TransactionsRun, plan: list[dict]) -> list[dict]:
    """Upsert each record into Books and link it; then write the Books ids back to CRM."""
    runtime = run.runtime()
    books, store = runtime.books, runtime.store
    outcomes, back = [], {}
    writes = any(r["op"] in ("create", "update") for r in plan)
    # read once per push, and not at all by a quiet run
    parties, items = (parties_back(store), items_back(store)) if writes else ({}, {})
    for row in plan:
        if row["op"] == "link_crm":
            back.setdefault(row["crm_module"], {})[row["crm_id"]] = row["books_id"]
        if row["op"] not in ("create", "update"):
            continue
        try:
            # A linked record is updated by its id: one made in Books (Books → CRM) may not
            # carry cf_crm_id yet, and an upsert by it would then create a second one.
            result = (books.update(row["resource"], row["books_id"], row["body"])
                      if row["op"] == "update" and row["books_id"] else
                      books.upsert_by_custom_field(row["resource"], UNIQUE_FIELD, row["crm_id"],
                                                   row["body"]))
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
                          books_values=_books_values(run, row["resource"], result.record,
                                                     run.maps.get(row["crm_module"], []),
                                                     parties, items),
                          books_modified=(result.record or {}).get("last_modified_time"))
        outcomes.append({**_slim(row), "books_id": result.id, "side": "books", "ok": True}
                        | ({"restore": result.record or books.get(row["resource"], result.id)}
                           if row.get("restore_after") else {}))
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
                        fetched: dict[str, list],
                        books_fetched: dict[str, list] | None = None) -> dict:
    """History, failures, cursors (both sides), artifacts; closes the run."""
    runtime = run.runtime()
    store = runtime.store
    counts = {s: dict.fromkeys(COUNT_KEYS, 0) for s in SIDES}
    events, failures = [], []
    for row in plan:
        key, side = record_key(row), row.get("side", "books")
        if row["op"] == "skip":
            counts[side]["skipped"] += 1
            events.append(_event(row, key, "skipped", side, row["reason"]))
        elif row["op"] == "fail":
            counts[side]["failed"] += 1
            events.append(_event(row, key, "failed", side, row["reason"]))
            failures.append({"record_key": key, "side": side, "crm_id": row.get("crm_id"),
                             "books_id": row.get("books_id"),
                             "code": "INVALID_RECORD", "message": f"{row['name']}: "
                             f"{row['reason']}", "hint": "link what the reason names (sync "
                             "that module) or fix the record or the map; the next run picks "
                             "it up"})
        elif run.dry_run and row["op"] in ("create", "update"):
            action = "created" if row["op"] == "create" else "updated"
            counts[side][action] += 1
            events.append(_event(row, key, action, side, row["reason"]))
    for o in outcomes:
        key = record_key(o)
        action = ("created" if o["op"] == "create" else "updated") if o["ok"] else "failed"
        counts[o["side"]][action] += 1
        events.append(_event(o, key, action, o["side"], o.get("reason") if o["ok"]
                             else f"{o.get('code')}: {o.get('message')}"))
        if not o["ok"]:
            failures.append({"record_key": key, "side": o["side"], "crm_id": o.get("crm_id"),
                             "books_id": o.get("books_id"),
                             "code": str(o.get("code") or ""), "field": o.get("field"),
                             "message": f"{o.get('name') or o.get('crm_id') or o.get('books_id')}"
                                        f": {o.get('message')}",
                             "hint": "correct the record, then run again"})
    store.clear_events(run.run_id)
    store.add_events(run.run_id, MODULE, events)
    if not run.dry_run:
        if failures:
            store.add_failures(run.run_id, MODULE, failures)
        failed = {f["record_key"] for f in failures}
        store.resolve_failures(MODULE, {record_key(r) for r in plan} - failed)
        for module, records in fetched.items() if run.catch_up else ():
            _settle(store, module, "crm", records, "id", failed)
        for resource, records in (books_fetched or {}).items() if run.catch_up else ():
            _settle(store, resource, "books", records, id_field(resource), failed)
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


def record_key(row: dict) -> str:
    """`Quotes:<crm id>` for a CRM record (CRM → Books), `estimates:<books id>` for a Books
    record (Books → CRM): the key of its events and failure rows."""
    return row.get("key") or f"{row['crm_module']}:{row['crm_id']}"


def _event(row: dict, key: str, action: str, side: str, message) -> dict:
    return {"record_key": key, "side": side, "crm_id": row.get("crm_id"),
            "books_id": row.get("books_id"), "name": row.get("name"), "action": action,
            "message": message}


def _settle(store, key: str, side: str, records: list[dict], id_of: str,
            failed: set[str]) -> None:
    """Move a cursor (a CRM module's or a Books resource's) past what was read, never past its
    first failed record. A Books stamp far ahead of our clock (a broken clock, the year 9999)
    never moves it: that record is read again next run instead."""
    column = "Modified_Time" if side == "crm" else "last_modified_time"
    stamps = {f"{key}:{r[id_of]}": _stamp(side, r.get(column)) for r in records}
    if side == "books":
        stamps = {k: _credible(v) for k, v in stamps.items()}
    stamps = {k: v for k, v in stamps.items() if v}
    if not stamps:
        return
    bad = [stamps[k] for k in failed if k in stamps]
    new = min(bad) if bad else max(stamps.values())
    store.advance_cursor(cursor_module(key), side, new)
