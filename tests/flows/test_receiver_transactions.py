"""End to end: transactions through the event receiver, both ways.

The emulators deliver CRM notifications and Books webhooks to a receiver in this process,
which runs the real transactions flow. Waiting is on conditions (the record changed, the
emulator's delivery queues drained, the receiver's workers idle), never on time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from crmbooks.app.receiver.server import BOOKS_HEADER, Receiver
from crmbooks.runtime import get_runtime
from support import transactions as transactions_support
from support.receiver import settle, wait_for
from support.transactions import ALL, books_by_crm_id, crm_create, lines

pytestmark = pytest.mark.settings(transactions={"enabled": True, "modules": ALL})


#: A run's own writes (both ways) queue more events: settle that many times, until none are left.
ROUNDS = 3


def after_stamp(stamp: str) -> None:
    """Wait until the clock has left the whole second of a Books stamp: a change made in the
    same second as crmbooks' own write carries the same stamp, so it reads as that write's
    echo (the stamps' resolution, shared with the flows' echo detection)."""
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z")
    wait_for(lambda: datetime.now(UTC).replace(microsecond=0) > moment)


def written(run) -> int:
    return sum(run.counts[s][k] for s in ("books", "crm") for k in ("created", "updated"))


def test_books_changes_reach_the_crm_through_webhooks_and_echoes_start_nothing(
        store, emu_reset, linked):
    receiver = Receiver(debounce_s=0.2).start()
    crm = emu_reset.emu.crm
    try:
        # CRM → Books (a CRM notification). Our Books write and our CRM write-back of its id
        # come back as events, and start no run: one run in the history.
        quote = crm_create("Quotes", {"Subject": "Through the receiver", "Account_Name": {
            "id": linked["account"]}, "Quoted_Items": lines(linked)})
        [estimate] = wait_for(lambda: books_by_crm_id(emu_reset, "estimates", quote))
        wait_for(lambda: crm.records("Quotes")[quote].get("Books_Id__c"))
        settle(emu_reset, receiver, ROUNDS)
        [first] = store.list_runs("transactions", limit=10)
        assert first.state == "completed" and first.counts["books"]["created"] == 1
        estimate_id = estimate["estimate_id"]

        # Books → CRM (a Books webhook, as a person marks the quote sent in Books).
        after_stamp(estimate["last_modified_time"])
        assert get_runtime().books.mark("estimates", estimate_id, "sent").ok
        wait_for(lambda: crm.records("Quotes")[quote].get("Status") == "Delivered")
        settle(emu_reset, receiver, ROUNDS)
        runs = store.list_runs("transactions", limit=50)
        # One run wrote the status; the CRM event of that write starts a run that writes
        # nothing (the flow knows its echo): no loop.
        assert [written(r) for r in runs[:-1]] in ([1], [0, 1]), [r.counts for r in runs]
        assert runs[-2].counts["crm"]["updated"] == 1
        books_stamp = emu_reset.emu.books.org().records["estimates"][estimate_id][
            "last_modified_time"]

        # Replayed, duplicated and reordered webhooks (the sent one twice, then the creation
        # event after it): at most one more run, writing nothing.
        hook, secret = receiver.books_urls[store.org_id], {
            BOOKS_HEADER: receiver.keys["books_secret"]}
        sent = {"event_type": "estimate_updated", "data": {
            "estimate_id": estimate_id, "status": "sent", "last_modified_time": books_stamp}}
        created = {"event_type": "estimate_created", "data": estimate}
        for body in (sent, sent, created):
            answer = httpx.post(hook, content=json.dumps(body, default=str), timeout=10,
                                headers={**secret, "Content-Type": "application/json"})
            assert answer.status_code == 200, answer.text
        settle(emu_reset, receiver, ROUNDS)
        replays = store.list_runs("transactions", limit=50)[:-len(runs)]
        assert len(replays) <= 1 and sum(written(r) for r in replays) == 0
        assert crm.records("Quotes")[quote].get("Status") == "Delivered"
        assert emu_reset.emu.books.org().records["estimates"][estimate_id][
            "last_modified_time"] == books_stamp  # nothing written back to Books either
    finally:
        receiver.stop()


def test_a_books_webhook_waits_for_a_running_transactions_run_then_applies(
        store, emu_reset, linked):
    quote = crm_create("Quotes", {"Subject": "Waits for the lock", "Account_Name": {
        "id": linked["account"]}, "Quoted_Items": lines(linked)})
    assert transactions_support.run("Quotes", quote)["counts"]["books"]["created"] == 1
    [estimate] = books_by_crm_id(emu_reset, "estimates", quote)
    holder = store.start_run("transactions")  # a catch-up run in progress (this process)
    store.acquire_run_lock("transactions", holder)
    receiver = Receiver(debounce_s=0.1).start()
    try:
        after_stamp(estimate["last_modified_time"])
        assert get_runtime().books.mark("estimates", estimate["estimate_id"], "sent").ok
        wait_for(lambda: receiver.transactions.requeued >= 2)
        assert emu_reset.emu.crm.records("Quotes")[quote].get("Status") != "Delivered"
        store.release_run_lock("transactions", holder)
        wait_for(lambda: emu_reset.emu.crm.records("Quotes")[quote].get("Status")
                 == "Delivered")
        settle(emu_reset, receiver, ROUNDS)
    finally:
        receiver.stop()
