"""CRM instant notifications (`/actions/watch`): channel bookkeeping and asynchronous delivery.

A channel subscribes to events ``<Module>.create|edit|delete|all`` and gets, for every write
request that touches the module, one POST to its notify URL with the Zoho callback body:
``{"server_time", "query_params", "module", "resource_uri", "ids", "affected_fields",
"operation", "channel_id", "token"}`` (zoho.com/crm/developer/docs/api/v8/notifications/).
Deliveries go through a queue drained by a daemon thread, so an API request never waits for
(or fails because of) the subscriber.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from urllib.parse import parse_qsl, urlsplit

import httpx

LOG = logging.getLogger("emulators.crm.notify")
OPERATIONS = {"create": "insert", "edit": "update", "delete": "delete"}


class Notifier:
    """Channels plus a background sender."""

    def __init__(self, timeout_s: float = 2.0):
        self.channels: dict[str, dict] = {}
        self.timeout_s = timeout_s
        self.sent: list[dict] = []  # delivered payloads, newest last (for tests / debugging)
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every channel (on reset)."""
        self.channels.clear()
        self.sent.clear()

    def publish(self, module: str, operation: str, ids: list[str], affected: list,
                base_url: str, now_epoch_ms: int) -> None:
        """Queue one callback per live channel subscribed to `module`.`operation`."""
        if not ids:
            return
        event = {v: k for k, v in OPERATIONS.items()}[operation]
        for channel in list(self.channels.values()):
            if channel["expiry_epoch"] <= time.time():
                continue
            wanted = set(channel["events"])
            if f"{module}.all" not in wanted and f"{module}.{event}" not in wanted:
                continue
            url = channel["notify_url"]
            payload = {
                "server_time": now_epoch_ms,
                "query_params": dict(parse_qsl(urlsplit(url).query)),
                "module": module,
                "resource_uri": f"{base_url}/crm/v8/{module}",
                "ids": list(ids),
                "affected_fields": affected if operation == "update" else [],
                "operation": operation,
                "channel_id": channel["channel_id"],
                "token": channel.get("token"),
            }
            self._ensure_worker()
            self._queue.put((url, payload))

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="crm-notify",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                url, payload = self._queue.get()
                try:
                    client.post(url, json=payload)
                    self.sent.append(payload)
                    del self.sent[:-1000]
                except httpx.HTTPError as exc:
                    # Zoho does not retry failed callbacks either; just note it.
                    LOG.info("notification to %s failed: %s", url, exc)
                finally:
                    self._queue.task_done()

    def drain(self, timeout_s: float = 5.0) -> None:
        """Wait until queued callbacks are sent (tests)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
