"""End to end: customers and items through the event receiver, without any scheduled run.

The emulators deliver CRM notifications and Books webhooks over HTTP to a receiver in this
process, which runs targeted customers / items runs. Records are created and edited through
the emulators' APIs; waiting is on conditions (the record changed, the delivery queues
drained, the receiver's workers idle), never on time.
"""

from __future__ import annotations

from decimal import Decimal

import httpx

from crmbooks.app.receiver.server import BOOKS_HEADER, Receiver
from crmbooks.store import Store
from support.orgs import EXTRA, PRIMARY
from support.receiver import settle, wait_for
from support.transactions import books_by_crm_id, crm_by_books_id
from support.vendors_items import books_create, books_update, crm_create, crm_update, org_of

#: A run's own writes (both ways) queue more events: settle that many times, until none are left.
ROUNDS = 3


def writes(run) -> int:
    return sum(run.counts[s][k] for s in ("books", "crm") for k in ("created", "updated"))


def test_a_crm_account_edit_reaches_books_and_its_echoes_write_nothing(
        store, emu_reset, crm_http):
    receiver = Receiver(debounce_s=0.1).start()
    books = emu_reset.emu.books.org().records["contacts"]
    try:
        # A new CRM account becomes a Books customer, then an edit of it follows.
        [account] = crm_create(crm_http, "Accounts", {"Account_Name": "Event Works Ltd"})
        [customer] = wait_for(lambda: books_by_crm_id(emu_reset, "contacts", account))
        settle(emu_reset, receiver, ROUNDS)
        crm_update(crm_http, "Accounts", account, {"Website": "https://event.example"})
        wait_for(lambda: books[customer["contact_id"]]["website"] == "https://event.example")
        settle(emu_reset, receiver, ROUNDS)
        runs = store.list_runs("customers", limit=50)
        # Only targeted runs (no scheduled one), exactly one create and one update written:
        # the echoes of crmbooks' own writes (its Books writes, the Books id written back on
        # the account) started nothing, or a run that wrote nothing.
        assert [writes(r) for r in runs if writes(r)] == [1, 1], [r.counts for r in runs]
        assert [r.counts["books"]["created"] for r in runs if writes(r)] == [0, 1]
        assert store.cursor("customers", "crm") is None
        assert all(r.state == "completed" for r in runs)
        stamp = books[customer["contact_id"]]["last_modified_time"]
        modified = emu_reset.emu.crm.records("Accounts")[account]["Modified_Time"]

        # A module turned off ignores events; a paused integration drops them (no run).
        before = len(runs)
        store.save_settings("customers", {"enabled": False})
        crm_update(crm_http, "Accounts", account, {"Website": "https://off.example"})
        settle(emu_reset, receiver)
        assert receiver.app.state.seen["ignored"] >= 1
        store.save_settings("customers", {"enabled": True})
        store.save_connection("default", paused=True)
        crm_update(crm_http, "Accounts", account, {"Website": "https://paused.example"})
        settle(emu_reset, receiver)
        assert len(store.list_runs("customers", limit=50)) == before
        assert books[customer["contact_id"]]["last_modified_time"] == stamp
        assert books[customer["contact_id"]]["website"] == "https://event.example"
        assert emu_reset.emu.crm.records("Accounts")[account]["Modified_Time"] != modified
    finally:
        store.save_connection("default", paused=False)
        receiver.stop()


def test_a_books_item_edit_reaches_the_crm_product_and_its_echoes_write_nothing(
        store, emu_reset, books_http):
    receiver = Receiver(debounce_s=0.1).start()
    org = org_of(emu_reset)
    try:
        item = books_create(books_http, org, "items", {"name": "Event Widget", "rate": 12.5})
        [product] = wait_for(lambda: crm_by_books_id(emu_reset, "Products", item["item_id"]))
        settle(emu_reset, receiver, ROUNDS)
        books_update(books_http, org, "items", item["item_id"], {"rate": 14})
        products = emu_reset.emu.crm.records("Products")
        wait_for(lambda: Decimal(str(products[product["id"]]["Unit_Price"])) == 14)
        settle(emu_reset, receiver, ROUNDS)
        runs = store.list_runs("items", limit=50)
        # One run created the product, one updated it; the echoes (the CRM events of those
        # writes, the Books events of the CRM id written on the item) wrote nothing.
        assert sorted(writes(r) for r in runs if writes(r)) == [1, 1], [r.counts for r in runs]
        assert [r.counts["crm"]["created"] for r in runs if writes(r)] == [0, 1]
        assert all(r.state == "completed" for r in runs)
        assert store.cursor("items", "books") is None  # targeted runs only
        modified = products[product["id"]]["Modified_Time"]
        settle(emu_reset, receiver, ROUNDS)
        assert products[product["id"]]["Modified_Time"] == modified
    finally:
        receiver.stop()


class Recorder:
    """A records handler that records the keys it is given."""

    def __init__(self):
        self.keys: list[str] = []

    def __call__(self, keys: list[str]) -> None:
        self.keys += keys


def test_what_record_events_start_in_each_organization(connected_two):
    primary, extra = connected_two, Store(connected_two.engine, org_id=EXTRA)
    seen = Recorder()
    receiver = Receiver(debounce_s=0.05, watch=False, records_handler=seen).start()
    crm = f"{receiver.url}/crm/notify"
    secret = {BOOKS_HEADER: receiver.keys["books_secret"]}

    def notify(module: str, *ids: str) -> dict:
        answer = httpx.post(crm, json={"module": module, "ids": list(ids), "operation": "update",
                                       "token": receiver.keys["crm_token"]})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def books(org: str, body, status: int = 200) -> dict:
        answer = httpx.post(f"{receiver.url}/books/webhook/{org}", json=body, headers=secret)
        assert answer.status_code == status, answer.text
        return answer.json()

    def queued() -> list[str]:
        assert receiver.records.idle()
        taken, seen.keys = sorted(seen.keys), []
        return taken

    try:
        # CRM events: every organization where the module is on, by the module they feed.
        assert notify("Accounts", "111", "112") == {"accepted": 2}
        assert notify("Products", "113") == {"accepted": 1}
        assert queued() == sorted(f"{org}|crm|{module}|{i}|" for org in (PRIMARY, EXTRA)
                                  for module, i in (("customers", "111"),
                                                    ("customers", "112"), ("items", "113")))
        extra.save_settings("vendors", {"enabled": False})
        assert notify("Vendors", "114") == {"accepted": 1}
        assert queued() == [f"{PRIMARY}|crm|vendors|114|"]
        # Contacts feed customers only when the settings take them.
        assert "under its settings" in notify("Contacts", "115")["ignored"]
        # … or when one is linked to an individual customer (two-way, one went to Contacts).
        primary.upsert_link("customers", crm_id="116", books_id="216116", kind="contacts",
                            crm_module="Contacts")
        assert notify("Contacts", "116") == {"accepted": 1}
        assert queued() == [f"{PRIMARY}|crm|customers|116|"]
        primary.delete_link("customers", crm_id="116")
        primary.save_settings("customers", {"crm_module": "contacts"})
        assert notify("Contacts", "115") == {"accepted": 1}
        assert queued() == [f"{PRIMARY}|crm|customers|115|"]

        # Books events: the primary only, by contact_type, when the module syncs both ways.
        stamp = "2026-11-28T06:00:02+0000"
        vendor = {"event_type": "contact_updated", "data": {
            "contact_id": "216", "contact_type": "vendor", "last_modified_time": stamp}}
        assert books(PRIMARY, vendor) == {"accepted": 1}
        assert books(PRIMARY, {"item": {"item_id": "217", "name": "x"}}) == {"accepted": 1}
        assert queued() == [f"{PRIMARY}|books|items|217|",
                            f"{PRIMARY}|books|vendors|216|{stamp}"]
        assert "CRM → Books only" in books(EXTRA, vendor)["ignored"]
        primary.save_settings("items", {"scope": "fetch"})
        assert "items sync CRM → Books only" in books(
            PRIMARY, {"event_type": "item_updated", "data": {"item_id": "217"}})["ignored"]
        primary.save_settings("customers", {"enabled": False})
        customer = {"event_type": "contact_updated", "data": {"contact_id": "218",
                                                             "contact_type": "customer"}}
        assert "customers are turned off" in books(PRIMARY, customer)["ignored"]
        assert "neither a customer nor a vendor" in books(PRIMARY, {
            "event_type": "contact_updated", "data": {"contact_id": "219"}})["ignored"]
        assert "deletions" in books(PRIMARY, {**vendor, "event_type": "contact_deleted"})[
            "ignored"]
        # Malformed: a 400 with the reason, nothing queued or kept.
        assert "no contact_id" in books(PRIMARY, {"event_type": "contact_updated", "data": {
            "contact_type": "vendor"}}, 400)["error"]
        assert "item_id must be a record id" in books(PRIMARY, {
            "event_type": "item_updated", "data": {"item_id": "12a"}}, 400)["error"]
        assert "contact_type must be a string" in books(PRIMARY, {
            "contact": {"contact_id": "1", "contact_type": ["vendor"]}}, 400)["error"]
        assert queued() == []
        assert primary.inbox_summary()["pending"] == 0
        assert len(primary.inbox(worker="records")) == 11  # each accepted event, kept
    finally:
        receiver.stop()
