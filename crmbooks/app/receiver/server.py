"""The event receiver (`crmbooks webhook`): CRM notifications and Books webhooks → runs.

At start it registers a CRM notification channel (`actions/watch`) for Deals, the
transaction modules and the modules of customers, vendors and items, with a random channel
token that is kept in CRMBOOKS_HOME/receiver.json (mode 0600) and never logged; Books
webhooks must carry the shared secret kept in the same file in their `X-Webhook-Secret`
header. An event with a missing or wrong token/secret is
rejected (401 missing, 403 wrong) and starts nothing.

Books webhooks are per organization: each connected organization posts to
`/books/webhook/<organization id>` (Books' record payloads carry no organization id, and a
workflow webhook is configured per organization anyway); `/books/webhook` is the primary
organization's. An organization that is not connected is answered 404. Against the emulators
the receiver registers these URLs itself (`/__emulator__/webhooks`); with real Books they are
configured by hand (Settings > Workflow Actions > Webhooks, header X-Webhook-Secret).

This module is the receiver's HTTP side and server: the app (authenticate, parse, queue), the
CRM channel and Books webhook registration, the Receiver that runs them, what
`crmbooks webhook` prints, and the receiver as a service of `crmbooks up`. What an event
starts, and when it waits or starts nothing, is decided in the routing module beside this one;
the queues that debounce events into runs are in the debounce module; so each can be read, and
tested, without the others.

With the receiver down nothing is lost: the scheduled catch-up runs read every record changed
since their cursors.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from crmbooks.app.receiver import intake
from crmbooks.app.receiver.debounce import Debouncer
from crmbooks.app.receiver.inbox import POLL_S, DurableHandler, Requeuer
from crmbooks.app.receiver.routing import (
    FIGURES,
    RECORD_CRM_MODULES,
    TRANSACTION_MODULES,
    books_webhook_ignored,
    catch_up,
    connected_orgs,
    crm_echo_only,
    figures_ignored,
    parse_books_event,
    record_of,
    record_orgs,
    run_deal_triggers,
    run_records,
    run_transactions,
    transaction_key,
    transaction_orgs,
)
from crmbooks.runtime import NotConnected
from crmbooks.store.engine import crmbooks_home
from crmbooks.sync.registry import deal_triggers

LOG = logging.getLogger("crmbooks.receiver")
BOOKS_HEADER = "X-Webhook-Secret"
CRM_EVENTS = tuple(f"{module}.all" for module in (deal_triggers().crm_module,
                                                  *TRANSACTION_MODULES, *RECORD_CRM_MODULES))
CHANNEL_HOURS = 24  # channels are renewed well before they expire
RENEW_EVERY_S = 6 * 3600
CATCH_UP_EVERY_S = 2 * 3600  # as the deal-triggers and transactions schedules


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


def _authentic(given: str | None, expected: str) -> int | None:
    """None when `given` matches; the HTTP status to answer otherwise."""
    if not given:
        return 401
    # surrogatepass: a JSON string may hold lone surrogates ("\\ud800"), which UTF-8 refuses
    return None if hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                                       expected.encode()) else 403


def _refused(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status)


async def _json_body(request: Request) -> Any:
    """The request's JSON, read within the size limit (intake.Refused otherwise)."""
    intake.check_headers(request.headers)
    return intake.parse_json(await intake.read_limited(request.stream()))


def create_app(keys: dict[str, str], deals: Debouncer,
               transactions: Debouncer | None = None, store=None,
               records: Debouncer | None = None) -> FastAPI:
    """The receiver's routes: /crm/notify, /books/webhook[/{org_id}], /health.

    Every request that is not an event it accepts is answered with a 4xx and
    `{"error": <one line>}` (see the intake module), and queues nothing. An event it accepts
    is written to the inbox of `store` first (see the inbox module): a 2xx means it is kept
    until a run has handled it; a 503 that it could not be kept (the sender may send it
    again).
    """

    async def keep(worker: Debouncer, keys: list[str], org_id: str | list[str] = "") -> None:
        """Write accepted events to the inbox, then queue them on their worker."""
        if store is not None:
            try:
                await run_in_threadpool(store.accept_events, worker.name, keys, org_id)
            except Exception as exc:
                LOG.error("could not keep %d event(s): %s", len(keys), exc)
                raise intake.Refused(503, "the event could not be stored: send it again "
                                     "later") from None
        worker.submit(keys)

    app = FastAPI(title="crmbooks receiver", docs_url=None, redoc_url=None, openapi_url=None,
                  redirect_slashes=False)
    seen = {"crm": 0, "books": 0, "rejected": 0, "ignored": 0}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        seen["rejected"] += 1
        reason = {404: "not found: events go to /crm/notify and /books/webhook/ORG_ID",
                  405: "method not allowed: events are POSTed"}.get(exc.status_code,
                                                                    str(exc.detail))
        return _refused(exc.status_code, reason)

    @app.exception_handler(intake.Refused)
    async def refused(_request: Request, exc: intake.Refused):
        seen["rejected"] += 1
        return _refused(exc.status, exc.reason)

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception):  # a bug: said in one line, logged
        LOG.error("the receiver failed on a request", exc_info=exc)
        return _refused(500, "internal error of the receiver (see its log)")

    @app.exception_handler(NotConnected)
    async def not_connected(_request: Request, exc: NotConnected):
        return _refused(503, str(exc))

    @app.post("/crm/notify")
    async def crm_notify(request: Request):
        """A CRM notification: {module, ids, operation, affected_fields, token, …}."""
        body = intake.json_object(await _json_body(request))
        status = _authentic(intake.token(body.get("token")), keys["crm_token"])
        if status:
            raise intake.Refused(status, "invalid channel token" if status == 403
                                 else "no channel token")
        event = intake.crm_notification(body)
        seen["crm"] += 1
        if event.operation == "delete":
            return {"accepted": 0, "ignored": "deletions are not synced"}
        if crm_echo_only(event.affected_fields):
            return {"accepted": 0, "ignored": "only crmbooks' own write-back changed"}
        if event.module == deal_triggers().crm_module:
            await keep(deals, event.ids)
        elif event.module in TRANSACTION_MODULES and transactions is not None:
            orgs = await run_in_threadpool(transaction_orgs)
            await keep(transactions, [transaction_key(org, "crm", event.module, i)
                                      for org in orgs for i in event.ids],
                       [org for org in orgs for _ in event.ids])
        elif event.module in RECORD_CRM_MODULES and records is not None:
            orgs = await run_in_threadpool(record_orgs, event.module)
            if not orgs:
                seen["ignored"] += 1
                return {"accepted": 0, "ignored": f"no module that is on takes {event.module} "
                                                  "under its settings"}
            module = RECORD_CRM_MODULES[event.module]
            await keep(records, [transaction_key(org, "crm", module, i)
                                 for org in orgs for i in event.ids],
                       [org for org in orgs for _ in event.ids])
        else:
            seen["ignored"] += 1
            return {"accepted": 0, "ignored": "events of this module start nothing"}
        return {"accepted": len(event.ids)}

    async def books_webhook(request: Request, org_id: str | None):
        intake.check_headers(request.headers)
        status = _authentic(request.headers.get(BOOKS_HEADER), keys["books_secret"])
        if status:
            raise intake.Refused(status, "invalid webhook secret" if status == 403
                                 else f"no webhook secret (header {BOOKS_HEADER})")
        if org_id is not None:
            intake.org_in_path(org_id)
        primary, extras = await run_in_threadpool(connected_orgs)
        org_id = org_id or primary
        if org_id not in (primary, *extras):
            raise intake.Refused(404, f"Books organization {org_id} is not connected")
        try:
            event = parse_books_event(await _json_body(request))
        except intake.Refused:
            raise
        except ValueError as exc:
            raise intake.Refused(400, f"malformed Books webhook: {exc}") from None
        seen["books"] += 1
        why = await run_in_threadpool(books_webhook_ignored, org_id, primary, event)
        worker, module = ((records, event.record_module) if event and event.record_module
                          else (transactions, event.resource if event else ""))
        accepted = 0
        # An invoice, credit note or payment also moves its customer's figures: a targeted
        # customers run for that customer, queued on the records worker.
        if records is not None and not await run_in_threadpool(figures_ignored, org_id,
                                                               primary, event):
            await keep(records, [transaction_key(org_id, "books", FIGURES,
                                                 event.figures_of)], org_id)
            accepted = 1
        if why or worker is None:
            if accepted:
                return {"accepted": accepted}
            seen["ignored"] += 1
            return {"accepted": 0, "ignored": why or "no worker for these events"}
        await keep(worker, [transaction_key(org_id, "books", module, event.record_id,
                                            event.modified)], org_id)
        return {"accepted": accepted + 1}

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
        workers = {"deals": deals, **({"transactions": transactions} if transactions else {}),
                   **({"records": records} if records else {})}
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

    `handler` / `transactions_handler` replace the flows the workers start (tests). Accepted
    events are kept in the inbox of `store` (default: the state database) until a run has
    handled them; `poll_s` is how often due ones are queued again, `retry_first_s` the
    delay before a failed run's events are first tried again (doubling after that).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, public_url: str | None = None,
                 debounce_s: float = 0.3, handler: Callable[[list[str]], Any] | None = None,
                 watch: bool = True,
                 transactions_handler: Callable[[list[str]], Any] | None = None,
                 store=None, poll_s: float = POLL_S, retry_first_s: float = 10.0,
                 records_handler: Callable[[list[str]], Any] | None = None):
        from crmbooks.runtime import open_store

        self.host, self.public_url, self.watch = host, public_url, watch
        self.keys = load_secrets()
        self.store = store or open_store()
        self.deals = Debouncer(DurableHandler(self.store, "deal-triggers",
                                              handler or run_deal_triggers, retry_first_s),
                               debounce_s, name="deal-triggers")
        self.transactions = Debouncer(
            DurableHandler(self.store, "transactions", transactions_handler or run_transactions,
                           retry_first_s),
            debounce_s, name="transactions", group=record_of)
        self.records = Debouncer(
            DurableHandler(self.store, "records", records_handler or run_records,
                           retry_first_s),
            debounce_s, name="records", group=record_of)
        self.requeuer = Requeuer(self.store, [self.deals, self.transactions, self.records],
                                 poll_s)
        self.app = create_app(self.keys, self.deals, transactions=self.transactions,
                              store=self.store, records=self.records)
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
        self.requeuer.start()  # what a stopped or killed receiver left, then failed runs
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
        self.requeuer.stop()
        workers = (self.deals, self.transactions, self.records)
        for worker in workers:  # all at once: each may be finishing a run
            worker.stop(wait=False)
        for worker in workers:
            worker.join()
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


def serve(host: str = "127.0.0.1", port: int = 8765, public_url: str | None = None,
          catch_up_every_s: float = CATCH_UP_EVERY_S, debounce_s: float = 0.3) -> None:
    """`crmbooks webhook`: serve in the foreground until Ctrl-C; with `catch_up_every_s`,
    a catch-up run at start and then that often (0: none)."""
    import signal

    def _terminate(*_):  # a supervisor's SIGTERM stops it as cleanly as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    receiver = Receiver(host, port, public_url, debounce_s=debounce_s).start()
    stop = threading.Event()
    if catch_up_every_s:
        # Catch up on what changed while no receiver listened (this also starts Prefect's
        # API client, so the first event does not pay for it), then on the schedule's rhythm.
        threading.Thread(target=catch_up_every, args=(catch_up_every_s, stop),
                         name="catch-up", daemon=True).start()
    print(describe(receiver), flush=True)
    try:
        while receiver._thread is not None and receiver._thread.is_alive():
            receiver._thread.join(timeout=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        receiver.stop()


def catch_up_every(every_s: float, stop: threading.Event) -> None:
    """The catch-up runs, now and then every `every_s` until `stop` is set."""
    while not stop.is_set():
        try:
            catch_up()
        except Exception as exc:  # not connected, the database away: the next one tries
            LOG.warning("catch-up did not run: %s", exc)
        stop.wait(every_s)


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
            f"{state_file()}), from workflow rules on estimates, sales orders, invoices, "
            "purchase orders, contacts and items:",
            *(f"  {org}: {url}" for org, url in receiver.books_urls.items())]


@contextlib.contextmanager
def event_receiver(ctx):
    """The event receiver as a service of `crmbooks up` (`ctx` is what `up` is running: its
    `console` prints where events arrive): deal, transaction, customer, vendor and item
    changes start runs within seconds.

    It registers a CRM notification channel pointing at itself and accepts Books webhooks of
    every connected organization (registered with the emulators when they are the Zoho side;
    printed for the operator to configure in real Books); a receiver that cannot start is
    reported and `up` goes on (the schedules catch up).
    """
    try:
        receiver = Receiver().start()
    except Exception as exc:  # noqa: BLE001 - the rest of `up` is still useful without it
        if ctx.console is not None:
            ctx.console.print(f"[yellow]Event receiver not started: {exc}[/]")
        yield None
        return
    if ctx.console is not None:
        ctx.console.print(f"Event receiver: {receiver.url}", highlight=False)
        for line in books_setup(receiver):
            ctx.console.print(line, highlight=False, soft_wrap=True)
    try:
        yield receiver
    finally:
        receiver.stop()
