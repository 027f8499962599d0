"""Push for transactions, exactly once both ways.

Books first: a CRM record becomes its Books transaction by an upsert on the unique custom field
`cf_crm_id` (the CRM id; a replay after a lost answer finds the record it made), or an update
by id once linked; the link (module transactions) is stored right after, with what was written
on both sides, so the echo of the write plans nothing. Then the CRM: a Books record becomes its
CRM record by an upsert on the unique `Books_Id__c` (100 per call), linked right after; the
Books ids are shown on the CRM records (`Books_Id__c`), the CRM ids written into Books
(`cf_crm_id`), so each side knows the other.
"""

from __future__ import annotations

from decimal import Decimal

from crmbooks.connectors.errors import RetriableError
from crmbooks.connectors.results import WriteResult
from crmbooks.sync.outcomes import outcome, rejected
from crmbooks.sync.registry import document_of_crm_module, document_type, shape
from crmbooks.sync.transactions import books_body
from crmbooks.sync.transactions_crm import custom_to_books
from crmbooks.sync.transactions_plan import id_of, plan_to_crm
from tasks.context import RunContext
from tasks.documents.links import items_back, links_of, parties_back
from tasks.documents.plan import compared, to_crm_answer
from tasks.documents.start import MODULE

WRITES = ("create", "update")


def _exhausted(row: dict, side: str, exc: RetriableError) -> dict:
    """The outcome of a write whose retries ran out: the record waits for the next run."""
    return rejected(row, side, WriteResult(0, False, code="RETRIES_EXHAUSTED",
                                           message=str(exc)))


# ------------------------------------------------------------------------------------ Books


def books_units(plan: list[dict]) -> list[dict]:
    """CRM records to write to Books, and CRM ids to write into Books records."""
    return [r for r in plan if r["target"] == "books"
            and (r["action"] in WRITES or r["action"] == "link")]


def push_books(run: RunContext, units: list[dict]) -> list[dict]:
    """Upsert (or update by id) each record into Books and link it right after."""
    runtime = run.runtime()
    books, store = runtime.books, runtime.store
    unique = shape().books.crm_id
    writes = [r for r in units if r["action"] in WRITES]
    # read once per batch, and not at all when the batch writes no transaction
    parties, items = (parties_back(store), items_back(store)) if writes else ({}, {})
    outcomes = []
    for row in units:
        if row["action"] == "link":
            outcomes += write_crm_id(run, row, row["crm_id"])
            continue
        try:
            # A linked record is updated by its id: one made in Books may not carry cf_crm_id
            # yet, and an upsert by it would then create a second one.
            result = (books.update(row["resource"], row["books_id"], row["body"])
                      if row["action"] == "update" and row["books_id"] else
                      books.upsert_by_custom_field(row["resource"], unique, row["crm_id"],
                                                   row["body"]))
        except RetriableError as exc:
            outcomes.append(_exhausted(row, "books", exc))
            continue
        if not result.ok:
            outcomes.append(rejected(row, "books", result))
            continue
        store.upsert_link(MODULE, crm_id=row["crm_id"], books_id=result.id,
                          kind=row["resource"], crm_module=row["crm_module"],
                          crm_values=row["content"], made_by="sync",
                          books_values=_books_values(run, row["resource"], result.record,
                                                     parties, items),
                          books_modified=(result.record or {}).get(shape().books.modified))
        restore = ({"restore": result.record or books.get(row["resource"], result.id)}
                   if row.get("restore_after") else {})
        outcomes.append(outcome(row, "books", books_id=result.id, resource=row["resource"],
                                crm_value=row["crm_value"], **restore))
    return outcomes


def _books_values(run: RunContext, resource: str, record: dict | None, parties: dict,
                  items: dict) -> dict | None:
    """The `books_values` of a record we just wrote to Books, so that its echo (a webhook, the
    catch-up) plans nothing on the Books → CRM path."""
    if not record:
        return None
    return to_crm_answer(run, resource, record, parties, items)["content"]


def write_crm_id(run: RunContext, row: dict, crm_id: str) -> list[dict]:
    """cf_crm_id on the Books record; the stamp this write leaves is remembered as an echo.
    Only the CRM id is shown, so a success is not counted as a written record (no outcome)."""
    runtime = run.runtime()
    link_row = {**row, "action": "link", "crm_id": crm_id}
    try:
        result = runtime.books.update(row["resource"], row["books_id"], {
            "custom_fields": [{"api_name": shape().books.crm_id, "value": crm_id}]})
    except RetriableError as exc:
        return [_exhausted(link_row, "books", exc)]
    if not result.ok:
        return [rejected(link_row, "books", result)]
    stamp = (result.record or {}).get(shape().books.modified)
    if stamp:
        runtime.store.upsert_link(MODULE, crm_id=crm_id, books_id=row["books_id"],
                                  books_modified=stamp)
    return []


# -------------------------------------------------------------------------------------- CRM


def crm_units(run: RunContext, plan: list[dict], books_done: list[dict]) -> list[dict]:
    """Books records to write to the CRM (with the CRM records to set back to the Books
    record a custom-field write left), then the Books ids to show on CRM records."""
    units = [r for r in plan if r["target"] == "crm" and r["action"] in WRITES
             and not r.get("restore_from")]
    answered = {o["record_key"]: o for o in books_done if o["ok"]}
    restore = [(answered[r["restore_from"]]["resource"], answered[r["restore_from"]]["restore"])
               for r in plan if r.get("restore_from")
               and answered.get(r["restore_from"], {}).get("restore")]
    if restore:
        units += restore_rows(run, restore)
    books_id_field = shape().crm.books_id
    shown: dict[str, dict] = {}
    for row in [r for r in plan if r["target"] == "crm" and r["action"] == "link"] + [
            o for o in books_done if o["ok"] and o["action"] in WRITES]:
        if row.get("crm_value") == row["books_id"] or \
                books_id_field not in run.facts["fields"][_module_of(row)]:
            continue
        shown[row["record_key"]] = {
            "record_key": row["record_key"], "action": "link", "target": "crm",
            "source": "crm", "crm_module": _module_of(row), "crm_id": row["crm_id"],
            "books_id": row["books_id"], "name": row.get("name") or "",
            "reason": "Books id shown on the CRM record"}
    return units + list(shown.values())


def _module_of(row: dict) -> str:
    return row.get("crm_module") or row["record_key"].partition(":")[0]


def restore_rows(run: RunContext, records: list[tuple[str, dict]]) -> list[dict]:
    """The CRM rows that set CRM records back to these Books records ((resource, record) as
    Books answered the write of their custom fields)."""
    store = run.runtime().store
    parties, items = parties_back(store), items_back(store)
    links = {link.books_id: link for link in store.links_by_crm_id(MODULE).values()}
    by_resource: dict[str, list[dict]] = {}
    answers = {}
    for resource, record in records:
        record = {**record, "_restore": True}
        by_resource.setdefault(resource, []).append(record)
        answers[f"{resource}:{id_of(record, resource)}"] = to_crm_answer(run, resource, record,
                                                                         parties, items)
    rows = plan_to_crm(by_resource, answers, links=links,
                       present=run.facts["present"], accounts={}, written_in_books=set())
    return [r for r in rows if r["action"] in WRITES]


def push_crm(run: RunContext, units: list[dict]) -> list[dict]:
    """Upsert new records into the CRM (by Books_Id__c), update changed ones, link each right
    after its success, write the CRM ids into Books; then show the Books ids on the CRM."""
    runtime = run.runtime()
    crm, store = runtime.crm, runtime.store
    books_id_field = shape().crm.books_id
    writes = [r for r in units if r["action"] in WRITES]
    known = store.links_by_crm_id(MODULE) if writes else {}
    before = {r["record_key"]: known[r["crm_id"]].crm_values if r["crm_id"] in known
              else None for r in writes}
    links = links_of(store) if writes else {}  # a batch writing nothing loads no links
    outcomes: list[dict] = []
    for module in dict.fromkeys(r["crm_module"] for r in writes):
        for action in WRITES:
            rows = [r for r in writes if r["crm_module"] == module and r["action"] == action]
            if not rows:
                continue
            bodies = [runtime.owned(r["body"]) if action == "create"
                      else {"id": r["crm_id"], **r["body"]} for r in rows]
            try:
                results = (crm.upsert(module, bodies, duplicate_check_fields=[books_id_field])
                           if action == "create" else crm.update(module, bodies))
            except RetriableError as exc:
                outcomes += [_exhausted(r, "crm", exc) for r in rows]
                continue
            for row, result in zip(rows, results, strict=True):
                if not result.ok:
                    outcomes.append(rejected(row, "crm", result))
                    continue
                crm_id = result.id or row["crm_id"]
                # A create (an upsert on the Books id) made this CRM record: `disable` may
                # delete it. An update leaves the mark as it was.
                made = {"crm_created": True} if action == "create" else {}
                store.upsert_link(MODULE, crm_id=crm_id, books_id=row["books_id"],
                                  kind=row["resource"], crm_module=module,
                                  books_values=row["content"], made_by="sync", **made,
                                  crm_values=crm_values_after(
                                      run, row, before.get(row["record_key"]), links),
                                  books_modified=row["stamp"],
                                  crm_modified=(result.details or {}).get(
                                      shape().crm.modified))
                outcomes.append(outcome(row, "crm", crm_id=crm_id))
                uneditable = document_type(row["resource"]).uneditable_statuses
                if row["cf"] != crm_id and not row.get("keep_cf") \
                        and row["status"] not in uneditable:
                    outcomes += write_crm_id(run, row, crm_id)
    outcomes += _show_books_ids(run, [r for r in units if r["action"] == "link"])
    return outcomes


def _show_books_ids(run: RunContext, rows: list[dict]) -> list[dict]:
    """Books_Id__c on each CRM record (one update call per CRM module)."""
    outcomes = []
    books_id_field = shape().crm.books_id
    for module in dict.fromkeys(r["crm_module"] for r in rows):
        group = [r for r in rows if r["crm_module"] == module]
        sent = [{"id": r["crm_id"], books_id_field: r["books_id"]} for r in group]
        for row, result in zip(group, run.runtime().crm.update(module, sent), strict=True):
            outcomes.append(outcome(row, "crm") if result.ok else rejected(row, "crm", result))
    return outcomes


def crm_values_after(run: RunContext, row: dict, before: dict | None,
                     links: dict[str, dict[str, str]]) -> dict | None:
    """The `crm_values` of a CRM record we just wrote: what the CRM → Books path will compute
    from it (the CRM record as it now reads), so the echo of this write plans nothing there.
    Fields this path does not write (subject, deal, currency) keep their earlier values."""
    crm, books = shape().crm, shape().books
    module, sent = row["crm_module"], row["body"]
    subform = document_of_crm_module(module).crm.subform
    lines = crm.lines
    rows = [{**r, lines.quantity: float(r[lines.quantity]), lines.price: float(r[lines.price]),
             lines.discount: float(r[lines.discount])} for r in sent[subform]]
    record = {**sent, subform: rows, crm.adjustment: float(sent.get(crm.adjustment) or 0),
              crm.subject: sent.get(crm.subject) or (before or {}).get(books.reference) or ""}
    record.pop(crm.currency, None)
    record = {k: float(v) if isinstance(v, Decimal) else v for k, v in record.items()}
    body, _ = books_body(record, module, customers_mode=run.facts["customers_mode"],
                         links=links, currencies=frozenset(), base_currency=None)
    if body is None:
        return None
    custom, _ = custom_to_books(record, run.facts["maps"].get(module, []))
    if custom:
        body["custom_fields"] = custom
    # the deal is sent (Books' deal, or none) whenever the CRM has the field
    deal = () if crm.deal in sent else (books.deal_id,)
    kept = {k: v for k, v in (before or {}).items() if k in (books.reference, books.currency,
                                                              *deal)}
    return compared({**body, **kept})
