"""The event receiver (`crmbooks webhook`): CRM notifications and Books webhooks → runs.

At start it registers a CRM notification channel (`actions/watch`) for Deals and the
transaction modules, with a random channel token that is kept in CRMBOOKS_HOME/receiver.json
(mode 0600) and never logged; Books webhooks must carry the shared secret kept in the same
file in their `X-Webhook-Secret` header. An event with a missing or wrong token/secret is
rejected (401 missing, 403 wrong) and starts nothing.

Books webhooks are per organization: each connected organization posts to
`/books/webhook/<organization id>` (Books' record payloads carry no organization id, and a
workflow webhook is configured per organization anyway); `/books/webhook` is the primary
organization's. An organization that is not connected is answered 404. Against the emulators
the receiver registers these URLs itself (`/__emulator__/webhooks`); with real Books they are
configured by hand (Settings > Workflow Actions > Webhooks, header X-Webhook-Secret).

What starts what:
- a CRM Deals event queues its deal ids for the deal-triggers flow of the primary
  organization (a deal's Books quote/invoice fields hold one organization's transaction);
- a CRM Quotes, Sales_Orders, Invoices or Purchase_Orders event queues its records for the
  transactions flow (F14, `crm_module` + `crm_ids`) of every connected organization whose
  transactions are enabled (extra organizations are CRM → Books only, F4);
- a Books estimate, sales order, invoice or purchase order event of the primary organization
  queues its record for the transactions flow (`books_resource` + `books_ids`, Books → CRM).
  Ignored, with a 200 that says why: other event types, deletions (deletions are not synced),
  events of extra organizations (one-way, F4) and organizations whose transactions are off.
  Malformed JSON or a record without its id is a 400. The echo of crmbooks' own write (the
  record's `last_modified_time` equals the stamp its link kept right after that write) starts
  no run; this is decided when the run would start, once no run of the organization that
  writes transactions holds its lock, since the webhook may arrive before the link is stored.
  CRM events of crmbooks' own Books-id write-backs start nothing either (their changed fields
  say so); those of its Books → CRM writes do start a run, which plans nothing.

Each flow has its own worker (a Debouncer): ids run once they have been quiet for
`debounce_s`, so a burst of edits, duplicated or reordered events make one run. The flows read
the records as they are now, so repeated, late or out-of-order events are harmless. A run
refused because another run of the same module holds the store's run lock (a catch-up run, a
manual sync) is requeued, and tried again after the debounce delay until the lock is free; a
paused or disabled integration drops the events (the catch-up run after resume covers them).
With the receiver down nothing is lost: the scheduled catch-up runs read every record changed
since their cursors.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from crmbooks.store.engine import crmbooks_home
from crmbooks.sync.transactions import CRM_BOOKS_ID
from crmbooks.sync.transactions import RESOURCE as TRANSACTION_MODULES
from crmbooks.sync.triggers import CRM_ESTIMATE_FIELD

LOG = logging.getLogger("crmbooks.receiver")
BOOKS_HEADER = "X-Webhook-Secret"
CRM_EVENTS = ("Deals.all", "Quotes.all", "Sales_Orders.all", "Invoices.all",
              "Purchase_Orders.all")
CHANNEL_HOURS = 24  # channels are renewed well before they expire
RENEW_EVERY_S = 6 * 3600
#: Books entity name (event_type prefix, payload key, `<entity>_id`) → API resource.
BOOKS_ENTITIES = {resource[:-1]: resource for resource in TRANSACTION_MODULES.values()}
#: Store modules whose links keep the stamp of crmbooks' own Books writes (echo detection).
ECHO_MODULES = ("transactions", "deals")


def state_file() -> Path:
    """Where the channel id, channel token and Books secret are kept (never in logs)."""
    return crmbooks_home() / "receiver.json"


def load_secrets(path: Path | None = None) -> dict[str, str]:
    """The receiver's channel id, CRM channel token and Books secret; made on first use."""
    path = path or state_file()
    data = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for key, make in (("channel_id", lambda: str(secrets.randbelow(9 * 10**15) + 10**15)),
                      ("crm_token", lambda: secrets.token_urlsafe(30)),  # ≤ 50 characters
                      ("books_secret", lambda: secrets.token_urlsafe(32))):
        if not data.get(key):
            data[key], changed = make(), True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
    return data


class Requeue(Exception):
    """Raised by a Debouncer handler: these ids could not run yet (a run lock is held)."""

    def __init__(self, ids: Iterable[str], reason: str = ""):
        super().__init__(reason)
        self.ids = list(ids)


class Debouncer:
    """Ids in, batches out: an id runs once it has been quiet for `delay_s`, on one thread.

    Ids with the same `group(id)` (default: the id itself) share one quiet period and run in
    the same batch: the transactions queue groups the events of one record whatever stamps
    they carry. A handler that raises :class:`Requeue` gets those ids back after `delay_s`
    (unless newer events queued them already); any other error is logged and its ids dropped.
    """

    def __init__(self, handler: Callable[[list[str]], Any], delay_s: float = 0.3,
                 name: str = "deal-triggers", group: Callable[[str], str] = str):
        self.handler, self.delay_s, self.name, self.group = handler, delay_s, name, group
        self._due: dict[str, float] = {}  # group → when it has been quiet long enough
        self._ids: dict[str, set[str]] = {}  # group → its queued ids
        self._cond = threading.Condition()
        self._stop = False
        self.runs = 0
        self.requeued = 0
        self.busy = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, ids: Iterable[str]) -> None:
        """Queue ids (again): each one's run moves to `delay_s` from now."""
        with self._cond:
            due = time.monotonic() + self.delay_s
            for i in ids:
                self._due[self.group(str(i))] = due
                self._ids.setdefault(self.group(str(i)), set()).add(str(i))
            self._cond.notify()

    def pending(self) -> int:
        """Ids waiting or running."""
        with self._cond:
            return sum(map(len, self._ids.values())) + (1 if self.busy else 0)

    def idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until nothing is queued or running (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.pending():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stop the worker after the run in progress."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop:
                    now = time.monotonic()
                    ready_groups = [g for g, due in self._due.items() if due <= now]
                    if ready_groups:
                        break
                    wait = min(self._due.values(), default=now + 1.0) - now
                    self._cond.wait(timeout=max(wait, 0.01))
                if self._stop:
                    return
                ready = []
                for g in ready_groups:
                    del self._due[g]
                    ready += sorted(self._ids.pop(g))
                self.busy = True
            try:
                self.handler(ready)
            except Requeue as again:
                LOG.info("%s: %d id(s) wait for the run lock: %s", self.name,
                         len(again.ids), again)
                with self._cond:  # a newer event for an id keeps its own (later) due time
                    due = time.monotonic() + self.delay_s
                    for i in again.ids:
                        self._due.setdefault(self.group(str(i)), due)
                        self._ids.setdefault(self.group(str(i)), set()).add(str(i))
                    self.requeued += 1
            except Exception:  # one bad run must not stop the receiver
                LOG.exception("%s run for %d id(s) failed", self.name, len(ready))
            finally:
                with self._cond:
                    self.busy = False
                    self.runs += 1


# ------------------------------------------------------------------------ organizations
def connected_orgs() -> tuple[str, list[str]]:
    """The primary Books organization and the extra ones (F4) of the stored connection."""
    from crmbooks.runtime import NotConnected, open_store

    row = open_store().connection()
    if row is None or not row.books_org_id:
        raise NotConnected("crmbooks is not connected yet: run `crmbooks connect` first")
    return str(row.books_org_id), [str(o) for o in row.extra_books_org_ids or []]


def org_store(org_id: str):
    """The store of one organization (its settings, links, run locks)."""
    from crmbooks.runtime import open_store
    from crmbooks.store.repo import Store

    return Store(open_store().engine, org_id=org_id)


def transactions_enabled(org_id: str) -> bool:
    """Whether this organization syncs transactions (read per event: settings may change)."""
    from crmbooks.settings import SettingsError, parse_module_settings

    raw = (org_store(org_id).active_settings("transactions") or (None, {}))[1]
    try:
        return parse_module_settings("transactions", raw).enabled
    except SettingsError:  # the run would refuse with the reason; let it say so
        return True


def transaction_orgs() -> list[str]:
    """Every connected organization whose transactions are enabled, the primary first."""
    primary, extras = connected_orgs()
    return [org for org in (primary, *extras) if transactions_enabled(org)]


def lock_busy(org_id: str, module: str) -> bool:
    """True while a live run of `module` holds this organization's run lock.

    Checked before starting a flow, so that waiting for a long catch-up run costs one read per
    retry instead of a refused run in the history each time.
    """
    from crmbooks.store.repo import lock_is_stale

    lock = org_store(org_id).run_lock(module)
    return lock is not None and not lock_is_stale(lock)


def own_stamp(org_id: str, books_id: str, stamp: str) -> bool:
    """True when `stamp` is the `last_modified_time` Books answered one of crmbooks' own
    writes of this record with (kept on its link): the event only echoes that write.

    Asked when the run would start, not when the event arrives: Books may deliver the
    webhook before the writing run has stored its link, but that run holds the run lock
    until it has, and the events wait for the lock.
    """
    if not stamp:
        return False
    store = org_store(org_id)
    for module in ECHO_MODULES:
        link = store.find_link(module, books_id=books_id)
        if link is not None and link.books_modified == stamp:
            return True
    return False


# ------------------------------------------------------------------------ Books events
@dataclass(frozen=True)
class BooksEvent:
    """One Books webhook, reduced to what starts a run."""

    resource: str  # estimates | salesorders | invoices | purchaseorders
    record_id: str
    action: str  # created | updated | deleted | "" (not said: Books' default payload)
    modified: str | None = None  # the record's last_modified_time, when sent


def parse_books_event(body: Any) -> BooksEvent | None:
    """The transaction a Books webhook is about; None for events of other kinds.

    Two shapes are read: the emulator's `{"event_type": "invoice_updated", "data": {…}}` and
    Books' default workflow payload `{"invoice": {…}}` (one key named after the entity). A
    body that is not an object, or a transaction without its id, raises ValueError.
    """
    if not isinstance(body, dict):
        raise ValueError("a JSON object is expected")
    if "event_type" in body:
        entity, _, action = str(body.get("event_type") or "").rpartition("_")
        record = body.get("data")
    else:
        entity = next((k for k in body if k in BOOKS_ENTITIES), "")
        action, record = "", body.get(entity)
    if entity not in BOOKS_ENTITIES:
        return None
    if not isinstance(record, dict):
        raise ValueError(f"the {entity} event carries no {entity} object")
    record_id = record.get(f"{entity}_id")
    if not record_id or not str(record_id).strip():
        raise ValueError(f"the {entity} event has no {entity}_id")
    modified = record.get("last_modified_time")
    return BooksEvent(BOOKS_ENTITIES[entity], str(record_id).strip(), action,
                      str(modified) if modified else None)


def transaction_key(org_id: str, side: str, module: str, record_id: str,
                    stamp: str | None = None) -> str:
    """A transactions-queue entry: one record of one organization, from one side's event,
    with the record's modified time a Books event reported (to tell our own echoes)."""
    return f"{org_id}|{side}|{module}|{record_id}|{stamp or ''}"


def record_of(key: str) -> str:
    """A transactions-queue entry without its stamp: the record it is about."""
    return key.rpartition("|")[0]


def read_key(key: str) -> tuple[str, str, str, str, str]:
    """(org, side, module, record id, stamp) of a transactions-queue entry."""
    org, side, module, record_id, stamp = key.split("|", 4)
    return org, side, module, record_id, stamp


# ------------------------------------------------------------------------ the runs
def run_deal_triggers(deal_ids: list[str]) -> dict | None:
    """The deal-triggers flow for these deals (primary organization), in this process; its
    summary. Requeues the deals while another deal-triggers run holds the lock."""
    from flows.deal_triggers import sync_deal_triggers

    primary, _ = connected_orgs()
    if lock_busy(primary, "deals"):
        raise Requeue(deal_ids, "a deal-triggers run is in progress")
    summary = _result(sync_deal_triggers(deal_ids=deal_ids, return_state=True), deal_ids)
    if summary is not None:
        LOG.info("deal triggers for %d deal(s): %s", len(deal_ids), summary.get("counts"))
    return summary


def run_transactions(keys: list[str]) -> list[dict]:
    """The transactions flow for queued keys: one run per organization, side and module.

    A group waits (requeued) while a run that writes transactions holds its organization's
    lock; then a Books record all of whose events echo crmbooks' own writes is dropped. Keys
    of a run refused by the run lock are requeued (all together, after the others ran).
    """
    from flows.transactions import sync_transactions

    groups: dict[tuple[str, str, str], list[str]] = {}
    for key in keys:
        org, side, module, _, _ = read_key(key)
        groups.setdefault((org, side, module), []).append(key)
    summaries, again = [], []
    for (org, side, module), group_keys in groups.items():
        writers = ("transactions",) if side == "crm" else ("transactions", "deals")
        if any(lock_busy(org, m) for m in writers):
            again += group_keys
            continue
        stamps: dict[str, set[str]] = {}
        for key in group_keys:
            stamps.setdefault(read_key(key)[3], set()).add(read_key(key)[4])
        ids = [i for i, seen in stamps.items()
               if side == "crm" or not all(own_stamp(org, i, s) for s in seen)]
        if not ids:
            LOG.info("%d Books event(s) of %s only echo crmbooks' own writes: no run",
                     len(group_keys), module)
            continue
        target = ({"crm_module": module, "crm_ids": ids} if side == "crm" else
                  {"books_resource": module, "books_ids": ids})
        try:
            summary = _result(sync_transactions(org_id=org, **target, return_state=True),
                              group_keys)
        except Requeue:
            again += group_keys
            continue
        if summary is not None:
            summaries.append(summary)
    if again:
        raise Requeue(again, "a transactions run is in progress")
    return summaries


def _result(state, ids: list[str]) -> dict | None:
    """A run's summary; Requeue when the run lock refused it; None when paused/disabled."""
    from flows.pipeline import RecordsFailed, RunInProgress
    from tasks.start import RunRefused

    try:
        return state.result()
    except RecordsFailed as exc:
        return exc.summary
    except RunInProgress as exc:  # another run of the module: run these once it ends
        raise Requeue(ids, str(exc)) from None
    except RunRefused as exc:  # paused or disabled: the catch-up run after resume covers it
        LOG.warning("not run: %s", exc)
        return None


def _authentic(given: str | None, expected: str) -> int | None:
    """None when `given` matches; the HTTP status to answer otherwise."""
    if not given:
        return 401
    return None if hmac.compare_digest(given.encode(), expected.encode()) else 403


def changed_fields(affected: Any) -> set[str]:
    """Field names of a notification's `affected_fields` ([{"<id>": ["Stage", …]}, …])."""
    fields: set[str] = set()
    for entry in affected if isinstance(affected, list) else []:
        if isinstance(entry, dict):
            for value in entry.values():
                fields |= {str(f) for f in value} if isinstance(value, list) else set()
        elif isinstance(entry, str):
            fields.add(entry)
    return fields


def books_webhook_ignored(org_id: str, event: BooksEvent | None) -> str | None:
    """Why an authentic Books event of a connected organization starts nothing (or None)."""
    primary, _ = connected_orgs()
    if event is None:
        return "not a transaction event"
    if event.action == "deleted":
        return "deletions are not synced"
    if org_id != primary:
        return "an extra organization syncs CRM → Books only (F4)"
    if not transactions_enabled(org_id):
        return "transactions are off for this organization"
    return None


def create_app(keys: dict[str, str], deals: Debouncer,
               transactions: Debouncer | None = None) -> FastAPI:
    """The receiver's routes: /crm/notify, /books/webhook[/{org_id}], /health."""
    app = FastAPI(title="crmbooks receiver", docs_url=None, redoc_url=None, openapi_url=None)
    seen = {"crm": 0, "books": 0, "rejected": 0, "ignored": 0}

    @app.post("/crm/notify")
    async def crm_notify(request: Request):
        """A CRM notification: {module, ids, operation, affected_fields, token, …}."""
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "a JSON object is expected"}, 400)
        status = _authentic(body.get("token"), keys["crm_token"])
        if status:
            seen["rejected"] += 1
            return JSONResponse({"error": "invalid channel token"}, status)
        seen["crm"] += 1
        ids = [str(i) for i in body.get("ids") or []]
        fields = changed_fields(body.get("affected_fields"))
        own_echo = bool(fields) and fields <= {CRM_ESTIMATE_FIELD, CRM_BOOKS_ID,
                                               "Modified_Time"}
        module = body.get("module")
        if body.get("operation") == "delete" or not ids or own_echo:
            pass
        elif module == "Deals":
            deals.submit(ids)
        elif module in TRANSACTION_MODULES and transactions is not None:
            orgs = await run_in_threadpool(transaction_orgs)
            transactions.submit([transaction_key(org, "crm", module, i)
                                 for org in orgs for i in ids])
        return {"accepted": len(ids)}

    async def books_webhook(request: Request, org_id: str | None):
        status = _authentic(request.headers.get(BOOKS_HEADER), keys["books_secret"])
        if status:
            seen["rejected"] += 1
            return JSONResponse({"error": "invalid webhook secret"}, status)
        primary, extras = await run_in_threadpool(connected_orgs)
        org_id = org_id or primary
        if org_id not in (primary, *extras):
            seen["rejected"] += 1
            return JSONResponse({"error": f"Books organization {org_id} is not connected"},
                                404)
        try:
            event = parse_books_event(json.loads(await request.body() or b"{}"))
        except ValueError as exc:  # JSONDecodeError included
            seen["rejected"] += 1
            return JSONResponse({"error": f"malformed Books webhook: {exc}"}, 400)
        seen["books"] += 1
        why = await run_in_threadpool(books_webhook_ignored, org_id, event)
        if why or transactions is None:
            seen["ignored"] += 1
            return {"accepted": 0, "ignored": why or "no transactions worker"}
        transactions.submit([transaction_key(org_id, "books", event.resource,
                                             event.record_id, event.modified)])
        return {"accepted": 1}

    @app.post("/books/webhook")
    async def books_webhook_primary(request: Request):
        """A Books webhook of the primary organization (the secret rides in a header)."""
        return await books_webhook(request, None)

    @app.post("/books/webhook/{org_id}")
    async def books_webhook_of(org_id: str, request: Request):
        """A Books webhook of one connected organization."""
        return await books_webhook(request, org_id)

    @app.get("/health")
    async def health():
        workers = {"deals": deals, **({"transactions": transactions} if transactions else {})}
        return {"ok": True, "pending": deals.pending(), "runs": deals.runs, "events": seen,
                "workers": {name: {"pending": w.pending(), "runs": w.runs,
                                   "requeued": w.requeued} for name, w in workers.items()}}

    app.state.seen = seen
    return app


def register_channel(runtime, notify_url: str, keys: dict[str, str]) -> dict:
    """Enable (or renew) the CRM notification channel; FatalError-like RuntimeError if refused."""
    expiry = (datetime.now(UTC) + timedelta(hours=CHANNEL_HOURS)).replace(microsecond=0)
    [item] = runtime.crm.watch([{
        "channel_id": keys["channel_id"], "events": list(CRM_EVENTS),
        "notify_url": notify_url, "token": keys["crm_token"],
        "channel_expiry": expiry.isoformat()}]) or [{}]
    if item.get("status") != "success":
        raise RuntimeError(f"the CRM refused the notification channel: {item.get('code')} "
                           f"{item.get('message')} ({(item.get('details') or {})})")
    return item


def books_webhook_urls(base_url: str) -> dict[str, str]:
    """Where each connected organization's Books webhooks go (primary first)."""
    primary, extras = connected_orgs()
    return {org: f"{base_url}/books/webhook/{org}" for org in (primary, *extras)}


def emulator_controls(books_url: str) -> str | None:
    """The emulator's control URL when Books is the emulator (it answers
    `/__emulator__/stats`), else None: real Books webhooks are configured in its UI."""
    base = books_url.rstrip("/")
    try:
        answer = httpx.get(f"{base}/__emulator__/stats", timeout=5)
        is_emulator = answer.status_code == 200 and "books_org" in answer.json()
    except (httpx.HTTPError, ValueError):
        return None
    return f"{base}/__emulator__" if is_emulator else None


def register_books_webhooks(controls: str, urls: dict[str, str], secret: str) -> None:
    """Tell the Books emulator to post each organization's events to its URL with the secret
    (what an operator configures in each Books organization's UI)."""
    for org, url in urls.items():
        httpx.post(f"{controls}/webhooks", timeout=5, json={
            "org_id": org, "url": url, "secret": secret, "header": BOOKS_HEADER,
        }).raise_for_status()


def unregister_books_webhooks(controls: str, orgs: Iterable[str]) -> None:
    """Stop the Books emulator's webhooks of these organizations."""
    for org in orgs:
        httpx.delete(f"{controls}/webhooks/{org}", timeout=5).raise_for_status()


class Receiver:
    """The receiver on a background thread: start(), stop(); `url` once started.

    `handler` / `transactions_handler` replace the flows the workers start (tests).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, public_url: str | None = None,
                 debounce_s: float = 0.3, handler: Callable[[list[str]], Any] | None = None,
                 watch: bool = True,
                 transactions_handler: Callable[[list[str]], Any] | None = None):
        self.host, self.public_url, self.watch = host, public_url, watch
        self.keys = load_secrets()
        self.deals = Debouncer(handler or run_deal_triggers, debounce_s)
        self.transactions = Debouncer(transactions_handler or run_transactions, debounce_s,
                                      name="transactions", group=record_of)
        self.app = create_app(self.keys, self.deals, transactions=self.transactions)
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, host=host, port=port, log_level="warning", access_log=False,
            lifespan="off"))
        self._thread: threading.Thread | None = None
        self._renew: threading.Timer | None = None
        self.url = ""
        self.books_urls: dict[str, str] = {}
        self.emulator: str | None = None  # the Books emulator's controls, when it is one

    def start(self, timeout_s: float = 15.0) -> Receiver:
        """Listen, then register the CRM channel pointing at /crm/notify and, against the
        emulators, the Books webhooks of every connected organization."""
        self._thread = threading.Thread(target=self._server.run, name="crmbooks-receiver",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the receiver could not listen on {self.host}")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = (self.public_url or f"http://{self.host}:{port}").rstrip("/")
        if self.watch:
            self._register()
            self._register_books()
        return self

    def _register(self) -> None:
        from crmbooks.runtime import get_runtime

        register_channel(get_runtime(), f"{self.url}/crm/notify", self.keys)
        LOG.info("CRM notification channel %s → %s/crm/notify", self.keys["channel_id"],
                 self.url)
        self._renew = threading.Timer(RENEW_EVERY_S, self._register)
        self._renew.daemon = True
        self._renew.start()

    def _register_books(self) -> None:
        from crmbooks.runtime import get_runtime

        self.books_urls = books_webhook_urls(self.url)
        self.emulator = emulator_controls(get_runtime().config.books_url)
        if self.emulator is not None:
            register_books_webhooks(self.emulator, self.books_urls, self.keys["books_secret"])
            LOG.info("Books emulator webhooks → %s", ", ".join(self.books_urls.values()))

    def stop(self, unwatch: bool = True) -> None:
        """Stop listening, finish the run in progress, and (by default) drop the channel and
        the emulator's webhooks."""
        if self._renew is not None:
            self._renew.cancel()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.deals.stop()
        self.transactions.stop()
        if unwatch and self.watch:
            from crmbooks.runtime import get_runtime

            try:
                get_runtime().crm.unwatch([self.keys["channel_id"]])
            except Exception as exc:  # the channel expires by itself anyway
                LOG.warning("could not remove the CRM channel: %s", exc)
            if self.emulator is not None:
                try:
                    unregister_books_webhooks(self.emulator, self.books_urls)
                except httpx.HTTPError as exc:  # the emulator may be gone first
                    LOG.warning("could not remove the emulator's Books webhooks: %s", exc)


def catch_up() -> None:
    """One catch-up run of the deal triggers (primary organization) and of the transactions
    of every organization that syncs them (at receiver start)."""
    from flows.deal_triggers import sync_deal_triggers
    from flows.transactions import sync_transactions

    runs = [(sync_deal_triggers, {})] + [(sync_transactions, {"org_id": org})
                                         for org in transaction_orgs()]
    for flow, kwargs in runs:
        try:
            flow(**kwargs, return_state=True)
        except Exception as exc:  # the scheduled catch-up tries again
            LOG.warning("catch-up %s did not run: %s", flow.name, exc)


def serve(host: str = "127.0.0.1", port: int = 8765, public_url: str | None = None) -> None:
    """`crmbooks webhook`: serve in the foreground until Ctrl-C."""
    import signal

    def _terminate(*_):  # a supervisor's SIGTERM stops it as cleanly as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    receiver = Receiver(host, port, public_url).start()
    # Catch up on what changed while no receiver listened (this also starts Prefect's API
    # client, so the first event does not pay for it).
    threading.Thread(target=catch_up, name="catch-up", daemon=True).start()
    print(describe(receiver), flush=True)
    try:
        while receiver._thread is not None and receiver._thread.is_alive():
            receiver._thread.join(timeout=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()


def describe(receiver: Receiver) -> str:
    """What `crmbooks webhook` prints: where events arrive and how Books must send them."""
    return "\n".join([
        f"crmbooks receiver on {receiver.url}: CRM notifications at /crm/notify (channel "
        f"{receiver.keys['channel_id']}).", *books_setup(receiver), "Ctrl-C stops."])


def books_setup(receiver: Receiver) -> list[str]:
    """Where each organization's Books webhooks go: registered with the emulator, or what to
    configure in each real Books organization (the secret itself is never printed)."""
    if receiver.emulator is not None:
        return ["Books webhooks registered with the emulator: " +
                ", ".join(f"{org} → {url}" for org, url in receiver.books_urls.items())]
    return [f"Books webhooks: in each organization, Settings > Workflow Actions > Webhooks, "
            f"POST to its URL below with the header {BOOKS_HEADER} (its secret is in "
            f"{state_file()}), from workflow rules on estimates, sales orders, invoices and "
            "purchase orders:",
            *(f"  {org}: {url}" for org, url in receiver.books_urls.items())]
