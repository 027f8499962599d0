"""Transactions planned both ways, pure: what each CRM record asks of Books and each Books
record asks of the CRM, from the mapped records, the links and the Books records as they are.

Who wins: while a Books transaction is a draft, CRM edits reach it (and a Books edit of the
same record made since the last run gives way to them). Past draft Books owns status and
amounts: a CRM edit of those is skipped with its reason and the CRM record is set back to the
Books values in the same run; mapped custom fields still travel from the CRM.

Echoes plan nothing: each link keeps what crmbooks last wrote on both sides, so our own writes
(a CRM record we updated, a Books record we wrote) come back unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmbooks.store.jsonsafe import json_safe
from crmbooks.sync.registry import document_type, party, shape
from crmbooks.sync.transactions_crm import (
    books_crm_id,
    crm_body,
    custom_to_crm,
    is_trigger_key,
    subject_of,
)


def id_of(record: Mapping[str, Any], resource: str) -> str:
    """The Books id of a transaction of `resource`."""
    return str(record[document_type(resource).books.id_field])


def party_id(record: Mapping[str, Any], resource: str) -> str:
    """The Books customer (or vendor) id of a Books transaction."""
    return str(record.get(party(document_type(resource)).books_id) or "")


def crm_content(body: dict, record: Mapping[str, Any]) -> dict:
    """What a link keeps of a Books record as the CRM saw it last (its `books_values`): the
    CRM body, plus the Books status and total a list summary can be checked against."""
    books = shape().books
    return json_safe({**body, "$status": record.get(books.status),
                      "$total": record.get(books.total)})


def is_echo(link, summary: Mapping[str, Any]) -> bool:
    """A Books record that still carries the stamp, status and total our last write left: it
    needs no detail read and no plan. (Stamps have one-second resolution: a person's edit in
    the very second of our write differs at least in status or total, or waits for the next
    webhook, which is read in full.)"""
    books = shape().books
    values = link.books_values or {}
    return bool(link.books_modified) and link.books_modified == summary.get(
        books.modified) and values.get("$status") == summary.get(books.status) and str(
        values.get("$total")) == str(json_safe(summary.get(books.total)))


def _books_value(record: Mapping[str, Any], api_name: str) -> str:
    return next((str(cf.get("value") or "") for cf in record.get("custom_fields") or []
                 if cf.get("api_name") == api_name), "")


# ------------------------------------------------------------------------------ CRM → Books


def plan_to_books(rows: list[dict], links: Mapping[str, Any],
                  twins: Mapping[str, dict | None]) -> list[dict]:
    """Per mapped CRM record: create, update, link (show the Books id on the CRM record),
    nothing, skip (Books owns it past draft; the row carries the Books record to restore) or
    fail. `links`: CRM id → link; `twins`: Books id → the Books record as it is now (None:
    deleted), for every linked record whose CRM values changed."""
    plan = []
    for row in rows:
        noun = document_type(row["resource"]).noun
        base = {**row, "action": "fail", "target": "books", "source": "crm", "books_id": None}
        if row["body"] is None:
            plan.append(base)
            continue
        link = links.get(row["crm_id"])
        if link is None:
            plan.append({**base, "action": "create", "reason": f"new {noun}"})
            continue
        base["books_id"] = link.books_id
        if (link.crm_values or {}) == row["content"]:
            if row["crm_value"] != link.books_id:
                plan.append({**base, "action": "link", "target": "crm",
                             "reason": "Books id shown on the CRM record"})
            else:
                plan.append({**base, "action": "nothing", "reason": "unchanged"})
            continue
        plan.append(_past_draft(base, twins.get(link.books_id), noun))
    return plan


def _past_draft(row: dict, current: dict | None, noun: str) -> dict:
    """A changed CRM record of a linked transaction: the whole body while Books has it as a
    draft; past draft Books owns status and amounts, so only the custom fields go (and the
    Books record they leave is set back over the CRM record, `restore_after`), or, with none
    changed, the row carries the Books record (`restore`) to set the CRM record back to."""
    doc = document_type(row["resource"])
    status = (current or {}).get(shape().books.status)
    if current is None:
        return {**row, "action": "create", "reason": f"the Books {noun} was deleted"}
    if status in doc.closed_statuses:
        return {**row, "action": "skip", "restore": current, "reason": f"the Books {noun} is "
                f"{status}: CRM changes are no longer applied (the CRM record is set back to "
                "the Books values)"}
    if status in (None, "", "draft"):
        return {**row, "action": "update", "reason": "changed in CRM"}
    custom = row.get("custom") or []
    if custom and any(c["value"] != _books_value(current, c["api_name"]) for c in custom):
        # Once the custom fields are in Books, the Books record as that write left it goes
        # back over the CRM record (its amounts and status, with the new custom values): the
        # CRM does not keep amounts Books does not have. Not before the write: a failed one
        # must not take the CRM user's custom values away.
        return {**row, "body": {"custom_fields": custom}, "action": "update",
                "restore_after": True,
                "reason": f"custom fields changed in CRM (the Books {noun} is {status}: Books "
                          "keeps its status and amounts, the CRM record is set back to them)"}
    return {**row, "action": "skip", "restore": current, "reason": f"the Books {noun} is "
            f"{status}: past draft Books owns its status and amounts, CRM changes to them are "
            "not applied (the CRM record is set back to the Books values)"}


# ------------------------------------------------------------------------------ Books → CRM


def map_to_crm(record: Mapping[str, Any], resource: str, *, parties: Mapping[str, dict],
               items: Mapping[str, str], picklist: list[str] | None, present: set[str],
               maps: list[dict], web_base: str = "") -> dict:
    """One Books record in the CRM's form: its CRM body (or why it has none) and what a link
    keeps of it."""
    found = parties.get(party_id(record, resource))
    body, why = crm_body(record, resource, party=found, items_back=items, picklist=picklist,
                         present=present, web_base=web_base)
    custom, problems = custom_to_crm(record, maps)
    reasons = ([why] if why else []) + problems
    if body is not None and not reasons:
        body.update(custom)
    return {"body": body if not reasons else None, "reason": "; ".join(reasons),
            "party": found, "content": crm_content(body, record) if body and not reasons
            else None}


def plan_to_crm(records: Mapping[str, list[dict]], mapped: Mapping[str, dict], *,
                links: Mapping[str, Any], present: Mapping[str, list[str]],
                accounts: Mapping[str, tuple[dict | None, str | None]],
                written_in_books: set[str], removed: frozenset[str] = frozenset()
                ) -> list[dict]:
    """Per Books record (by resource): create or update its CRM record, link (write the CRM id
    into Books), nothing, skip (with the reason) or fail (with every reason).

    `mapped`: record key → map_to_crm's answer; `links`: Books id → link; `accounts`: CRM
    contact id → (its account lookup, or why none), for creates whose party is a contact;
    `written_in_books`: Books ids the CRM → Books plan writes this run (the CRM edit goes
    first); `removed`: CRM ids `crmbooks disable` deleted, which a Books record may still name
    (its CRM record is created again, never updated by that id). A transaction of a deal is
    copied like any other, with its deal (Deal_Name)."""
    plan = []
    for resource, found in records.items():
        for record in found:
            plan.append(_plan_one(record, resource, mapped, links,
                                  set(present.get(document_type(resource).crm.module, [])),
                                  accounts, written_in_books, removed))
    return plan


def _plan_one(record: Mapping[str, Any], resource: str, mapped, links,
              present: set[str], accounts, written_in_books: set[str],
              removed: frozenset[str] = frozenset()) -> dict:
    doc, crm, books = document_type(resource), shape().crm, shape().books
    books_id = id_of(record, resource)
    link = links.get(books_id)
    key = f"{resource}:{books_id}"
    row = {"record_key": key, "target": "crm", "source": "books", "resource": resource,
           "crm_module": doc.crm.module, "books_id": books_id,
           "crm_id": link.crm_id if link else None, "body": None, "content": None,
           "name": str(record.get(doc.books.number_field) or ""),
           "stamp": record.get(books.modified), "status": record.get(books.status),
           "cf": _crm_id_in_books(record, removed),
           # a trigger's key stays in cf_crm_id: the CRM id is not written over it
           "keep_cf": is_trigger_key(books_crm_id(record))}
    restoring = bool(record.get("_restore"))
    if link is not None and "line_items" not in record and is_echo(link, record):
        return {**row, "action": "nothing", "reason": "our own write (CRM → Books)"}
    answer = mapped[key]
    if link is None and not row["cf"] and answer["party"] is None:
        who = party(doc)
        return {**row, "action": "skip", "reason": f"its {doc.books.party} "
                f"{record.get(who.books_name) or party_id(record, resource)!r} is not linked "
                f"to the CRM: the {doc.noun} is not copied (sync {who.module} first to include "
                "it)"}
    if answer["body"] is None:
        return {**row, "action": "fail", "reason": answer["reason"]}
    if link is not None and books_id in written_in_books and not restoring:
        return {**row, "action": "nothing", "reason": f"edited in the CRM too: the CRM edit "
                f"goes first while the Books {doc.noun} is a draft"}
    body = dict(answer["body"])
    crm_id = link.crm_id if link else row["cf"] or None
    row.update(body=body, content=answer["content"], crm_id=crm_id)
    if restoring and link is not None:
        body[crm.books_id] = books_id
        return {**row, "action": "update", "reason": f"edited in CRM past draft: set back to "
                f"the Books {doc.noun} (Books owns its status and amounts)"}
    if link is not None and (link.books_values or {}) == answer["content"]:
        if row["cf"] != link.crm_id and not row["keep_cf"] \
                and row["status"] not in doc.uneditable_statuses:
            return {**row, "action": "link", "target": "books",
                    "reason": "CRM id shown on the Books record"}
        return {**row, "action": "nothing", "reason": "unchanged"}
    if crm_id:
        body[crm.books_id] = books_id
        return {**row, "action": "update", "reason": "changed in Books" if link else
                "re-paired with the CRM record it was made from (its link was lost)"}
    body.update({crm.subject: subject_of(record, resource), crm.books_id: books_id})
    contact = party(doc).crm.get("contacts")
    account = party(doc).crm.get("accounts")
    if contact in body and account in present and account not in body:
        lookup, why = accounts.get(body[contact]["id"], (None, "its contact was not read"))
        if why:
            return {**row, "action": "fail", "reason": why}
        body[account] = lookup
    return {**row, "action": "create", "reason": f"new {doc.noun} in Books"}


def _crm_id_in_books(record: Mapping[str, Any], removed: frozenset[str] = frozenset()) -> str:
    """The CRM id a Books record names ('' for none, and for a deal trigger's key: the CRM
    record of a triggered quote is found by its Books id, and the key stays for the
    trigger; '' too for a CRM record `disable` removed: it is created again)."""
    value = books_crm_id(record)
    return "" if is_trigger_key(value) or value in removed else value


def contacts_needing_accounts(mapped: Mapping[str, dict], links: Mapping[str, Any],
                              present: Mapping[str, list[str]]) -> set[str]:
    """CRM contact ids whose account a Books → CRM create needs (CRM transactions need an
    account; with contacts as customers it is the contact's)."""
    wanted = set()
    for key, answer in mapped.items():
        resource, _, books_id = key.partition(":")
        doc = document_type(resource)
        contact, account = party(doc).crm.get("contacts"), party(doc).crm.get("accounts")
        body = answer.get("body") or {}
        if (books_id not in links and contact in body and account not in body
                and account in present.get(doc.crm.module, [])):
            wanted.add(str(body[contact]["id"]))
    return wanted
