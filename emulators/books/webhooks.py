"""Books webhooks, emulated: one receiver URL + shared secret per organization.

Real Books sends webhooks from workflow rules configured in its UI, with user-defined headers
(Settings > Workflow Actions > Webhooks, as Zoho's Books help describes them); their default
payload is one key named after the entity, `{"invoice": {…}}`, `{"creditnote": {…}}`,
`{"payment": {…}}` (a customer payment; third-party trigger catalogues show that shape). The
emulator sends that key and, for receivers that want to know the event without a workflow
rule per event, `"event_type": "<entity>_<created|updated|deleted>"` and the same record as
`"data"`, with the secret in one header. Delivery runs on a
daemon thread fed by a queue, so API requests never wait for the receiver; failures are
dropped (a short timeout, no retries), as a receiver must not rely on every webhook arriving.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass

import httpx

TIMEOUT_S = 2.0


def _default(value):
    return float(value) if hasattr(value, "quantize") else str(value)


@dataclass(frozen=True)
class Hook:
    """Where and how one organization's events are delivered."""

    url: str
    secret: str
    header: str


class WebhookDispatcher:
    """A queue of pending deliveries and the daemon thread that posts them."""

    def __init__(self):
        self.hooks: dict[str, Hook] = {}
        self.queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0

    def register(self, org_id: str, url: str, secret: str, header: str) -> None:
        """Send this organization's events to `url` with `header: secret`."""
        self.hooks[org_id] = Hook(url, secret, header)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="books-webhooks",
                                                daemon=True)
                self._thread.start()

    def unregister(self, org_id: str) -> None:
        """Stop sending this organization's events."""
        self.hooks.pop(org_id, None)

    def wants(self, org_id: str) -> bool:
        """Whether events of this organization are delivered anywhere."""
        return org_id in self.hooks

    def send(self, org_id: str, event_type: str, record: dict) -> None:
        """Queue one event; the record is serialised now, so later edits do not leak in."""
        hook = self.hooks.get(org_id)
        if hook is None:
            return
        entity = event_type.rpartition("_")[0]
        body = json.dumps({"event_type": event_type, "data": record, entity: record},
                          default=_default, ensure_ascii=False)
        self.queue.put((hook, body))

    def _run(self) -> None:
        with httpx.Client(timeout=TIMEOUT_S) as client:
            while True:
                hook, body = self.queue.get()
                try:
                    client.post(hook.url, content=body.encode(),
                                headers={"Content-Type": "application/json",
                                         hook.header: hook.secret})
                    self.sent += 1
                except httpx.HTTPError:
                    self.failed += 1
                    logging.getLogger("emulators").debug("webhook to %s failed", hook.url)
                finally:
                    self.queue.task_done()
