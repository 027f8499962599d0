"""Books emulator: deterministic sample data, several organizations, webhooks, speed."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from emulators import Emulator, EmulatorConfig
from emulators.books import BooksEmulator


def _snapshot(books: BooksEmulator) -> dict:
    """Names and numbers of every record (ids and timestamps aside)."""
    out = {}
    for org_id, org in books.orgs.items():
        for plural, table in org.records.items():
            out[(org_id, plural)] = [
                (r.get("contact_name") or r.get("name") or r.get(plural[:-1] + "_number"),
                 str(r.get("total", r.get("rate", ""))), r.get("currency_code"))
                for r in table.values()]
    return out


def test_seed_is_deterministic_and_varied(emu_reset):
    emu = emu_reset.emu
    books = emu.books
    first = _snapshot(books)
    emu.reset(seed=7)
    assert _snapshot(books) == first
    org = books.org()
    contacts = list(org.records["contacts"].values())
    customers = [c for c in contacts if c["contact_type"] == "customer"]
    vendors = [c for c in contacts if c["contact_type"] == "vendor"]
    assert len(customers) == emu.config.sizes.books_customers
    assert len(vendors) == emu.config.sizes.books_vendors
    assert len(org.records["items"]) == emu.config.sizes.books_items
    assert {"business", "individual"} >= {c["customer_sub_type"] for c in customers}
    assert all(c["contact_persons"] for c in contacts)
    for plural in ("estimates", "invoices", "salesorders", "purchaseorders"):
        assert org.records[plural], plural
    ids = [int(i) for table in org.records.values() for i in table]
    assert all(len(str(i)) == 15 for i in ids) and len(ids) == len(set(ids))


def test_seed_collides_with_crm_names(emu_reset):
    emu = emu_reset.emu
    accounts = {r["Account_Name"] for r in emu.crm.records("Accounts").values()}
    vendors = {r["Vendor_Name"] for r in emu.crm.records("Vendors").values()}
    products = {r["Product_Name"] for r in emu.crm.records("Products").values()}
    org = emu.books.org()
    contacts = list(org.records["contacts"].values())
    assert {c["contact_name"] for c in contacts if c["contact_type"] == "customer"} & accounts
    assert {c["contact_name"] for c in contacts if c["contact_type"] == "vendor"} & vendors
    assert {i["name"] for i in org.records["items"].values()} & products
    assert any(c["is_linked_with_zohocrm"] and c["zcrm_account_id"] for c in contacts)


def test_seed_has_unicode_and_several_currencies():
    emu = Emulator(EmulatorConfig())
    sizes = replace(emu.config.sizes, books_customers=60, books_vendors=10, books_items=20)
    emu.reset(seed=3, sizes=sizes)
    org = emu.books.org()
    names = [c["contact_name"] for c in org.records["contacts"].values()]
    assert any(not n.isascii() for n in names)
    assert len({c["currency_code"] for c in org.records["contacts"].values()}) >= 3
    lowered = [n.casefold().strip(" .") for n in names]
    assert len(set(lowered)) < len(lowered) or any("  " in n for n in names)  # near-duplicates


def test_several_organizations_have_their_own_data():
    emu = Emulator(EmulatorConfig(books_org_ids=["20099001", "20099002"]))
    first, second = emu.books.orgs["20099001"], emu.books.orgs["20099002"]
    assert first.info["is_default_org"] and not second.info["is_default_org"]
    assert not set(first.records["contacts"]) & set(second.records["contacts"])


def test_seeding_ten_thousand_records_gives_them_all():
    # Speed is measured by bench/bench_emulators.py, not asserted here (a loaded CI machine
    # would make a time bound flaky).
    emu = Emulator(EmulatorConfig())
    sizes = replace(emu.config.sizes, books_customers=8000, books_vendors=1000,
                    books_items=1000)
    emu.books.seed(random.Random(1), sizes, emu.crm)
    assert len(emu.books.org().records["contacts"]) == 9000


def test_list_pages_of_200_over_many_records():
    from emulators.books.listing import list_page
    from emulators.books.resources import CONTACTS

    emu = Emulator(EmulatorConfig())
    emu.books.seed(random.Random(2), replace(emu.config.sizes, books_customers=5000),
                   emu.crm)
    org = emu.books.org()
    list_page(org, CONTACTS, {})  # first call sorts
    seen = set()
    for page in range(1, 21):
        rows, context = list_page(org, CONTACTS, {"page": str(page)})
        assert len(rows) == 200
        seen |= {r["contact_id"] for r in rows}
    assert len(seen) == 4000  # every page brings new records


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers["Content-Length"])
        self.received.append((self.headers.get("X-Webhook-Secret"),
                              json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """A local HTTP server recording webhook posts."""
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    server.shutdown()


def test_webhooks_are_sent_asynchronously(books_http, emu_reset, receiver):
    url, received = receiver
    org = emu_reset.emu.config.books_org_ids[0]
    books = emu_reset.emu.books
    books.register_webhook(org, url, "s3cret")
    try:
        params = {"organization_id": org}
        contact = books_http.post("/books/v3/contacts", params=params,
                                  json={"contact_name": "Hooked"}).json()["contact"]
        books_http.put(f"/books/v3/contacts/{contact['contact_id']}", params=params,
                       json={"notes": "n"})
        books_http.delete(f"/books/v3/contacts/{contact['contact_id']}", params=params)
        deadline = time.monotonic() + 5
        while len(received) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        books.unregister_webhook(org)
    assert [event["event_type"] for _, event in received] == [
        "contact_created", "contact_updated", "contact_deleted"]
    assert {secret for secret, _ in received} == {"s3cret"}
    assert received[0][1]["data"]["contact_name"] == "Hooked"


def test_unreachable_webhook_never_blocks(books_http, emu_reset):
    org = emu_reset.emu.config.books_org_ids[0]
    books = emu_reset.emu.books
    books.register_webhook(org, "http://127.0.0.1:9/nothing", "x")
    try:
        started = time.perf_counter()
        response = books_http.post("/books/v3/items", params={"organization_id": org},
                                   json={"name": "Hook item", "rate": 1})
        assert response.status_code == 201
        assert time.perf_counter() - started < 1
    finally:
        books.unregister_webhook(org)


def test_organizations_are_separate_over_http():
    import httpx

    from emulators.server import EmulatorServer

    with EmulatorServer(EmulatorConfig(books_org_ids=["20099001", "20099002"])) as server:
        config = server.emu.config
        token = httpx.post(f"{server.base_url}/oauth/v2/token", data={
            "grant_type": "refresh_token", "client_id": config.client_id,
            "client_secret": config.client_secret,
            "refresh_token": config.refresh_token}).json()["access_token"]
        with httpx.Client(base_url=server.base_url,
                          headers={"Authorization": f"Zoho-oauthtoken {token}"}) as client:
            orgs = client.get("/books/v3/organizations").json()["organizations"]
            assert [o["organization_id"] for o in orgs] == ["20099001", "20099002"]
            made = client.post("/books/v3/contacts", params={"organization_id": "20099002"},
                               json={"contact_name": "Only In Two"})
            assert made.status_code == 201
            contact_id = made.json()["contact"]["contact_id"]
            elsewhere = client.get(f"/books/v3/contacts/{contact_id}",
                                   params={"organization_id": "20099001"})
            assert elsewhere.status_code == 404
