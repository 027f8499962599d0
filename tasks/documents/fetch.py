"""Fetch for transactions: the CRM records of each synced module and the Books records of
each document type that changed since their cursors — or, for an event or a retry, the given
records read by id (one found gone is reported as such).

Books list summaries are enough for the records that need no plan (echoes of our own writes,
transactions of customers or vendors that are not linked); the others are read in full (lines,
custom fields), one request each, the only way Books offers.
"""

from __future__ import annotations

from crmbooks.sync.registry import document_of_crm_module, document_type
from crmbooks.sync.transactions_plan import id_of, is_echo, party_id
from tasks.context import RunContext
from tasks.documents.links import parties_back
from tasks.documents.start import MODULE
from tasks.family import Fetched


def _targets(run: RunContext, side: str) -> dict[str, list[str]]:
    """{CRM module or Books resource: ids} of a targeted run, for one side."""
    return {key.partition(":")[2]: list(dict.fromkeys(str(i) for i in ids))
            for key, ids in run.targets.items() if key.partition(":")[0] == side}


def fetch_crm(run: RunContext) -> Fetched:
    """CRM records per synced module: the targeted ids, or changed since each cursor."""
    crm, frames, gone = run.runtime().crm, {}, []
    if not run.facts["to_books"]:
        return Fetched()
    targets = _targets(run, "crm")
    for module in run.facts["modules"]:
        fields = run.facts["fields"][module]
        if run.targeted:
            ids = targets.get(module, [])
            found = [crm.get_record(module, i, fields) for i in ids]
            frames[module] = [r for r in found if r]
            gone += [f"{module}:{i}" for i, r in zip(ids, found, strict=True) if not r]
            continue
        records: dict[str, dict] = {}
        for page in crm.iter_records(module, fields, sort_by="Modified_Time",
                                     modified_since=run.cursors.get(f"crm:{module}")):
            records.update({str(r["id"]): r for r in page})  # the boundary may repeat
        frames[module] = list(records.values())
    return Fetched(frames, gone)


def fetch_books(run: RunContext) -> Fetched:
    """Books records per synced document type: the targeted ids, or changed since each
    cursor (summaries where they suffice, full records otherwise)."""
    if not run.facts["to_crm"]:
        return Fetched()
    runtime = run.runtime()
    books, store = runtime.books, runtime.store
    targets = _targets(run, "books")
    frames, gone = {}, []
    if run.targeted:
        for resource, ids in targets.items():
            found = [books.get(resource, i) for i in ids]
            frames[resource] = [r for r in found if r]
            gone += [f"{resource}:{i}" for i, r in zip(ids, found, strict=True) if not r]
        return Fetched(frames, gone)
    links = {link.books_id: link for link in store.links_by_crm_id(MODULE).values()}
    parties = parties_back(store)
    for module in run.facts["modules"]:
        resource = document_of_crm_module(module).books.resource
        summaries: dict[str, dict] = {}
        for page in books.iter_modified(resource, run.cursors.get(f"books:{resource}")):
            summaries.update({id_of(r, resource): r for r in page})
        records = []
        for books_id, summary in summaries.items():
            echo = books_id in links and is_echo(links[books_id], summary)
            stranger = books_id not in links and party_id(summary, resource) not in parties
            records.append(summary if echo or stranger else
                           (books.get(resource, books_id) or summary))
        frames[resource] = records
    return Fetched(frames, gone)


def resource_of(key: str) -> str:
    """The Books resource of a transaction's record key (Quotes:1 → estimates)."""
    head = key.partition(":")[0]
    try:
        return document_type(head).books.resource
    except KeyError:
        return document_of_crm_module(head).books.resource
