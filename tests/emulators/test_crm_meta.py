"""CRM emulator contract: settings (modules, fields, custom views), org, users, notifications
(actions/watch) and the sample-data generator."""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

from emulators import Emulator, EmulatorConfig, Sizes
from emulators.crm.fields import MODULES

V8 = "/crm/v8"


def test_settings_modules(crm_http):
    body = crm_http.get(f"{V8}/settings/modules").json()
    names = {m["api_name"] for m in body["modules"]}
    assert names == set(MODULES)
    one = crm_http.get(f"{V8}/settings/modules/Deals").json()["modules"][0]
    assert one["api_name"] == "Deals" and any(f["api_name"] == "Stage" for f in one["fields"])
    assert crm_http.get(f"{V8}/settings/modules/Nope").json()["code"] == "INVALID_MODULE"


def test_settings_fields_standard_custom_and_picklists(crm_http):
    fields = {f["api_name"]: f for f in crm_http.get(
        f"{V8}/settings/fields", params={"module": "Accounts"}).json()["fields"]}
    assert fields["Account_Name"]["system_mandatory"] is True
    assert fields["Books_Id__c"]["custom_field"] is True and fields["Books_Id__c"]["unique"]
    assert fields["Owner"]["data_type"] == "ownerlookup"
    assert fields["Parent_Account"]["lookup"]["module"]["api_name"] == "Accounts"
    assert fields["Created_Time"]["read_only"] is True
    assert "Currency" not in fields  # multi-currency is off in the default org
    products = {f["api_name"]: f for f in crm_http.get(
        f"{V8}/settings/fields", params={"module": "Products"}).json()["fields"]}
    values = [v["actual_value"] for v in products["Product_Type__c"]["pick_list_values"]]
    assert values == ["-None-", "Goods", "Services"]
    assert products["Unit_Price"]["data_type"] == "currency"


def test_deal_stage_probabilities_and_categories(crm_http):
    fields = crm_http.get(f"{V8}/settings/fields", params={"module": "Deals"}).json()["fields"]
    stage = next(f for f in fields if f["api_name"] == "Stage")
    stages = {v["actual_value"]: v for v in stage["pick_list_values"] if "probability" in v}
    assert stages["Qualification"]["probability"] == 10
    assert stages["Closed Won"]["forecast_type"] == "Closed Won"
    assert stages["Closed Won"]["probability"] == 100
    assert stages["Closed Lost"]["forecast_type"] == "Closed Lost"
    assert {v["forecast_type"] for v in stages.values()} == {"Open", "Closed Won", "Closed Lost"}


def test_settings_fields_bad_input(crm_http):
    response = crm_http.get(f"{V8}/settings/fields")
    assert response.status_code == 400 and response.json()["code"] == "REQUIRED_PARAM_MISSING"
    response = crm_http.get(f"{V8}/settings/fields", params={"module": "Leadz"})
    assert response.json()["code"] == "INVALID_MODULE"


def test_custom_views(crm_http):
    body = crm_http.get(f"{V8}/settings/custom_views", params={"module": "Accounts"}).json()
    by_system = {v["system_name"]: v for v in body["custom_views"] if v["system_defined"]}
    assert set(by_system) == {"All", "My", "RecentlyCreated", "RecentlyModified", "Unread"}
    assert by_system["All"]["name"] == "All Accounts" and by_system["All"]["default"]
    assert body["info"]["default"] == by_system["All"]["id"]
    key = next(v for v in body["custom_views"] if v["name"] == "Key Accounts")
    one = crm_http.get(f"{V8}/settings/custom_views/{key['id']}",
                       params={"module": "Accounts"}).json()["custom_views"][0]
    assert one["criteria"]["field"]["api_name"] == "Industry"
    assert one["criteria"]["value"] == "Technology"
    response = crm_http.get(f"{V8}/settings/custom_views/1", params={"module": "Accounts"})
    assert response.status_code == 400 and response.json()["code"] == "INVALID_DATA"


def test_my_view_filters_by_owner(crm_http, emu_reset):
    crm = emu_reset.emu.crm
    views = crm_http.get(f"{V8}/settings/custom_views", params={"module": "Deals"}).json()
    my = next(v["id"] for v in views["custom_views"] if v["system_name"] == "My")
    me = crm.directory.current_user_id
    expected = {i for i, d in crm.records("Deals").items() if d["Owner"] == me}
    response = crm_http.get(f"{V8}/Deals", params={"fields": "Owner", "cvid": my})
    got = {r["id"] for r in response.json()["data"]} if response.status_code == 200 else set()
    assert got == expected


def test_org(crm_http):
    org = crm_http.get(f"{V8}/org").json()["org"][0]
    assert org["currency"] == "USD" and org["mc_status"] is False
    assert org["license_details"]["paid_type"] == "professional"
    assert org["company_name"] == "Zylker CRM"


def test_users(crm_http, emu_reset):
    current = crm_http.get(f"{V8}/users", params={"type": "CurrentUser"}).json()["users"]
    assert len(current) == 1 and current[0]["status"] == "active"
    every = crm_http.get(f"{V8}/users", params={"type": "AllUsers"}).json()
    assert every["info"]["count"] == 4
    [gone] = crm_http.get(f"{V8}/users", params={"type": "DeletedUsers"}).json()["users"]
    owned = [a for a in emu_reset.emu.crm.records("Accounts").values()
             if a["Owner"] == gone["id"]]
    assert owned, "a deleted user still owns some accounts"
    active = crm_http.get(f"{V8}/users", params={"type": "ActiveUsers"}).json()["users"]
    assert gone["id"] not in {u["id"] for u in active}
    one = crm_http.get(f"{V8}/users/{gone['id']}").json()["users"][0]
    assert one["email"] == gone["email"]
    # records cannot be assigned to a deleted user
    [item] = crm_http.post(f"{V8}/Accounts", json={"data": [
        {"Account_Name": "Orphan", "Owner": {"id": gone["id"]}}]}).json()["data"]
    assert item["code"] == "INVALID_DATA" and item["details"]["api_name"] == "Owner"
    # nor to a user id the org does not have; an active user other than the caller is kept
    [item] = crm_http.post(f"{V8}/Accounts", json={"data": [
        {"Account_Name": "Nobody's", "Owner": {"id": "4150868000000000999"}}]}).json()["data"]
    assert item["code"] == "INVALID_DATA" and item["details"]["api_name"] == "Owner"
    other = next(u for u in active if u["id"] != current[0]["id"])
    [item] = crm_http.post(f"{V8}/Accounts", json={"data": [
        {"Account_Name": "Assigned", "Owner": {"id": other["id"]}}]}).json()["data"]
    assert item["code"] == "SUCCESS", item
    assert emu_reset.emu.crm.records("Accounts")[item["details"]["id"]]["Owner"] == other["id"]


class _Sink(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server naming)
        length = int(self.headers.get("content-length", 0))
        self.received.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_notifications_watch_lifecycle(crm_http):
    _Sink.received = []
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook?src=crm"
    try:
        expiry = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="seconds")
        body = {"watch": [{"channel_id": "1000000068001", "events": ["Accounts.all",
                                                                     "Deals.create"],
                           "channel_expiry": expiry, "token": "secret-token",
                           "notify_url": url}]}
        response = crm_http.post(f"{V8}/actions/watch", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["watch"][0]["code"] == "SUCCESS"
        listed = crm_http.get(f"{V8}/actions/watch").json()["watch"]
        assert listed[0]["channel_id"] == "1000000068001"
        created = crm_http.post(f"{V8}/Accounts", json={"data": [{"Account_Name": "Hooked"}]})
        rec_id = created.json()["data"][0]["details"]["id"]
        crm_http.put(f"{V8}/Accounts/{rec_id}", json={"data": [{"Phone": "+1 555 0000"}]})
        crm_http.delete(f"{V8}/Accounts/{rec_id}")
        assert _wait_for(lambda: len(_Sink.received) >= 3)
        payloads = [p for _, p in _Sink.received]
        assert [p["operation"] for p in payloads] == ["insert", "update", "delete"]
        first = payloads[0]
        assert first["ids"] == [rec_id] and first["module"] == "Accounts"
        assert first["token"] == "secret-token" and first["channel_id"] == "1000000068001"
        assert first["query_params"] == {"src": "crm"}
        assert first["resource_uri"].endswith("/crm/v8/Accounts")
        assert isinstance(first["server_time"], int)
        assert payloads[1]["affected_fields"] == [{rec_id: ["Phone"]}]
        disabled = crm_http.delete(f"{V8}/actions/watch",
                                   params={"channel_ids": "1000000068001"})
        assert disabled.status_code == 200
        assert crm_http.get(f"{V8}/actions/watch").status_code == 204
    finally:
        server.shutdown()


def test_watch_bad_input(crm_http):
    bad_events = {"watch": [{"channel_id": "1", "events": ["Accounts.update"],
                             "notify_url": "https://example.com/x"}]}
    response = crm_http.post(f"{V8}/actions/watch", json=bad_events)
    assert response.status_code == 400
    assert response.json()["watch"][0]["details"]["api_name"] == "events"
    missing = {"watch": [{"events": ["Accounts.all"]}]}
    response = crm_http.post(f"{V8}/actions/watch", json=missing)
    assert response.json()["watch"][0]["code"] == "MANDATORY_NOT_FOUND"


def test_seed_is_deterministic_realistic_and_fast():
    emu = Emulator(EmulatorConfig())
    crm = emu.crm
    sizes = Sizes(accounts=30, vendors=6, products=10, deals=8)
    crm.seed(random.Random(5), sizes)
    first = {m: dict(crm.records(m)) for m in MODULES}
    crm.seed(random.Random(5), sizes)
    assert {m: dict(crm.records(m)) for m in MODULES} == first
    names = [a["Account_Name"] for a in first["Accounts"].values()]
    assert {"Acme Ltd", "ACME Limited", "Acme (UK), Ltd\\", "株式会社山田製作所",
            "شركة النور للتجارة", "Café ☕ Résumé Ltd"} <= set(names)
    ids = [int(i) for m in MODULES for i in first[m]]
    assert len(ids) == len(set(ids)) and all(len(str(i)) == 19 for i in ids)
    amounts = [d["Amount"] for d in first["Deals"].values()]
    assert all(round(a, 2) == a for a in amounts)
    countries = {a["Billing_Country"] for a in first["Accounts"].values()}
    assert len(countries) >= 4
    products = first["Products"].values()
    assert {p["Product_Type__c"] for p in products} <= {"Goods", "Services"}
    assert len(first["Contacts"]) == 30 * sizes.contacts_per_account + sizes.unassociated_contacts
    crm.seed(random.Random(1), Sizes(accounts=10_000, contacts_per_account=1))
    assert len(crm.records("Accounts")) == 10_000  # speed: bench/bench_emulators.py


def test_multi_currency_org():
    from fastapi.testclient import TestClient

    emu = Emulator(EmulatorConfig(crm_multi_currency=True, crm_currency="EUR"))
    crm = emu.crm
    currencies = {a["Currency"] for a in crm.records("Accounts").values()}
    assert len(currencies) >= 3
    deal = next(d for d in crm.records("Deals").values() if d.get("Account_Name"))
    assert deal["Currency"] == crm.records("Accounts")[deal["Account_Name"]]["Currency"]
    home = next(a for a in crm.records("Accounts").values() if a["Currency"] == "EUR")
    assert home["Exchange_Rate"] == 1.0
    client = TestClient(emu.app())
    config = emu.config
    token = client.post("/oauth/v2/token", data={
        "grant_type": "refresh_token", "client_id": config.client_id,
        "client_secret": config.client_secret, "refresh_token": config.refresh_token,
    }).json()["access_token"]
    headers = {"Authorization": f"Zoho-oauthtoken {token}"}
    assert client.get(f"{V8}/org", headers=headers).json()["org"][0]["mc_status"] is True
    fields = client.get(f"{V8}/settings/fields", params={"module": "Deals"},
                        headers=headers).json()["fields"]
    assert "Currency" in {f["api_name"] for f in fields}
    created = client.post(f"{V8}/Accounts", headers=headers, json={"data": [
        {"Account_Name": "Yen Co", "Currency": "JPY"}, {"Account_Name": "Home Co"}]}).json()
    ids = [item["details"]["id"] for item in created["data"]]
    assert [crm.records("Accounts")[i]["Currency"] for i in ids] == ["JPY", "EUR"]
