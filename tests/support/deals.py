"""Deal-trigger helpers: deals walked through their stages with the CRM API, the customers
they need linked the way the customers sync links them, and the trigger flow's summary."""

from __future__ import annotations

from decimal import Decimal

from crmbooks.runtime import get_runtime
from flows.deal_triggers import sync_deal_triggers

PROPOSAL, NEGOTIATION = "Proposal/Price Quote", "Negotiation/Review"
WON, LOST, QUALIFICATION = "Closed Won", "Closed Lost", "Qualification"
QUOTE_MODE = {"enabled": True, "mode": "quote", "create_stage": PROPOSAL,
              "accept_stage": WON, "invoice_on_accept": True}
INVOICE_MODE = {"enabled": True, "mode": "invoice"}


def configure(store, settings: dict) -> None:
    store.save_settings("deals", settings)


def accounts(server) -> list[dict]:
    return sorted(server.emu.crm.records("Accounts").values(), key=lambda r: r["id"])


def link_account(store, account: dict) -> str:
    """Link a CRM account to a Books business customer as the customers sync does."""
    books = get_runtime().books
    for name in (account["Account_Name"], f"{account['Account_Name']} ({account['id']})"):
        result = books.upsert_by_custom_field(
            "contacts", "cf_crm_id", account["id"],
            {"contact_name": name, "contact_type": "customer", "customer_sub_type": "business"})
        if result.ok:  # a seeded Books customer may already carry the name
            break
    assert result.ok, result
    store.upsert_link("customers", crm_id=account["id"], books_id=result.id, kind="accounts",
                      crm_module="Accounts", made_by="sync")
    return result.id


def new_deal(account: dict | None, stage: str = QUALIFICATION, **values) -> str:
    body = {"Deal_Name": values.pop("name", "Rollout of 40 seats"), "Stage": stage,
            "Amount": Decimal("1250.50"), "Description": "Forty seats, one year", **values}
    if account is not None:
        body["Account_Name"] = {"id": account["id"]}
    body = {k: v for k, v in body.items() if v is not None}
    [result] = get_runtime().crm.create("Deals", [body])
    assert result.ok, result
    return result.id


def move(deal_id: str, **values) -> None:
    [result] = get_runtime().crm.update("Deals", [{"id": deal_id, **values}])
    assert result.ok, result


def trigger(*deal_ids: str, dry_run: bool = False) -> dict:
    state = sync_deal_triggers(deal_ids=list(deal_ids) or None, dry_run=dry_run,
                               return_state=True)
    try:
        return state.result()
    except Exception as exc:  # records failed: the summary rides on the exception
        summary = getattr(exc, "summary", None)
        if summary is None:
            raise
        return summary


def books_of(server, resource: str, deal_id: str) -> list[dict]:
    org = server.emu.books.org()
    return [r for r in org.records[resource].values() if r.get("zcrm_potential_id") == deal_id]


def deal(server, deal_id: str) -> dict:
    return server.emu.crm.records("Deals")[deal_id]


def events(store, run_id: str) -> list[dict]:
    return store.events(run_id=run_id).to_dict("records")


def written(summary: dict) -> int:
    """Records a run created or updated on both sides (a refused run counts nothing)."""
    counts = summary["counts"] or {}
    return sum(counts.get(side, {}).get(kind, 0)
               for side in ("books", "crm") for kind in ("created", "updated"))
