"""Transaction tasks, Books → CRM (F14): fetch, plan, push. Start and report are shared with
the CRM → Books half (tasks/transactions.py): one run, one lock, one report.

What reaches the CRM: the status (as a value of the CRM Status picklist), the line items and
an Adjustment that makes the CRM's computed Grand Total equal the Books total, the dates, and
the mapped custom fields — of linked transactions, and of new Books transactions of linked
customers/vendors. A new one is created exactly once: a CRM upsert keyed by the unique
`Books_Id__c` (a replay finds the record it made), the link stored right after, then the CRM
id written into the Books record's `cf_crm_id` so both sides know each other.

Left alone, with the reason in the run's events: transactions of customers/vendors that are not
linked (skipped, not an error) and transactions a deal trigger made or a person linked to a
deal (module `deals`: they are shown on their deal, docs/decisions.md). Echoes plan nothing:
a Books record still carrying the stamp our own last write left is not even read in detail,
and one whose CRM values equal what we last wrote is not written again.
"""

from __future__ import annotations

from decimal import Decimal

from prefect import task

from crmbooks.connectors.errors import RetriableError
from crmbooks.operations import resolve_deleted
from crmbooks.store.jsonsafe import json_safe
from crmbooks.sync.transactions import CRM_BOOKS_ID, CRM_MODULE, NOUN, RESOURCE, SUBFORM, books_body
from crmbooks.sync.transactions_crm import (
    books_crm_id,
    crm_body,
    custom_to_books,
    custom_to_crm,
    subject_of,
)
from tasks.transactions import (
    MODULE,
    UNIQUE_FIELD,
    TransactionsRun,
    crm_content,
    id_field,
    is_echo,
    items_back,
    links_of,
    parties_back,
    party_id,
)

#: Books statuses in which Books refuses edits: the CRM id cannot be written into such a
#: record (its link alone pairs them).
UNEDITABLE = {"void", "cancelled", "billed"}


@task(name="fetch-books-transactions")
def fetch_books_transactions(run: TransactionsRun, books_resource: str | None = None,
                             books_ids: list[str] | None = None,
                             crm_plan: list[dict] | None = None,
                             pushed: list[dict] | None = None) -> dict[str, list]:
    """Books records per resource: these ids (a webhook) or changed since the resource's Books
    cursor. Records that need no detail (echoes of our writes, transactions of parties not
    linked) stay list summaries; the others are read in full (lines, custom fields). Plus
    the records the CRM → Books plan found edited in CRM past draft (in `crm_plan`, or, when
    their custom fields went to Books, in the `pushed` outcomes): the CRM gets them back."""
    restore = _restore([*(crm_plan or []), *(o for o in pushed or () if o["ok"])])
    if not run.to_crm:
        return restore
    runtime = run.runtime()
    books, store = runtime.books, runtime.store
    links = {link.books_id: link for link in store.links_by_crm_id(MODULE).values()}
    parties = parties_back(store)
    out: dict[str, list] = {}
    for resource in (RESOURCE[m] for m in run.modules):
        if books_ids:
            if resource != books_resource:
                continue
            ids = list(dict.fromkeys(str(i) for i in books_ids))
            found = [books.get(resource, i) for i in ids]
            out[resource] = [r for r in found if r]
            # not found (a transient error raises): a failure of it is resolved with a note
            resolve_deleted(store, MODULE, [f"{resource}:{i}" for i, r
                                            in zip(ids, found, strict=True) if not r],
                            "Books", run.dry_run)
            continue
        summaries: dict[str, dict] = {}
        for page in books.iter_modified(resource, run.books_cursors.get(resource)):
            summaries.update({str(r[id_field(resource)]): r for r in page})
        records = []
        for books_id, summary in summaries.items():
            echo = books_id in links and is_echo(links[books_id], summary)
            stranger = books_id not in links and party_id(summary, resource) not in parties
            records.append(summary if echo or stranger else
                           (books.get(resource, books_id) or summary))
        out[resource] = records
    for resource, records in restore.items():
        forced = {str(r[id_field(resource)]) for r in records}
        out[resource] = [r for r in out.get(resource, []) if str(r[id_field(resource)])
                         not in forced] + records
    return out


def _restore(crm_plan: list[dict]) -> dict[str, list]:
    """Books records (already read or just written) to write back over their CRM records,
    marked as such."""
    out: dict[str, list] = {}
    for row in crm_plan:
        if row.get("restore"):
            out.setdefault(row["resource"], []).append({**row["restore"], "_restore": True})
    return out


@task(name="plan-books-transactions")
def plan_books_transactions(run: TransactionsRun, fetched: dict[str, list]) -> list[dict]:
    """Per Books record: create or update its CRM record, write the CRM id into Books
    (link_books), nothing, skip (with the reason) or fail (with every reason)."""
    runtime = run.runtime()
    store = runtime.store
    by_books = {link.books_id: link for link in store.links_by_crm_id(MODULE).values()}
    deals = set(store.links("deals")["books_id"].astype(str))
    parties, items = parties_back(store), items_back(store)
    plan = []
    for resource, records in fetched.items():
        module = CRM_MODULE[resource]
        for record in records:
            plan.append(_plan_one(run, record, resource, module, by_books, deals, parties,
                                  items))
    return plan


def _plan_one(run: TransactionsRun, record: dict, resource: str, module: str, by_books: dict,
              deals: set[str], parties: dict, items: dict) -> dict:
    books_id = str(record[id_field(resource)])
    link = by_books.get(books_id)
    noun = NOUN[resource]
    row = {"key": f"{resource}:{books_id}", "side": "crm", "resource": resource,
           "crm_module": module, "books_id": books_id,
           "crm_id": link.crm_id if link else None, "body": None, "content": None,
           "name": str(record.get(f"{resource[:-1]}_number") or ""),
           "stamp": record.get("last_modified_time"), "status": record.get("status"),
           "cf": books_crm_id(record, UNIQUE_FIELD)}
    if link is not None and "line_items" not in record and is_echo(link, record):
        return {**row, "op": "nothing", "reason": "our own write (CRM → Books)"}
    if link is None and (books_id in deals or ":" in row["cf"]):
        return {**row, "op": "skip", "reason": f"this {noun} belongs to a deal (made by a deal "
                "trigger or linked by hand): it is shown on its deal, not copied to CRM "
                f"{module}"}
    party = parties.get(party_id(record, resource))
    if link is None and not row["cf"] and party is None:
        who = "vendor" if resource == "purchaseorders" else "customer"
        return {**row, "op": "skip", "reason": f"its {who} "
                f"{record.get(f'{who}_name') or party_id(record, resource)!r} is not linked "
                f"to the CRM: the {noun} is not copied (sync {who}s first to include it)"}
    if "line_items" not in record:  # only a summary was read: a linked record needs detail
        record = run.runtime().books.get(resource, books_id) or record
    body, why = crm_body(record, resource, party=party, items_back=items,
                         picklist=run.statuses.get(module), present=set(run.present[module]))
    custom, problems = custom_to_crm(record, run.maps.get(module, []))
    if body is None or problems:
        return {**row, "op": "fail", "reason": "; ".join(([why] if why else []) + problems)}
    body.update(custom)
    content = crm_content(body, record)
    crm_id = link.crm_id if link else row["cf"] or None
    row.update(body=body, content=content, crm_id=crm_id)
    if record.get("_restore") and link is not None:
        body[CRM_BOOKS_ID] = books_id
        return {**row, "op": "update", "reason": f"edited in CRM past draft: set back to the "
                f"Books {noun} (Books owns its status and amounts)"}
    if link is not None and (link.books_values or {}) == content:
        if row["cf"] != link.crm_id and row["status"] not in UNEDITABLE:
            return {**row, "op": "link_books", "reason": "CRM id shown on the Books record"}
        return {**row, "op": "nothing", "reason": "unchanged"}
    if crm_id:
        body[CRM_BOOKS_ID] = books_id
        return {**row, "op": "update", "reason": "changed in Books" if link else
                "re-paired with the CRM record it was made from (its link was lost)"}
    body.update({"Subject": subject_of(record, resource), CRM_BOOKS_ID: books_id})
    if "Contact_Name" in body and "Account_Name" in run.present[module] \
            and "Account_Name" not in body:
        account, why = _account_of_contact(run, body["Contact_Name"]["id"])
        if why:
            return {**row, "op": "fail", "reason": why}
        body["Account_Name"] = account
    return {**row, "op": "create", "reason": f"new {noun} in Books"}


def _account_of_contact(run: TransactionsRun, contact_id: str) -> tuple[dict | None, str | None]:
    """CRM transactions need an account; with contacts as customers it is the contact's."""
    contact = run.runtime().crm.get_record("Contacts", contact_id, ["Account_Name"]) or {}
    account = contact.get("Account_Name")
    if isinstance(account, dict) and account.get("id"):
        return {"id": str(account["id"])}, None
    return None, (f"the CRM contact {contact_id} has no account, which CRM transactions need: "
                  "give the contact an account")


@task(name="push-books-transactions")
def push_books_transactions(run: TransactionsRun, plan: list[dict]) -> list[dict]:
    """Upsert new records into CRM (by Books_Id__c), update changed ones, link each right after
    its success, then write the CRM ids into Books (cf_crm_id)."""
    runtime = run.runtime()
    crm, store = runtime.crm, runtime.store
    known = store.links_by_crm_id(MODULE)
    old = {r["key"]: (known[r["crm_id"]].crm_values if r["crm_id"] in known else None)
           for r in plan if r["op"] in ("create", "update")}
    links = links_of(store) if old else {}  # a quiet run loads no party/item links
    outcomes: list[dict] = []
    for module in dict.fromkeys(r["crm_module"] for r in plan):
        for op in ("create", "update"):
            rows = [r for r in plan if r["crm_module"] == module and r["op"] == op]
            if not rows:
                continue
            bodies = [r["body"] if op == "create" else {"id": r["crm_id"], **r["body"]}
                      for r in rows]
            try:
                results = (crm.upsert(module, bodies, duplicate_check_fields=[CRM_BOOKS_ID])
                           if op == "create" else crm.update(module, bodies))
            except RetriableError as exc:
                outcomes += [{**_slim(r), "ok": False, "code": "RETRIES_EXHAUSTED",
                              "message": str(exc)} for r in rows]
                continue
            for row, result in zip(rows, results, strict=True):
                if not result.ok:
                    outcomes.append({**_slim(row), "ok": False, "code": result.code,
                                     "field": result.field, "message": result.message})
                    continue
                row["crm_id"] = result.id or row["crm_id"]
                store.upsert_link(MODULE, crm_id=row["crm_id"], books_id=row["books_id"],
                                  kind=row["resource"], crm_module=module,
                                  books_values=row["content"], made_by="sync",
                                  crm_values=crm_values_after(run, row, old.get(row["key"]), links),
                                  books_modified=row["stamp"],
                                  crm_modified=(result.details or {}).get("Modified_Time"))
                outcomes.append({**_slim(row), "ok": True})
    for row in plan:
        done = row["op"] == "link_books" or any(
            o["ok"] and o["key"] == row["key"] for o in outcomes)
        if done and row["crm_id"] and row["cf"] != row["crm_id"] \
                and row["status"] not in UNEDITABLE:
            outcomes += _write_crm_id(run, row)
    return outcomes


def _write_crm_id(run: TransactionsRun, row: dict) -> list[dict]:
    """cf_crm_id on the Books record; the stamp this write leaves is remembered as an echo."""
    runtime = run.runtime()
    try:
        result = runtime.books.update(row["resource"], row["books_id"], {
            "custom_fields": [{"api_name": UNIQUE_FIELD, "value": row["crm_id"]}]})
    except RetriableError as exc:
        return [{**_slim(row), "side": "books", "op": "link_books", "ok": False,
                 "code": "RETRIES_EXHAUSTED", "message": str(exc)}]
    if not result.ok:
        return [{**_slim(row), "side": "books", "op": "link_books", "ok": False,
                 "code": result.code, "field": result.field, "message": result.message}]
    stamp = (result.record or {}).get("last_modified_time")
    if stamp:
        runtime.store.upsert_link(MODULE, crm_id=row["crm_id"], books_id=row["books_id"],
                                  books_modified=stamp)
    # Not counted as a written record (only the CRM id is shown): no outcome when it worked.
    return []


def _slim(row: dict) -> dict:
    return {k: row.get(k) for k in ("key", "crm_module", "resource", "crm_id", "books_id",
                                    "name", "op", "reason")} | {"side": "crm"}


def crm_values_after(run: TransactionsRun, row: dict, before: dict | None,
                     links: dict[str, dict[str, str]]) -> dict | None:
    """The `crm_values` of a CRM record we just wrote: what the CRM → Books path will compute
    from it (the CRM record as it now reads), so the echo of this write plans nothing there.
    Fields this path does not write (subject, deal, currency) keep their earlier values.
    `links`: links_of(store), read once per push."""
    module, sent = row["crm_module"], row["body"]
    rows = [{**r, "Quantity": float(r["Quantity"]), "List_Price": float(r["List_Price"]),
             "Discount": float(r["Discount"])} for r in sent[SUBFORM[module]]]
    record = {**sent, SUBFORM[module]: rows, "Adjustment": float(sent.get("Adjustment") or 0),
              "Subject": sent.get("Subject") or (before or {}).get("reference_number") or ""}
    record.pop("Currency", None)
    record = {k: float(v) if isinstance(v, Decimal) else v for k, v in record.items()}
    body, _ = books_body(record, module, customers_mode=run.customers_mode,
                         links=links, currencies=frozenset(),
                         base_currency=None)
    if body is None:
        return None
    custom, _ = custom_to_books(record, run.maps.get(module, []))
    if custom:
        body["custom_fields"] = custom
    kept = {k: v for k, v in (before or {}).items()
            if k in ("reference_number", "zcrm_potential_id", "zcrm_potential_name",
                     "currency_code")}
    return json_safe({**body, **kept})
