"""The receiver's worker queue: ids in, debounced batches out, on one thread per flow.

Events arrive in bursts (several edits of one record, duplicated or reordered notifications),
while the flows they start read the records as they are now. So each flow has its own worker
(a Debouncer): ids run once they have been quiet for `delay_s`, and a burst makes one run. A
handler that cannot run some ids yet (another run holds the store's run lock) raises
:class:`Requeue` and gets them back after the delay, until it can.

Kept apart from the HTTP app and from the event routing because it knows neither: it only
times and batches strings, which is what its unit tests exercise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

# The receiver's log: one logger name for the server, the routing and the queue.
LOG = logging.getLogger("crmbooks.receiver")


class Requeue(Exception):
    """Raised by a Debouncer handler: these ids could not run yet (a run lock is held)."""

    def __init__(self, ids: Iterable[str], reason: str = ""):
        super().__init__(reason)
        self.ids = list(ids)

    def __reduce__(self):
        # Exception pickles its args only, which are not this constructor's arguments.
        return (type(self), (self.ids, self.args[0] if self.args else ""))



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
        self._running: set[str] = set()  # the ids of the batch being run
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

    def holds(self, key: str) -> bool:
        """True while `key` is queued or running."""
        with self._cond:
            return key in self._running or key in self._ids.get(self.group(str(key)), ())

    def idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until nothing is queued or running (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.pending():
                return True
            time.sleep(0.05)
        return False

    def stop(self, wait: bool = True) -> None:
        """Stop the worker after the run in progress; `wait=False` only tells it to, so that
        several workers wind down at once (then :meth:`join`)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if wait:
            self.join()

    def join(self, timeout_s: float = 30.0) -> None:
        """Wait for the worker to end (after a stop)."""
        self._thread.join(timeout=timeout_s)

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
                self.busy, self._running = True, set(ready)
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
                    self.busy, self._running = False, set()
                    self.runs += 1

