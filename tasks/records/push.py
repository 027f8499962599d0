"""Push for the record modules: apply a batch of plan rows to one side, exactly once, and link
each record at once.

Exactly-once (a crash or a lost answer never makes a second record): every create is an
upsert keyed by the other side's id — Books by the unique custom field `cf_crm_id`
(X-Unique-Identifier-Key + X-Upsert), CRM by `duplicate_check_fields` on the unique
`Books_Id__c` — so replaying a push after a crash or a lost answer updates the
record it created instead of creating a second one. A link is stored right after each record's
success (one short transaction), so a rerun finds it. Books contact persons have no unique key:
they are looked up by email / name before being added.

A rejected record is a failure row (the provider's code, field and message), never an
exception: the rest of the batch goes on.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from prefect import get_run_logger

from crmbooks.connectors.results import WriteResult
from crmbooks.sync.mapping import books_values_of, effective_mapping
from crmbooks.sync.outcomes import WRITES, outcome, rejected
from crmbooks.sync.plan import link_fields
from tasks.context import RunContext

#: A unit's Books rows created inside it (contact persons inline in their new customer).
INLINE = "inline_rows"


def rows_for(plan: pd.DataFrame, side: str) -> list[dict]:
    """The plan rows that write to `side`, in plan order (parents before children)."""
    if plan.empty:
        return []
    wanted = plan["action"].isin(WRITES) & plan["target"].isin([side, "both"])
    if side == "books":
        wanted &= plan["inline"] != True  # noqa: E712 - persons created inside their parent
    return [dict(r) for r in plan[wanted].to_dict("records")]


def pairs_to_link(plan: pd.DataFrame) -> list[dict]:
    """Records paired this run with nothing to write: matched by the id one side stores of the
    other (a create whose link was lost in a crash) or by name. Only their link is missing."""
    if plan.empty:
        return []
    wanted = ((plan["action"] == "nothing") & plan["match"].isin(["ref", "name"])
              & plan["crm_id"].notna() & plan["books_id"].notna())
    return [dict(r) for r in plan[wanted].to_dict("records")]


def link_pairs(run: RunContext, rows: list[dict]) -> None:
    """Store the links of `pairs_to_link` rows. A Books contact first gets Zoho's own CRM link
    field (Books' "CRM" filter lists the contacts that carry it): a crash may have come
    between its CRM twin's create and that mark, and once the pair is linked nothing else
    would write it (one request per pair; pairs are rare)."""
    spec, store = run.spec(), run.runtime().store
    for row in rows:
        marked = _set_books_crm_link(run, spec.kind(row["kind"]), row["crm_id"], row["books_id"])
        store.upsert_link(run.module, **link_fields(spec, row), **marked)


def inline_by_parent(plan: pd.DataFrame) -> dict:
    """{parent CRM id: its plan rows created inside the parent (persons)}, in plan order.

    Grouped once: filtering every inline row for every batch was quadratic (about 5·10⁹ steps
    for 50,000 customers with 100,000 contacts)."""
    out: dict = {}
    for row in plan.to_dict("records") if not plan.empty else []:
        if row.get("inline") is True:
            out.setdefault(row["parent_crm_id"], []).append(row)
    return out


def books_units(plan: pd.DataFrame) -> list[dict]:
    """The rows to write to Books, each with the persons to create inside it."""
    inline = inline_by_parent(plan)
    return [{**row, INLINE: inline.get(row.get("crm_id"), [])}
            for row in rows_for(plan, "books")]


def crm_units(plan: pd.DataFrame, books_done: list[dict]) -> list[dict]:
    """The rows to write to the CRM, with the Books ids and values the Books push of the same
    record left (a record that failed in Books waits for the next run)."""
    failed = {o["record_key"] for o in books_done if not o["ok"]}
    written = {o["record_key"]: o for o in books_done if o["ok"]}
    units = []
    for row in rows_for(plan, "crm"):
        if row["record_key"] in failed:
            continue
        done = written.get(row["record_key"], {})
        units.append({**row, "books_id": done.get("books_id") or row.get("books_id"),
                      "held_books_values": done.get("books_values")})
    return units


# ------------------------------------------------------------------------------------ Books


def push_books(run: RunContext, rows: list[dict]) -> list[dict]:
    """Write a batch of plan rows to Books; link each success (unless CRM is still to come)."""
    runtime, spec = run.runtime(), run.spec()
    mapping = effective_mapping(spec, run.module_settings())  # once, not twice per row
    results = []
    for row in rows:
        kind = spec.kind(row["kind"])
        section = mapping.section(kind.section)
        body, status = _split_status(section, kind, _linked_payload(kind, row))
        if kind.books_resource == "contact_persons":
            result = _push_person(runtime, row)
        elif row.get("books_id") and not body:
            # Only the status changed: its action is the whole write.
            result = WriteResult(0, True, id=row["books_id"], action="update")
        elif row.get("books_id"):
            result = runtime.books.update(kind.books_resource, row["books_id"], body)
        else:
            result = runtime.books.upsert_by_custom_field(
                kind.books_resource, spec.books_crm_id_field, row["crm_id"], body)
        if result.ok and status is not None:
            result = _apply_status(run, kind, result, status)
        if not result.ok:
            results.append(rejected(row, "books", result, books_id=result.id
                                    or row.get("books_id"), payload=row.get("books_payload"),
                                    parent_books_id=row.get("parent_books_id")))
            continue
        books_id = result.id or row.get("books_id")
        stamp = (result.record or {}).get("last_modified_time")
        held = _books_held(section, kind, result)
        results.append(outcome(row, "books", books_id=books_id, books_modified=stamp,
                               books_values=held, parent_books_id=row.get("parent_books_id")))
        if row["target"] == "books":
            runtime.store.upsert_link(run.module, **link_fields(spec, row, books_id=books_id,
                                                                books_values=held),
                                      books_modified=stamp if kind.parent is None else None)
            _link_inline_persons(run, row, result, row.get(INLINE) or [])
    return results


def _linked_payload(kind, row: dict) -> dict:
    """The Books body with Zoho's own CRM link (zcrm_account_id …), so Books' "CRM" filter
    lists every contact that came from or is linked to the CRM."""
    if not kind.books_link_field or not row.get("crm_id"):
        return row["books_payload"]
    return {**row["books_payload"], kind.books_link_field: str(row["crm_id"])}


# Status step: Books takes an item's status only through POST /items/{id}/active|inactive,
# never in the body (it refuses `status` there). A pair marked `books_write: status_action` in
# the mapping is taken out of the body here and applied by that call after the record's write
# (or instead of it, when nothing else changed), once, and only when Books does not hold it.


def _split_status(section, kind, payload: dict | None) -> tuple[dict, str | None]:
    """(the Books body without the status, the status to set or None), by the kind's
    section of the effective mapping."""
    payload = dict(payload or {})
    if kind.books_resource == "contact_persons":
        return payload, None
    pair = section.status_action_pair()
    if pair is None or pair.books not in payload:
        return payload, None
    status = payload.pop(pair.books)
    return payload, status if status in ("active", "inactive") else None


def _apply_status(run: RunContext, kind, result: WriteResult, status: str) -> WriteResult:
    """Set the record's status with Books' active/inactive call unless Books already holds it
    (an upsert answers with the record). The result carries the record as it is now, so the
    link stores the new status and the next run plans nothing. A refused call is the row's
    failure (the record's own write stands); the link is not refreshed, so the next run,
    which reads the record again (the cursor stays), plans the status once more."""
    record = result.record
    if record is not None and record.get("status") == status:
        return result
    answer = run.runtime().books.mark_active(kind.books_resource, result.id, status == "active")
    if not answer.ok:
        return WriteResult(0, False, id=result.id, code=answer.code, field="status",
                           message=f"written, but marking it {status} failed "
                                   f"(POST /{kind.books_resource}/{result.id}/{status}): "
                                   f"{answer.message}", details=answer.details)
    return replace(result, record=None if record is None else {**record, "status": status})


def _books_held(section, kind, result: WriteResult) -> dict | None:
    """The mapped values of the record Books answered a write with (None: not returned).

    The link must hold what Books really stored: a field the write did not carry (an item's
    status set by the status step, or a default Books filled in) otherwise looks changed in
    Books on the next run.
    """
    if not result.record or kind.books_resource == "contact_persons":
        return None
    return books_values_of(section, result.record)


def _push_person(runtime, row: dict) -> WriteResult:
    """Create or update one contact person of an existing Books contact (looked up first)."""
    payload, parent = dict(row["books_payload"]), row.get("parent_books_id")
    if row.get("books_id"):
        return runtime.books.update_contact_person(row["books_id"], parent, payload)
    for person in runtime.books.contact_persons(parent):
        if _same_person(person, payload):
            return runtime.books.update_contact_person(str(person["contact_person_id"]),
                                                       parent, payload)
    return runtime.books.create_contact_person(parent, payload)


def _same_person(person: dict, payload: dict) -> bool:
    email = (payload.get("email") or "").casefold()
    if email and (person.get("email") or "").casefold() == email:
        return True
    names = ("first_name", "last_name")
    return all((person.get(n) or "") == (payload.get(n) or "") for n in names)


def _link_inline_persons(run: RunContext, row: dict, result: WriteResult,
                         inline: list[dict]) -> None:
    """Link the persons created inside their new parent to the ids Books gave them."""
    children = [c for c in inline if c.get("parent_crm_id") == row.get("crm_id")]
    if not children or not result.record:
        return
    spec, store = run.spec(), run.runtime().store
    created = list(result.record.get("contact_persons") or [])
    for child in children:
        match = next((p for p in created if _same_person(p, child["books_payload"])), None)
        if match is None:
            continue
        created.remove(match)
        store.upsert_link(run.module, **link_fields(
            spec, {**child, "parent_books_id": result.id},
            books_id=str(match["contact_person_id"])))


# -------------------------------------------------------------------------------------- CRM


def push_crm(run: RunContext, rows: list[dict]) -> list[dict]:
    """Write a batch of plan rows to CRM (creates as one upsert call, updates as one call)."""
    runtime, spec = run.runtime(), run.spec()
    creates = [r for r in rows if not r.get("crm_id")]
    updates = [r for r in rows if r.get("crm_id")]
    results = []
    for group, write in ((creates, "upsert"), (updates, "update")):
        by_module: dict[str, list[dict]] = {}
        for row in group:
            by_module.setdefault(spec.kind(row["kind"]).crm_module, []).append(row)
        for module, module_rows in by_module.items():
            # Read per module: accounts created just above are the parents of these contacts.
            parents = _parent_crm_ids(run)
            payloads = [_crm_payload(r, parents) for r in module_rows]
            if write == "upsert":  # a record crmbooks creates gets the chosen owner
                payloads = [runtime.owned(p) for p in payloads]
                answers = runtime.crm.upsert(module, payloads,
                                             duplicate_check_fields=[spec.crm_books_id_field])
            else:
                answers = runtime.crm.update(module, payloads)
            for row, answer in zip(module_rows, answers, strict=True):
                results.append(_crm_done(run, row, answer))
    return results


def _parent_crm_ids(run: RunContext) -> dict[str, str]:
    """{Books parent id: CRM parent id} from the links written so far (parents go first):
    their ids only, not their JSON values (memory grows with the values)."""
    links = run.runtime().store.link_ids(run.module)
    if links.empty:
        return {}
    return {str(b): str(c) for b, c in zip(links["books_id"], links["crm_id"], strict=True)}


def _crm_payload(row: dict, parents: dict[str, str]) -> dict:
    payload = dict(row["crm_payload"])
    if row.get("crm_id"):
        payload["id"] = row["crm_id"]
    parent = row.get("parent_crm_id") or parents.get(str(row.get("parent_books_id")))
    if row.get("parent_books_id") and parent:
        payload["Account_Name"] = {"id": parent}
    return payload


def _crm_done(run: RunContext, row: dict, answer: WriteResult) -> dict:
    if not answer.ok:
        return rejected(row, "crm", answer, payload=row.get("crm_payload"),
                        parent_books_id=row.get("parent_books_id"))
    spec = run.spec()
    stamp = (answer.details or {}).get("Modified_Time")
    books_id = row.get("books_id")
    marked = _mark_linked_in_books(run, row, answer.id, books_id)
    run.runtime().store.upsert_link(
        run.module, **link_fields(spec, row, crm_id=answer.id, books_id=books_id,
                                  books_values=row.get("held_books_values")),
        crm_modified=stamp, **marked)
    return outcome(row, "crm", crm_id=answer.id, books_id=books_id, crm_modified=stamp,
                   parent_books_id=row.get("parent_books_id"))


def _mark_linked_in_books(run: RunContext, row: dict, crm_id: str | None,
                          books_id: str | None) -> dict:
    """A Books contact that just got its CRM twin (and was not written this run) gets Zoho's
    own CRM link field, once. Returns {"books_modified": stamp} of that write, so the
    next run knows it for our own echo; {} when nothing was written."""
    kind = run.spec().kind(row["kind"])
    if row["target"] != "crm" or row.get("match") == "link":
        return {}
    return _set_books_crm_link(run, kind, crm_id, books_id)


def _set_books_crm_link(run: RunContext, kind, crm_id: str | None,
                        books_id: str | None) -> dict:
    """Write Zoho's own CRM link field on a Books record; {"books_modified": stamp} or {}."""
    if not kind.books_link_field or not crm_id or not books_id:
        return {}
    result = run.runtime().books.update(kind.books_resource, books_id,
                                        {kind.books_link_field: str(crm_id)})
    if not result.ok:
        # The CRM write and the link stand; only Books' own "CRM" filter will miss it.
        get_run_logger().warning("Books contact %s: could not set %s (%s): %s", books_id,
                                 kind.books_link_field, result.code, result.message)
        return {}
    stamp = (result.record or {}).get("last_modified_time")
    return {"books_modified": stamp} if stamp else {}
