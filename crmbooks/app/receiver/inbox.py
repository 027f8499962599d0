"""The receiver's events made durable: what its workers run is first kept in the state
database (the store's inbox), and marked done only once a run has handled it.

- The HTTP app writes each accepted event to the inbox before it answers 2xx, then queues it
  on its worker (the debounce module beside this one) for a run within seconds.
- :class:`DurableHandler` wraps a worker's handler: it takes the inbox events of the keys
  about to run (so two processes never run one event at once), runs, and marks them done;
  a run that fails (the flow could not start, the Prefect API is unreachable, …) puts them
  back with a growing delay (10 s, 20 s, … up to 30 min; after 8 attempts they are failed
  and `crmbooks status` lists them); ids a run lock keeps waiting are given back untried.
- :class:`Requeuer` queues again what is due and free: at start (the events of a receiver
  that was killed, whose process is gone) and every few seconds (failed runs whose delay is
  over).

Runs read the records as they are now, so an event run twice (a receiver killed after its
run wrote but before it marked the event done) writes nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from crmbooks.app.receiver.debounce import Debouncer, Requeue

LOG = logging.getLogger("crmbooks.receiver")
#: How often due events are queued again.
POLL_S = 5.0
#: How often done events older than a week are deleted.
PRUNE_EVERY_S = 3600.0


def one_line(exc: BaseException) -> str:
    """An error in one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


class DurableHandler:
    """A worker's handler that runs only inbox events it has taken, and settles them."""

    def __init__(self, store, worker: str, handler: Callable[[list[str]], Any],
                 retry_first_s: float = 10.0):
        self.store, self.worker, self.handler = store, worker, handler
        self.retry_first = timedelta(seconds=retry_first_s)
        self.failed_runs = 0

    def __call__(self, keys: list[str]) -> Any:
        events = self.store.take_inbox(self.worker, keys)
        if not events:
            return None  # handled already (by another process, or an earlier run)
        keys = sorted({e.key for e in events})
        try:
            result = self.handler(keys)
        except Requeue as again:
            waiting = set(again.ids)
            self.store.release_inbox([e.id for e in events if e.key in waiting])
            self.store.finish_inbox([e.id for e in events if e.key not in waiting])
            raise
        except Exception as exc:
            self.failed_runs += 1
            self.store.fail_inbox([e.id for e in events], one_line(exc),
                                  first=self.retry_first)
            raise
        self.store.finish_inbox([e.id for e in events])
        return result


class Requeuer:
    """Queues the inbox's due, free events on their workers: now, then every `poll_s`."""

    def __init__(self, store, workers: list[Debouncer], poll_s: float = POLL_S):
        self.store, self.workers, self.poll_s = store, workers, poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="inbox", daemon=True)
        self._pruned = 0.0

    def start(self) -> Requeuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def poll(self) -> int:
        """Queue what is due now; how many keys were queued."""
        queued = 0
        for worker in self.workers:
            keys = [k for k in self.store.inbox_due_keys(worker.name) if not worker.holds(k)]
            if keys:
                LOG.info("%s: %d event(s) from the inbox queued again", worker.name, len(keys))
                worker.submit(keys)
                queued += len(keys)
        if time.monotonic() - self._pruned > PRUNE_EVERY_S:
            self.store.prune_inbox()
            self._pruned = time.monotonic()
        return queued

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # the database may be away for a while: try again
                LOG.warning("could not read the receiver's inbox: %s", one_line(exc))
            self._stop.wait(self.poll_s)
