"""End to end: the event receiver (`crmbooks webhook`) and the deal-triggers run lock.

The receiver runs in this process against the session emulator, which delivers its CRM
notifications and Books webhooks over HTTP. Waiting is on conditions, never on time: the
emulator's delivery queues are drained (`Notifier.drain`, the Books webhook queue's `join`),
then the receiver's workers are waited for (`Debouncer.idle`). Tests about what the receiver
starts (not what the flows do) inject a handler that records the queued keys.
"""

from __future__ import annotations

import threading

import httpx
import pytest

from crmbooks.app.receiver.debounce import Requeue
from crmbooks.app.receiver.routing import catch_up, run_transactions
from crmbooks.app.receiver.server import BOOKS_HEADER, Receiver
from crmbooks.runtime import get_runtime
from crmbooks.store import Store
from crmbooks.sync.lifecycle import RunInProgress
from flows.deal_triggers import sync_deal_triggers
from support.deals import (
    PROPOSAL,
    QUOTE_MODE,
    WON,
    accounts,
    books_of,
    configure,
    link_account,
    move,
    new_deal,
    trigger,
    written,
)
from support.orgs import EXTRA, PRIMARY
from support.receiver import settle, wait_for

TRANSACTIONS = {"enabled": True,
                "modules": ["estimates", "salesorders", "invoices", "purchaseorders"]}




def runs_of(store, module: str) -> list:
    return store.list_runs(module, limit=200)


# --------------------------------------------------------------------- the deals run lock
def test_a_second_deal_triggers_run_at_once_is_refused_and_a_dry_run_takes_no_lock(
        store, emu_reset, monkeypatch):
    import tasks.run as module

    configure(store, QUOTE_MODE)
    account = accounts(emu_reset)[0]
    link_account(store, account)
    deal_id = new_deal(account, PROPOSAL)
    original, holding, refused = module.hold_run_lock, threading.Event(), threading.Event()

    def gated(run) -> None:
        """The first live run keeps the lock until the second one was refused."""
        try:
            original(run)
        except RunInProgress:
            refused.set()
            raise
        if not run.dry_run and not holding.is_set():
            holding.set()
            refused.wait(timeout=60)

    monkeypatch.setattr(module, "hold_run_lock", gated)
    states = []
    first = threading.Thread(target=lambda: states.append(
        sync_deal_triggers(deal_ids=[deal_id], return_state=True)))
    first.start()
    try:
        assert holding.wait(60)
        assert store.run_lock("deals") is not None
        assert trigger(deal_id, dry_run=True)["counts"]["books"]["created"] == 1  # no lock
        with pytest.raises(RunInProgress, match="another run of deals is in progress"):
            sync_deal_triggers(deal_ids=[deal_id])
    finally:
        refused.set()
        first.join(timeout=60)
    assert states[0].is_completed()
    assert len(books_of(emu_reset, "estimates", deal_id)) == 1  # made once, by the first run
    assert store.run_lock("deals") is None  # released after the report
    assert sorted(r.state for r in runs_of(store, "deals")) == ["completed", "completed",
                                                                 "refused"]


# ------------------------------------------------------------------------- deal events
def test_receiver_triggers_within_seconds_rejects_bad_tokens_and_catch_up_covers_downtime(
        store, emu_reset):
    configure(store, QUOTE_MODE)
    account = accounts(emu_reset)[10]
    link_account(store, account)
    receiver = Receiver(debounce_s=0.2).start()
    try:
        deal_id = new_deal(account)
        move(deal_id, Stage=PROPOSAL)
        # How fast is measured by bench/bench_events.py; here only that it happens.
        [quote] = wait_for(lambda: books_of(emu_reset, "estimates", deal_id))
        assert quote["status"] == "draft"
        settle(emu_reset, receiver)
        runs = receiver.deals.runs

        url = f"{receiver.url}/crm/notify"
        event = {"module": "Deals", "ids": [deal_id], "operation": "update",
                 "channel_id": receiver.keys["channel_id"]}
        assert httpx.post(url, json={**event, "token": "wrong"}).status_code == 403
        assert httpx.post(url, json=event).status_code == 401
        assert httpx.post(url, content=b"{not json").status_code == 400
        assert receiver.deals.pending() == 0  # queued synchronously: rejected = nothing
        history = len(runs_of(store, "deals"))
        for _ in range(3):  # replayed events: debounced into runs that write nothing
            assert httpx.post(url, json={**event, "token": receiver.keys["crm_token"]}
                              ).status_code == 200
        assert receiver.deals.idle() and runs < receiver.deals.runs <= runs + 3
        assert len(books_of(emu_reset, "estimates", deal_id)) == 1
        replays = runs_of(store, "deals")[:len(runs_of(store, "deals")) - history]
        assert replays and all(written(r.__dict__) == 0 for r in replays)
    finally:
        receiver.stop()
    assert not emu_reset.emu.crm.notifier.channels  # the channel went with the receiver
    assert not emu_reset.emu.books.webhooks.hooks  # and so did the emulator's Books webhooks

    move(deal_id, Stage=WON)  # nobody listens: the catch-up run picks it up
    emu_reset.emu.crm.notifier.drain()
    assert books_of(emu_reset, "invoices", deal_id) == []
    trigger()
    [quote] = books_of(emu_reset, "estimates", deal_id)
    assert quote["status"] == "accepted"
    assert len(books_of(emu_reset, "invoices", deal_id)) == 1


def test_a_run_refused_by_the_run_lock_is_requeued_and_runs_once_the_lock_is_free(
        store, emu_reset, monkeypatch):
    import crmbooks.app.receiver.routing

    configure(store, QUOTE_MODE)
    account = accounts(emu_reset)[1]
    link_account(store, account)
    deal_id = new_deal(account)
    # A catch-up run of the deal triggers holds the lock (this process: alive, not stale).
    store.acquire_run_lock("deals", "catch-up-in-progress")
    receiver = Receiver(debounce_s=0.1).start()
    try:
        # 1. Seen before starting a flow: the deals wait, and no refused run is recorded.
        move(deal_id, Stage=PROPOSAL)
        wait_for(lambda: receiver.deals.requeued >= 2)
        assert books_of(emu_reset, "estimates", deal_id) == []
        assert runs_of(store, "deals") == []
        # 2. Taken between that look and the run's start: the run is refused, then requeued.
        monkeypatch.setattr(crmbooks.app.receiver.routing, "lock_busy", lambda org, module: False)
        wait_for(lambda: any(r.state == "refused" for r in runs_of(store, "deals")))
        requeued = receiver.deals.requeued
        wait_for(lambda: receiver.deals.requeued > requeued)
        assert receiver.deals.pending() and books_of(emu_reset, "estimates", deal_id) == []

        store.release_run_lock("deals", "catch-up-in-progress")
        [quote] = wait_for(lambda: books_of(emu_reset, "estimates", deal_id))
        settle(emu_reset, receiver)
        assert quote["status"] == "draft"
        assert len(books_of(emu_reset, "estimates", deal_id)) == 1
        assert "completed" in {r.state for r in runs_of(store, "deals")}
    finally:
        receiver.stop()


def test_events_while_paused_are_dropped_and_the_catch_up_after_resume_covers_them(
        store, emu_reset):
    configure(store, QUOTE_MODE)
    account = accounts(emu_reset)[2]
    link_account(store, account)
    deal_id = new_deal(account)
    receiver = Receiver(debounce_s=0.1).start()
    try:
        settle(emu_reset, receiver)
        runs = receiver.deals.runs
        store.save_connection("default", paused=True)
        move(deal_id, Stage=PROPOSAL)
        settle(emu_reset, receiver)
        assert receiver.deals.runs == runs + 1 and receiver.deals.requeued == 0  # dropped
        assert books_of(emu_reset, "estimates", deal_id) == []
        store.save_connection("default", paused=False)
        settle(emu_reset, receiver)
        assert receiver.deals.runs == runs + 1  # resuming replays nothing by itself
    finally:
        receiver.stop()
    trigger()  # the catch-up run after resume
    [quote] = books_of(emu_reset, "estimates", deal_id)
    assert quote["status"] == "draft"


# ------------------------------------------------------------------------ Books webhooks
class Recorder:
    """A transactions handler that records the keys it is given, batch by batch."""

    def __init__(self):
        self.batches: list[list[str]] = []

    def __call__(self, keys: list[str]) -> None:
        self.batches.append(sorted(keys))


def test_books_webhooks_are_checked_and_queue_their_transaction_once(store, emu_reset):
    store.save_settings("transactions", TRANSACTIONS)
    org = emu_reset.emu.config.books_org_ids[0]
    seen = Recorder()
    # A quiet period long enough that the test's own posts, however slow, make one batch.
    receiver = Receiver(debounce_s=1.0, transactions_handler=seen).start()
    try:
        # Registered with the emulator like an operator configures Books' UI.
        hook = receiver.books_urls[org]
        assert hook == f"{receiver.url}/books/webhook/{org}"
        assert emu_reset.emu.books.webhooks.hooks[org].url == hook
        books = get_runtime().books
        customer = next(c for c in emu_reset.emu.books.org().records["contacts"].values()
                        if c["contact_type"] == "customer")
        invoice = books.create("invoices", {"customer_id": customer["contact_id"], "line_items": [
            {"name": "Support", "rate": "10.00", "quantity": 1}]}).record
        key = f"{org}|books|invoices|{invoice['invoice_id']}"
        settle(emu_reset, receiver)
        # The emulator's invoice_created reached the queue, with the record's stamp.
        assert seen.batches == [[f"{key}|{invoice['last_modified_time']}"]]

        secret = {BOOKS_HEADER: receiver.keys["books_secret"]}
        data = {"invoice_id": invoice["invoice_id"], "status": "sent",
                "last_modified_time": "2026-11-28T06:00:02+0000"}
        event = {"event_type": "invoice_updated", "data": data}
        for url, body, headers, status in (
                (hook, event, {BOOKS_HEADER: "wrong"}, 403),
                (hook, event, {}, 401),
                (f"{receiver.url}/books/webhook/99999999", event, secret, 404),
                (hook, b"{not json", secret, 400),
                (hook, [event], secret, 400),
                (hook, {"event_type": "invoice_updated", "data": "x"}, secret, 400),
                (hook, {"event_type": "invoice_updated", "data": {"status": "sent"}}, secret,
                 400),
        ):
            kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
            answer = httpx.post(url, headers=headers, **kwargs)
            assert answer.status_code == status, (url, body, answer.text)
            assert "error" in answer.json()
        for body, why in (
                ({"event_type": "bill_created", "data": {"bill_id": "1"}}, "not a transaction"),
                ({"event_type": "invoice_deleted", "data": data}, "deletions are not synced"),
                ({"payment": {"payment_id": "1"}}, "not a transaction"),
        ):
            answer = httpx.post(hook, json=body, headers=secret)
            assert answer.status_code == 200 and why in answer.json()["ignored"], answer.text
        assert receiver.transactions.pending() == 0  # none of the above queued anything

        # Duplicated and reordered (an older stamp after a newer one), in both payload shapes
        # and on both URLs of the primary organization: one run for the record.
        older = {**data, "status": "draft", "last_modified_time": "2026-11-28T06:00:01+0000"}
        for url, body in ((hook, event), (hook, {"event_type": "invoice_updated",
                                                  "data": older}),
                          (f"{receiver.url}/books/webhook", event), (hook, {"invoice": data})):
            assert httpx.post(url, json=body, headers=secret).json() == {"accepted": 1}
        settle(emu_reset, receiver)
        assert seen.batches[1:] == [[f"{key}|{older['last_modified_time']}",
                                     f"{key}|{data['last_modified_time']}"]]  # one batch

        # The echo of crmbooks' own write (the link keeps the stamp Books answered it with)
        # starts no run; an event with another stamp of the same record does.
        store.upsert_link("transactions", crm_id="5725767000000123001",
                          books_id=invoice["invoice_id"], kind="invoices",
                          crm_module="Invoices", made_by="sync",
                          books_modified=data["last_modified_time"])
        assert run_transactions([f"{key}|{data['last_modified_time']}"] * 2) == []
        assert runs_of(store, "transactions") == []
        with pytest.raises(Requeue):  # a transactions run in progress: the events wait
            store.acquire_run_lock("transactions", "catch-up-in-progress")
            run_transactions([f"{key}|{older['last_modified_time']}"])
        store.release_run_lock("transactions", "catch-up-in-progress")
        assert runs_of(store, "transactions") == []
        store.save_settings("transactions", {**TRANSACTIONS, "enabled": False})
        answer = httpx.post(hook, json={"event_type": "invoice_updated", "data": older},
                            headers=secret)
        assert "transactions are off" in answer.json()["ignored"]
        settle(emu_reset, receiver)
        assert seen.batches[2:] == []
    finally:
        receiver.stop()


def test_webhook_tells_where_books_must_send_its_events_without_printing_the_secret(
        store, emu_reset, monkeypatch):
    import crmbooks.app.receiver.server
    from crmbooks.app.receiver.server import describe, emulator_controls, state_file

    org = emu_reset.emu.config.books_org_ids[0]
    receiver = Receiver(debounce_s=0.1).start()
    try:  # the emulators: registered by the receiver itself
        said = describe(receiver)
        assert f"registered with the emulator: {org} → {receiver.url}/books/webhook/{org}" \
            in said and receiver.keys["books_secret"] not in said
        assert emulator_controls(receiver.url) is None  # a host without the controls
    finally:
        receiver.stop()
    monkeypatch.setattr(crmbooks.app.receiver.server, "emulator_controls", lambda url: None)
    receiver = Receiver(debounce_s=0.1).start()
    try:  # real Books: nothing registered, the operator is told what to configure
        said = describe(receiver)
        assert not emu_reset.emu.books.webhooks.hooks
        assert f"  {org}: {receiver.url}/books/webhook/{org}" in said.splitlines()
        assert BOOKS_HEADER in said and str(state_file()) in said
        assert receiver.keys["books_secret"] not in said
    finally:
        receiver.stop()


def test_every_connected_organization_gets_its_events_and_extra_ones_only_crm_to_books(
        connected_two, two_orgs):
    primary, extra = connected_two, Store(connected_two.engine, org_id=EXTRA)
    for store in (primary, extra):
        store.save_settings("transactions", TRANSACTIONS)
    seen = Recorder()
    receiver = Receiver(debounce_s=0.2, transactions_handler=seen).start()
    try:
        assert set(receiver.books_urls) == {PRIMARY, EXTRA}
        assert {o: h.url for o, h in two_orgs.emu.books.webhooks.hooks.items()} == {
            PRIMARY: f"{receiver.url}/books/webhook/{PRIMARY}",
            EXTRA: f"{receiver.url}/books/webhook/{EXTRA}"}
        notify = f"{receiver.url}/crm/notify"
        event = {"module": "Quotes", "ids": ["5725767000000999001"], "operation": "update",
                 "affected_fields": [{"5725767000000999001": ["Subject"]}],
                 "token": receiver.keys["crm_token"]}
        assert httpx.post(notify, json=event).status_code == 200
        echo = {**event, "affected_fields": [{"5725767000000999001": ["Books_Id__c"]}]}
        assert httpx.post(notify, json=echo).status_code == 200  # our own write-back
        assert receiver.transactions.idle()
        assert seen.batches == [[f"{org}|crm|Quotes|5725767000000999001|"
                                 for org in (PRIMARY, EXTRA)]]

        extra.save_settings("transactions", {**TRANSACTIONS, "enabled": False})
        assert httpx.post(notify, json=event).status_code == 200
        assert receiver.transactions.idle()
        assert seen.batches[1:] == [[f"{PRIMARY}|crm|Quotes|5725767000000999001|"]]

        secret = {BOOKS_HEADER: receiver.keys["books_secret"]}
        change = {"event_type": "estimate_updated",
                  "data": {"estimate_id": "460000000099001", "status": "sent"}}
        answer = httpx.post(receiver.books_urls[EXTRA], json=change, headers=secret)
        assert answer.status_code == 200 and "CRM → Books only" in answer.json()["ignored"]
        answer = httpx.post(f"{receiver.url}/books/webhook/20099003", json=change,
                            headers=secret)
        assert answer.status_code == 404 and "20099003" in answer.json()["error"]
        assert receiver.transactions.pending() == 0
        answer = httpx.post(receiver.books_urls[PRIMARY], json=change, headers=secret)
        assert answer.json() == {"accepted": 1}
        assert receiver.transactions.idle()
        assert seen.batches[2:] == [[f"{PRIMARY}|books|estimates|460000000099001|"]]
    finally:
        receiver.stop()
    assert not two_orgs.emu.books.webhooks.hooks
    # The catch-up at receiver start runs the transactions of each organization syncing them.
    extra.save_settings("transactions", TRANSACTIONS)
    catch_up()
    runs = primary.list_runs("transactions", limit=10)
    # (Seeded CRM transactions of parties not linked here fail: the runs happened.)
    assert sorted(r.org_id for r in runs) == [PRIMARY, EXTRA]
    assert all(r.state.startswith("completed") for r in runs)


def test_deal_trigger_writes_in_books_come_back_as_webhooks_that_write_nothing(
        store, emu_reset):
    configure(store, QUOTE_MODE)
    store.save_settings("transactions", TRANSACTIONS)
    account = accounts(emu_reset)[3]
    link_account(store, account)
    receiver = Receiver(debounce_s=0.1).start()
    try:
        deal_id = new_deal(account)
        move(deal_id, Stage=WON)  # a quote, accepted, and its invoice: several Books writes
        wait_for(lambda: books_of(emu_reset, "invoices", deal_id))
        settle(emu_reset, receiver)
        settle(emu_reset, receiver)  # the runs of the first events' echoes queue no more
        [quote] = books_of(emu_reset, "estimates", deal_id)
        assert quote["status"] == "accepted" and len(books_of(emu_reset, "invoices",
                                                              deal_id)) == 1
        # Books events of the trigger's writes: no transactions run writes anything (the
        # last write's echo starts none; earlier ones are skipped: they belong to a deal).
        txn = runs_of(store, "transactions")
        assert all(written(r.__dict__) == 0 for r in txn), [r.counts for r in txn]
        assert not emu_reset.emu.crm.records("Quotes") or all(
            q.get("Books_Id__c") != quote["estimate_id"]
            for q in emu_reset.emu.crm.records("Quotes").values())
    finally:
        receiver.stop()


def test_the_emulator_webhook_control_refuses_incomplete_or_unknown_registrations(emu_reset):
    controls = f"{emu_reset.base_url}/__emulator__/webhooks"
    org = emu_reset.emu.config.books_org_ids[0]
    missing = httpx.post(controls, json={"org_id": org, "url": "http://127.0.0.1:9/x"})
    assert missing.status_code == 400 and "secret" in missing.json()["error"]
    unknown = httpx.post(controls, json={"org_id": "123", "url": "http://127.0.0.1:9/x",
                                         "secret": "s"})
    assert unknown.status_code == 404 and "123" in unknown.json()["error"]
    assert httpx.post(controls, content=b"[1]").status_code == 400
    assert not emu_reset.emu.books.webhooks.hooks  # nothing registered by any of them
