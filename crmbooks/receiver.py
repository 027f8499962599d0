"""The event receiver (`crmbooks webhook`): CRM notifications and Books webhooks → deal triggers.

At start it registers a CRM notification channel (`actions/watch`) for Deals and the
transaction modules, with a random channel token that is kept in CRMBOOKS_HOME/receiver.json
(mode 0600) and never logged; Books webhooks must carry the shared secret kept in the same
file in their `X-Webhook-Secret` header. An event with a missing or wrong token/secret is
rejected (401 missing, 403 wrong) and starts nothing.

A CRM Deals event queues its deal ids; a worker thread runs the deal-triggers flow in this
process for the ids that have been quiet for `debounce_s` (a burst of edits to one deal makes
one run). Events of Quotes, Sales_Orders, Invoices and Purchase_Orders run the transactions
flow (F14) for their records the same way, on a second worker. Both flows read the records as
they are now, so repeated, late or out-of-order events are harmless. With the receiver down
nothing is lost: the scheduled catch-up runs read every record changed since their cursors.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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


class Debouncer:
    """Ids in, batches out: an id runs once it has been quiet for `delay_s`, on one thread."""

    def __init__(self, handler: Callable[[list[str]], Any], delay_s: float = 0.3):
        self.handler, self.delay_s = handler, delay_s
        self._due: dict[str, float] = {}
        self._cond = threading.Condition()
        self._stop = False
        self.runs = 0
        self.busy = False
        self._thread = threading.Thread(target=self._loop, name="deal-triggers", daemon=True)
        self._thread.start()

    def submit(self, ids: list[str]) -> None:
        """Queue ids (again): each one's run moves to `delay_s` from now."""
        with self._cond:
            due = time.monotonic() + self.delay_s
            for i in ids:
                self._due[str(i)] = due
            self._cond.notify()

    def pending(self) -> int:
        """Ids waiting or running."""
        with self._cond:
            return len(self._due) + (1 if self.busy else 0)

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
                    ready = [i for i, due in self._due.items() if due <= now]
                    if ready:
                        break
                    wait = min(self._due.values(), default=now + 1.0) - now
                    self._cond.wait(timeout=max(wait, 0.01))
                if self._stop:
                    return
                for i in ready:
                    del self._due[i]
                self.busy = True
            try:
                self.handler(ready)
            except Exception:  # one bad run must not stop the receiver
                LOG.exception("deal-triggers run for %d deal(s) failed", len(ready))
            finally:
                with self._cond:
                    self.busy = False
                    self.runs += 1


def run_deal_triggers(deal_ids: list[str]) -> dict | None:
    """The deal-triggers flow for these deals, in this process; its summary."""
    from flows.deal_triggers import sync_deal_triggers
    from flows.pipeline import RecordsFailed
    from tasks.start import RunRefused

    state = sync_deal_triggers(deal_ids=deal_ids, return_state=True)
    try:
        summary = state.result()
    except RecordsFailed as exc:
        summary = exc.summary
    except RunRefused as exc:  # paused or disabled: the catch-up run after resume covers it
        LOG.warning("deal triggers not run: %s", exc)
        return None
    LOG.info("deal triggers for %d deal(s): %s", len(deal_ids),
             (summary or {}).get("counts"))
    return summary


def run_transactions(keys: list[str]) -> list[dict]:
    """The transactions flow for queued `Module:id` keys, one run per CRM module."""
    from flows.pipeline import RecordsFailed
    from flows.transactions import sync_transactions
    from tasks.start import RunRefused

    by_module: dict[str, list[str]] = {}
    for key in keys:
        module, _, record_id = key.partition(":")
        by_module.setdefault(module, []).append(record_id)
    summaries = []
    for module, ids in by_module.items():
        state = sync_transactions(crm_module=module, crm_ids=ids, return_state=True)
        try:
            summaries.append(state.result())
        except RecordsFailed as exc:
            summaries.append(exc.summary)
        except RunRefused as exc:  # paused or disabled: the catch-up run covers it
            LOG.warning("transactions not run: %s", exc)
    return summaries


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


def create_app(keys: dict[str, str], deals: Debouncer,
               on_books: Callable[[dict], Any] | None = None,
               transactions: Debouncer | None = None) -> FastAPI:
    """The receiver's routes: /crm/notify, /books/webhook, /health."""
    app = FastAPI(title="crmbooks receiver", docs_url=None, redoc_url=None, openapi_url=None)
    seen = {"crm": 0, "books": 0, "rejected": 0}

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
            transactions.submit([f"{module}:{i}" for i in ids])
        return {"accepted": len(ids)}

    @app.post("/books/webhook")
    async def books_webhook(request: Request):
        """A Books webhook: {event_type, data}; the shared secret rides in a header."""
        status = _authentic(request.headers.get(BOOKS_HEADER), keys["books_secret"])
        if status:
            seen["rejected"] += 1
            return JSONResponse({"error": "invalid webhook secret"}, status)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return JSONResponse({"error": "a JSON object is expected"}, 400)
        seen["books"] += 1
        if on_books is not None and isinstance(body, dict):
            on_books(body)
        return {"accepted": 1}

    @app.get("/health")
    async def health():
        return {"ok": True, "pending": deals.pending(), "runs": deals.runs, "events": seen}

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


class Receiver:
    """The receiver on a background thread: start(), stop(); `url` once started."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, public_url: str | None = None,
                 debounce_s: float = 0.3, handler: Callable[[list[str]], Any] | None = None,
                 watch: bool = True):
        self.host, self.public_url, self.watch = host, public_url, watch
        self.keys = load_secrets()
        self.deals = Debouncer(handler or run_deal_triggers, debounce_s)
        self.transactions = Debouncer(run_transactions, debounce_s)
        self.app = create_app(self.keys, self.deals, transactions=self.transactions)
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, host=host, port=port, log_level="warning", access_log=False,
            lifespan="off"))
        self._thread: threading.Thread | None = None
        self._renew: threading.Timer | None = None
        self.url = ""

    def start(self, timeout_s: float = 15.0) -> Receiver:
        """Listen, then register the CRM channel pointing at /crm/notify."""
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
        return self

    def _register(self) -> None:
        from crmbooks.runtime import get_runtime

        register_channel(get_runtime(), f"{self.url}/crm/notify", self.keys)
        LOG.info("CRM notification channel %s → %s/crm/notify", self.keys["channel_id"],
                 self.url)
        self._renew = threading.Timer(RENEW_EVERY_S, self._register)
        self._renew.daemon = True
        self._renew.start()

    def stop(self, unwatch: bool = True) -> None:
        """Stop listening, finish the run in progress, and (by default) drop the channel."""
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


def catch_up() -> None:
    """One catch-up run of the deal triggers and the transactions (at receiver start)."""
    from flows.deal_triggers import sync_deal_triggers
    from flows.transactions import sync_transactions

    for flow in (sync_deal_triggers, sync_transactions):
        try:
            flow(return_state=True)
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
    print(f"crmbooks receiver on {receiver.url}: CRM notifications at /crm/notify (channel "
          f"{receiver.keys['channel_id']}); Books webhooks at /books/webhook with header "
          f"{BOOKS_HEADER} (its secret is in {state_file()}). Ctrl-C stops.", flush=True)
    try:
        while receiver._thread is not None and receiver._thread.is_alive():
            receiver._thread.join(timeout=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
