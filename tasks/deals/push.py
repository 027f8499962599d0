"""Push for deal triggers, exactly once.

A triggered transaction is created by an upsert on its unique `cf_crm_id` keyed by the deal id
and what it is (`<deal id>:estimate`, `<deal id>:invoice`), and its link (module deals, made by
trigger) is stored right after. A deal's steps run in order and stop at the first the
provider refuses. The quote a trigger made is shown on its deal (one CRM update per 100
deals).

Links of deals: one row per (deal, transaction) with ``crm_id = <deal>:<resource>:<books id>``
(a deal may link to several transactions), ``parent_crm_id`` the deal id, ``kind`` the Books
resource and ``books_id`` the transaction (a transaction belongs to one deal). A link's
``books_values`` hold the status the trigger left the transaction in and the content it
wrote, so a later run knows whether a person changed it in Books and whether the deal changed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crmbooks.connectors.errors import RetriableError
from crmbooks.connectors.results import WriteResult
from crmbooks.sync.outcomes import outcome, rejected
from crmbooks.sync.registry import document_type, shape
from crmbooks.sync.triggers import CRM_QUOTE_FIELD, DEALS, QUOTE, link_crm_id, upsert_key
from tasks.context import RunContext

MODULE = "deals"
#: The steps that write a Books transaction.
BOOKS_STEPS = ("create", "update", "mark")


def books_units(plan: list[dict]) -> list[dict]:
    """One unit per deal with transactions to write: its steps, in order."""
    by_deal: dict[str, list[dict]] = {}
    for step in plan:
        if step["action"] in BOOKS_STEPS:
            by_deal.setdefault(step["deal_id"], []).append(step)
    return [{"deal_id": deal_id, "steps": steps} for deal_id, steps in by_deal.items()]


def crm_units(run: RunContext, plan: list[dict], books_done: list[dict]) -> list[dict]:
    """The deals to show their quote on: those the plan says, and those whose quote was just
    made (when the CRM organization has the field)."""
    if CRM_QUOTE_FIELD not in run.facts["deal_fields"]:
        return []
    shown = {s["deal_id"]: s for s in plan if s["action"] == "link"}
    for o in books_done:
        if o["ok"] and o["action"] == "create" and o["resource"] == QUOTE \
                and o.get("crm_value") != o["books_id"]:
            shown[o["deal_id"]] = {**o, "action": "link", "target": "crm",
                                   "reason": f"quote {o['books_id']} shown on the deal"}
    return list(shown.values())


def push_books(run: RunContext, units: list[dict]) -> list[dict]:
    """Carry out each deal's steps; a refused step stops that deal's later steps."""
    outcomes: list[dict] = []
    for unit in units:
        made: dict[str, str] = {}
        for step in unit["steps"]:
            if not step["books_id"] and step["action"] != "create":
                step = {**step, "books_id": made.get(step["resource"])}  # made in this run
            try:
                done = _push_step(run, step, made)
            except RetriableError as exc:  # retries exhausted: this deal waits for a rerun
                done = rejected(step, "books", WriteResult(0, False, code="RETRIES_EXHAUSTED",
                                                           message=str(exc)),
                                **_extra(step))
            outcomes.append(done)
            if not done["ok"]:
                break
            if step["action"] == "create":
                made[step["resource"]] = done["books_id"]
    return outcomes


def _extra(step: dict) -> dict:
    return {"deal_id": step["deal_id"], "resource": step["resource"],
            "crm_value": step.get("crm_value"), "changes": _changes(step)}


def _changes(step: dict) -> list[dict]:
    if step["action"] == "mark":
        return [{"field": "status", "before": step.get("before"), "after": step.get("status")}]
    if step["action"] == "link":
        return [{"field": CRM_QUOTE_FIELD, "before": None, "after": step.get("books_id")}]
    before, after = step.get("before") or {}, step.get("content") or {}
    return [{"field": k, "before": before.get(k), "after": after.get(k)}
            for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]


def _body(step: dict, made: dict[str, str]) -> dict[str, Any]:
    """The step's Books body with money as Decimal and the just-made quote id filled in."""
    lines = shape().books.lines
    body = dict(step["body"])
    body["line_items"] = [{**line, lines.rate: Decimal(line[lines.rate])}
                          for line in body["line_items"]]
    field = DEALS.makes["invoice"].from_quote_field
    if field and body.get(field) == "$estimate":
        if made.get(QUOTE):
            body[field] = made[QUOTE]
        else:
            body.pop(field)
    return body


def _push_step(run: RunContext, step: dict, made: dict[str, str]) -> dict:
    runtime = run.runtime()
    books, store = runtime.books, runtime.store
    resource, deal_id = step["resource"], step["deal_id"]
    status_field = shape().books.status
    if step["action"] == "create":
        result = books.upsert_by_custom_field(resource, shape().books.crm_id,
                                              upsert_key(deal_id, resource), _body(step, made))
        status = (result.record or {}).get(status_field) or "draft"
        values = {"status": status, "content": step["content"]}
    elif step["action"] == "update":
        result = books.update(resource, step["books_id"], _body(step, made))
        values = {"content": step["content"]}
    else:  # mark: the intended status is noted first, so a crash right after the mark
        # cannot make the trigger mistake its own status change for a person's.
        save_link(store, deal_id, resource, step["books_id"], {"pending": step["status"]},
                  None)
        result = books.mark(resource, step["books_id"], step["status"])
        values = {"status": step["status"], "pending": None}
    if not result.ok:
        return rejected(step, "books", result, **_extra(step))
    books_id = str(result.id or step["books_id"])
    save_link(store, deal_id, resource, books_id, values, result.record)
    number = (result.record or {}).get(document_type(resource).books.number_field)
    return outcome(step, "books", books_id=books_id, number=number, **_extra(step))


def save_link(store, deal_id: str, resource: str, books_id: str, values: dict,
              record: dict | None) -> None:
    """The trigger's link, right after its write (a rerun finds it instead of writing)."""
    found = store.find_link(MODULE, books_id=books_id)
    merged = {**((found.books_values or {}) if found else {}), **values}
    store.upsert_link(MODULE, crm_id=link_crm_id(deal_id, resource, books_id), books_id=books_id,
                      kind=resource, crm_module=DEALS.crm_module, parent_crm_id=deal_id,
                      books_values=merged, made_by="trigger",
                      books_modified=(record or {}).get(shape().books.modified))


def push_crm(run: RunContext, units: list[dict]) -> list[dict]:
    """Show each deal's quote on the deal, 100 deals per call."""
    rows = [{"id": u["deal_id"], CRM_QUOTE_FIELD: u["books_id"]} for u in units]
    results = run.runtime().crm.update(DEALS.crm_module, rows) if rows else []
    return [outcome(unit, "crm", changes=_changes(unit)) if result.ok
            else rejected(unit, "crm", result, changes=_changes(unit))
            for unit, result in zip(units, results, strict=True)]
