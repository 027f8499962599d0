"""Map, dedupe and plan for transactions: the pure planners of crmbooks.sync behind three thin
steps.

* map: every fetched CRM record as the body of its Books transaction, every fetched Books
  record as the body of its CRM record (or the reasons it has none);
* dedupe: what the plan needs from the other side — the Books twins of CRM records changed
  since the last run (are they still drafts?), and the CRM accounts of contacts a new CRM
  record will need;
* plan: both directions (crmbooks.sync.transactions_plan).
"""

from __future__ import annotations

from crmbooks.store.jsonsafe import json_safe
from crmbooks.sync.modules import module_spec
from crmbooks.sync.registry import document_of_crm_module, document_type, shape
from crmbooks.sync.transactions import books_body
from crmbooks.sync.transactions_crm import custom_to_books
from crmbooks.sync.transactions_plan import (
    contacts_needing_accounts,
    id_of,
    map_to_crm,
    plan_to_books,
    plan_to_crm,
)
from mappings.schema import transactions_mapping
from tasks.context import RunContext
from tasks.documents.links import items_back, links_of, parties_back
from tasks.documents.start import MODULE
from tasks.family import Fetched


def to_books_row(run: RunContext, module: str, record: dict, links: dict) -> dict:
    """One CRM record mapped for Books: its body, what the link keeps of it, or the reasons it
    cannot go."""
    crm = shape().crm
    doc = document_of_crm_module(module)
    crm_id = str(record["id"])
    row = {"record_key": f"{module}:{crm_id}", "crm_module": module,
           "resource": doc.books.resource, "crm_id": crm_id,
           "name": str(record.get(crm.subject) or ""), "body": None, "content": None,
           "custom": [], "reason": "", "modified": record.get(crm.modified),
           "crm_value": str(record.get(crm.books_id) or "")}
    body, why = books_body(record, module, customers_mode=run.facts["customers_mode"],
                           links=links, currencies=frozenset(run.facts["currencies"]),
                           base_currency=run.base_currency)
    custom, problems = custom_to_books(record, run.facts["maps"].get(module, []))
    if body is None or problems:
        return {**row, "reason": "; ".join(([why] if why else []) + problems)}
    if custom:
        body["custom_fields"] = custom
    return {**row, "body": body, "content": compared(body), "custom": custom}


def compared(body: dict) -> dict:
    """What a link keeps of a Books body to tell a CRM change by: all of it but the deal's
    name, which the CRM shows as the deal is named now and Books as it was named when linked
    (comparing it would rewrite a quote past draft every run after a deal is renamed)."""
    return json_safe({k: v for k, v in body.items() if k != shape().books.deal_name})


def to_crm_answer(run: RunContext, resource: str, record: dict, parties: dict,
                  items: dict) -> dict:
    """One Books record mapped for the CRM (crmbooks.sync.transactions_plan.map_to_crm)."""
    module = document_type(resource).crm.module
    return map_to_crm(record, resource, parties=parties, items=items,
                      picklist=run.facts["statuses"].get(module),
                      present=set(run.facts["present"].get(module, [])),
                      maps=run.facts["maps"].get(module, []), web_base=run.facts["web_base"])


def map_records(run: RunContext, crm: Fetched, books: Fetched) -> dict:
    """Both directions' bodies; the Books records travel along for the plan."""
    store = run.runtime().store
    links = links_of(store) if crm.frames else {}
    to_books = [to_books_row(run, module, record, links)
                for module, records in crm.frames.items() for record in records]
    parties, items = (parties_back(store), items_back(store)) if books.frames else ({}, {})
    to_crm = {f"{resource}:{id_of(record, resource)}": to_crm_answer(run, resource, record,
                                                                     parties, items)
              for resource, records in books.frames.items() for record in records}
    return {"to_books": to_books, "to_crm": to_crm, "books_records": books.frames}


def dedupe(run: RunContext, crm: Fetched, books: Fetched, mapped: dict) -> dict:
    """The Books twins of linked CRM records whose values changed (read unless this run
    fetched them in full), and the accounts of contacts new CRM records need."""
    runtime = run.runtime()
    links = runtime.store.links_by_crm_id(MODULE)
    fetched = {id_of(r, resource): r for resource, records in books.frames.items()
               for r in records if "line_items" in r}
    twins: dict[str, dict | None] = {}
    for row in mapped["to_books"]:
        link = links.get(row["crm_id"])
        if row["body"] is None or link is None or (link.crm_values or {}) == row["content"]:
            continue
        twins[link.books_id] = fetched.get(link.books_id) or runtime.books.get(
            row["resource"], link.books_id)
    by_books = {link.books_id: link for link in links.values()}
    accounts = {}
    customers = transactions_mapping().parties["customer"]
    account_field = customers.crm["accounts"]
    contacts_module = module_spec(customers.module).kind("contacts").crm_module
    for contact_id in sorted(contacts_needing_accounts(mapped["to_crm"], by_books,
                                                       run.facts["present"])):
        contact = runtime.crm.get_record(contacts_module, contact_id, [account_field]) or {}
        account = contact.get(account_field)
        accounts[contact_id] = ({"id": str(account["id"])}, None) if isinstance(
            account, dict) and account.get("id") else (None, (
                f"the CRM contact {contact_id} has no account, which CRM transactions need: "
                "give the contact an account"))
    return {"twins": twins, "accounts": accounts}


def plan(run: RunContext, mapped: dict, found: dict) -> list[dict]:
    """Both directions: CRM → Books first (its edits go first while a Books record is a
    draft), then Books → CRM, including the CRM records to set back to their Books twin."""
    store = run.runtime().store
    links = store.links_by_crm_id(MODULE)
    to_books = plan_to_books(mapped["to_books"], links, found["twins"])
    records = {r: list(rs) for r, rs in mapped["books_records"].items()}
    answers = dict(mapped["to_crm"])
    restore = [r for r in to_books if r.get("restore")]
    if restore:
        parties, items = parties_back(store), items_back(store)
        for row in restore:
            record, resource = {**row["restore"], "_restore": True}, row["resource"]
            books_id = id_of(record, resource)
            records[resource] = [r for r in records.get(resource, [])
                                 if id_of(r, resource) != books_id] + [record]
            answers[f"{resource}:{books_id}"] = to_crm_answer(run, resource, record, parties,
                                                              items)
    written = {r["books_id"] for r in to_books if r["action"] == "update" and r["books_id"]}
    to_crm = plan_to_crm(
        records, answers, links={link.books_id: link for link in links.values()},
        present=run.facts["present"], accounts=found["accounts"], written_in_books=written,
        removed=frozenset(store.removed_crm_ids(MODULE)) if records else frozenset())
    return [_slim(r) for r in to_books] + to_crm + [
        _restore_after(r) for r in to_books if r.get("restore_after")]


def _slim(row: dict) -> dict:
    """A CRM → Books row without the Books record it carries to the CRM side."""
    return {k: v for k, v in row.items() if k != "restore"} | (
        {"restored": True} if row.get("restore") else {})


def _restore_after(row: dict) -> dict:
    """The CRM row that sets a CRM record back to its Books twin once the twin's custom fields
    are written: its body comes from the record Books answers that write with."""
    key = f"{row['resource']}:{row['books_id']}"
    return {"record_key": key, "action": "update", "target": "crm", "source": "books",
            "resource": row["resource"], "crm_module": row["crm_module"],
            "crm_id": row["crm_id"], "books_id": row["books_id"], "name": row["name"],
            "restore_from": row["record_key"],
            "reason": "set back to the Books record once its custom fields are written"}
