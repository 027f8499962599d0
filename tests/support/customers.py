"""Helpers of the customers end-to-end tests: run the flow, read both emulators, count requests.

Both sides are read straight from the emulator's state (what the APIs would return), the
request counts and log from its `/__emulator__/` controls.
"""

from __future__ import annotations

import time
from dataclasses import replace

import httpx

from flows.customers import sync_customers

#: Books customers seeded per test: 4 named exactly like CRM accounts (2 of them linked by
#: Zoho's own zcrm_account_id), 2 near-duplicates, business and individual ones.
BOOKS_CUSTOMERS = 12
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def unpaced(monkeypatch, **config) -> None:
    """Lift the client-side Books pacing (100 requests a minute) that the emulators here do not
    enforce: these tests are about data, not pacing. `config` overrides more of the clients'
    settings (ZohoConfig fields)."""
    import crmbooks.runtime

    built = crmbooks.runtime.config_from_store
    update = {"books_requests_per_minute": 100_000, **config}

    def fast(*args, **kwargs):
        return built(*args, **kwargs).model_copy(update=update)

    monkeypatch.setattr(crmbooks.runtime, "config_from_store", fast)


def reseed(server, books_customers: int = BOOKS_CUSTOMERS, **sizes) -> None:
    """Reseed the emulators (same seed) with more Books customers than the session default."""
    emu = server.emu
    emu.reset(seed=7, sizes=replace(emu.config.sizes, books_customers=books_customers, **sizes))
    clear_stats(server)


def clear_stats(server) -> None:
    """Zero the emulator's request counters and log."""
    httpx.post(f"{server.base_url}/__emulator__/stats/clear").raise_for_status()


def request_log(server) -> list[dict]:
    """Every request since the last clear: method, path, query, status."""
    response = httpx.get(f"{server.base_url}/__emulator__/log", params={"limit": 5000})
    return response.json()["requests"]


def writes(server, side: str | None = None) -> list[dict]:
    """Requests that changed data (a write the API accepted), optionally of one side."""
    out = [r for r in request_log(server) if r["method"] in WRITE_METHODS
           and r["status"] < 400 and not r["path"].startswith(("/oauth", "/__emulator__"))]
    return [r for r in out if side is None or r["path"].startswith(f"/{side}/")]


def data_requests(server, side: str) -> list[dict]:
    """Requests to one side's data (metadata and OAuth left out)."""
    return [r for r in request_log(server) if r["path"].startswith(f"/{side}/")
            and "/settings/" not in r["path"]]


def sync(store, dry_run: bool = False, **settings):
    """Save ``settings`` (when given) and run the customers flow: (flow state, history row)."""
    if settings:
        store.save_settings("customers", settings)
    state = sync_customers(dry_run=dry_run, return_state=True)
    return state, store.list_runs(module="customers", limit=1)[0]


def cf(record: dict, name: str = "cf_crm_id"):
    """A Books custom field value (None when unset)."""
    for field in record.get("custom_fields") or []:
        if field.get("api_name") == name:
            return field.get("value") or None
    return None


def books_customers(server, sub_type: str | None = None) -> dict[str, dict]:
    """Books customers by id (optionally only business / individual ones)."""
    records = server.emu.books.org().records["contacts"]
    return {i: r for i, r in records.items() if r["contact_type"] == "customer"
            and (sub_type is None or r["customer_sub_type"] == sub_type)}


def books_by_name(server, sub_type: str | None = None) -> dict[str, list[dict]]:
    """Books customers grouped by display name."""
    out: dict[str, list[dict]] = {}
    for rec in books_customers(server, sub_type).values():
        out.setdefault(rec["contact_name"], []).append(rec)
    return out


def crm(server, module: str = "Accounts") -> dict[str, dict]:
    """CRM records of a module by id (stored form: lookups hold ids)."""
    return server.emu.crm.records(module)


def crm_by_name(server, module: str = "Accounts") -> dict[str, list[dict]]:
    """CRM records grouped by their display name (Account_Name or First Last)."""
    out: dict[str, list[dict]] = {}
    for rec in crm(server, module).values():
        name = rec.get("Account_Name") if module == "Accounts" else " ".join(
            p for p in (rec.get("First_Name"), rec.get("Last_Name")) if p)
        out.setdefault(name, []).append(rec)
    return out


def failures(store):
    """Unresolved failures as a list of dicts."""
    return store.failures(module="customers").to_dict("records")


def next_second() -> None:
    """Wait for the next wall-clock second. Books stamps changes to the second and its list
    carries too few fields to tell an edit in the same second as our write from that write's
    echo (a known limit; CRM rows are also compared by value)."""
    time.sleep(1.05 - time.time() % 1)


def books_put(books_http, server, contact_id: str, body: dict) -> None:
    """Change a Books contact over the API, as a Books user would."""
    org = server.emu.config.books_org_ids[0]
    response = books_http.put(f"/books/v3/contacts/{contact_id}",
                              params={"organization_id": org}, json=body)
    assert response.status_code == 200, response.text


def crm_put(crm_http, module: str, record_id: str, values: dict) -> None:
    """Change a CRM record over the API, as a CRM user would."""
    response = crm_http.put(f"/crm/v8/{module}/{record_id}", json={"data": [values]})
    assert response.status_code == 200, response.text
