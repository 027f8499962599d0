"""Helpers of the event receiver tests (test_receiver, test_receiver_transactions,
test_receiver_records): wait on a
condition, never on time, and settle the emulator's deliveries and the receiver's workers."""

from __future__ import annotations

import time

from crmbooks.app.receiver.server import Receiver


def wait_for(check, timeout_s: float = 20.0):
    """The first truthy value of `check()`, polled until `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s")


def settle(server, receiver: Receiver, rounds: int = 1) -> None:
    """Every event the emulator queued is delivered and every run it started has ended; with
    `rounds` > 1, again for the events those runs' own writes queued (settle until none are
    left)."""
    for _ in range(rounds):
        server.emu.crm.notifier.drain()
        server.emu.books.webhooks.queue.join()
        assert receiver.deals.idle(30) and receiver.transactions.idle(30) \
            and receiver.records.idle(30)
