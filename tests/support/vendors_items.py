"""Helpers of the vendors and items flow tests: their shared fixtures, write to the emulators
through their APIs, run a module, and read back what a run did (counts, events, failures, API
calls)."""

from __future__ import annotations

from decimal import Decimal

import httpx

CRM = "/crm/v8"
BOOKS = "/books/v3"


def runner(module: str, flow):
    """A module's `run(store, **settings)`: save the settings (when given), run the flow once;
    the run's history row."""

    def run(store, **settings):
        if settings:
            store.save_settings(module, settings)
        flow(return_state=True)
        return last_run(store, module)

    return run


def org_of(emulator) -> str:
    """The Books organization the tests are connected to."""
    return emulator.emu.config.books_org_ids[0]


def crm_create(crm_http: httpx.Client, module: str, *records: dict) -> list[str]:
    """Create CRM records through the API; their ids (each must succeed)."""
    response = crm_http.post(f"{CRM}/{module}", json={"data": list(records)})
    answers = response.json()["data"]
    assert all(a["status"] == "success" for a in answers), answers
    return [a["details"]["id"] for a in answers]


def crm_update(crm_http: httpx.Client, module: str, record_id: str, values: dict) -> None:
    """Update one CRM record through the API."""
    response = crm_http.put(f"{CRM}/{module}", json={"data": [{"id": record_id, **values}]})
    answer = response.json()["data"][0]
    assert answer["status"] == "success", answer


def books_create(books_http: httpx.Client, org: str, resource: str, body: dict) -> dict:
    """Create one Books record through the API; the record Books answered with."""
    response = books_http.post(f"{BOOKS}/{resource}", params={"organization_id": org},
                               json=body)
    answer = response.json()
    assert answer.get("code") == 0, answer
    return answer[resource[:-1]]


def books_update(books_http: httpx.Client, org: str, resource: str, record_id: str,
                 body: dict) -> dict:
    """Update one Books record through the API; the record Books answered with."""
    response = books_http.put(f"{BOOKS}/{resource}/{record_id}",
                              params={"organization_id": org}, json=body)
    answer = response.json()
    assert answer.get("code") == 0, answer
    return answer[resource[:-1]]


def last_run(store, module: str):
    """The newest history row of a module."""
    return store.list_runs(module=module, limit=1)[0]


def cf(record: dict, name: str):
    """A Books custom field value of an item or contact, by its API name (None when unset)."""
    return (record.get("custom_field_hash") or {}).get(name)


def by_name(records: dict[str, dict], field: str) -> dict[str, list[dict]]:
    """Records grouped by the value of a name field (a duplicate shows as two)."""
    out: dict[str, list[dict]] = {}
    for rec in records.values():
        out.setdefault(rec.get(field), []).append(rec)
    return out


def written(run) -> dict[str, int]:
    """{side: created + updated} of a run."""
    return {side: run.counts[side]["created"] + run.counts[side]["updated"]
            for side in ("books", "crm")}


def failures_of(store, run) -> list[dict]:
    """The failure rows a run recorded."""
    return store.failures(run_id=run.id, unresolved_only=False).to_dict("records")


def events_of(store, run) -> list[dict]:
    """The record events a run recorded."""
    return store.events(run_id=run.id).to_dict("records")


def data_of(record: dict) -> dict:
    """A Books record without Zoho's own CRM link fields (zcrm_vendor_id …) and its
    stamp: a record kept as it was (skip, a refused clone) may still gain those."""
    return {k: v for k, v in record.items() if not k.startswith("zcrm_")
            and k not in ("is_linked_with_zohocrm", "last_modified_time")}


def money(value) -> Decimal:
    """An amount as an exact Decimal (emulator state holds floats on CRM, Decimals in Books)."""
    return Decimal(str(value))
