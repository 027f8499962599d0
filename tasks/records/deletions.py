"""The deletions step of the record modules: records deleted on one side, their twins.

Read after the push, from three places: the CRM's deleted-records list since this step's own
cursor (an incremental run), the targeted records a run found gone (an event, a retry, fetch
one), and Books updates refused because the Books record no longer exists (code 1002: a twin
deleted in Books). For each deleted record that has a link, the module's policy for that side
says what happens to the twin (crmbooks/sync/deletions.py): kept, marked inactive or deleted.
Whatever the policy, the link is retired and history says what was deleted where and what was
done, so a gone twin never becomes a failure that repeats.

Exactly once: the twin is deleted first and its link retired right after. A run killed in
between leaves the link; the rerun finds the record deleted again (the cursor had not moved,
or the event comes back), its delete is answered "does not exist", and it only retires the
link: nothing is deleted twice.

The brake: a run that would delete or deactivate more than the module's limits holds them
all in the store (links kept) and says so; `crmbooks deletions approve RUN` approves them and
the next run applies them.
"""

from __future__ import annotations

from prefect import get_run_logger

from crmbooks.sync.cursors import later, parse_stamp
from crmbooks.sync.deletions import TWIN, brake_note, braked, policy_for, reason
from crmbooks.sync.mapping import books_key, crm_key
from tasks.context import RunContext
from tasks.family import Fetched

#: The cursor (side name in the cursor table) of the CRM's deleted-records list.
CURSOR = "crm-del"
#: Books resources with delete and mark-inactive calls (contact persons go with their
#: contact; their links are only retired).
ACTIONABLE = ("contacts", "items")
#: Codes that say the record to delete no longer exists: Books 1002, CRM INVALID_DATA.
GONE_CODES = {"1002", "INVALID_DATA"}


def deletions(run: RunContext, crm: Fetched, books: Fetched, outcomes: list[dict]
              ) -> tuple[list[dict], str | None]:
    """Handle the records deleted on either side; return the run's outcomes (refusals of a
    gone twin replaced by what was done about it, plus one outcome per handled deletion) and
    a note when the brake held deletions."""
    if run.dry_run:
        return outcomes, None
    runtime, settings = run.runtime(), run.module_settings()
    store = runtime.store
    found, newest = _deleted(run, crm, books, outcomes)
    kinds = {k.name: k for k in run.spec().kinds}
    links = store.links_of(run.module, crm_ids=[i for s, i in found if s == "crm"],
                           books_ids=[i for s, i in found if s == "books"])
    by_id = {("crm", r["crm_id"]): r for r in links.to_dict("records")}
    by_id.update({("books", r["books_id"]): r for r in links.to_dict("records")})
    todo, seen = [], set()
    for side, record_id in found:
        link = by_id.get((side, record_id))
        if link is None or link["crm_id"] in seen:
            continue  # never linked (or already handled this run): nothing to do here
        seen.add(link["crm_id"])
        kind = kinds.get(link["kind"])
        resource = kind.books_resource if kind else "contacts"
        action = policy_for(settings, side)
        if TWIN[side] == "books" and resource not in ACTIONABLE:
            action = "ignore"
        todo.append({"deleted_side": side, "deleted_id": record_id, "crm_id": link["crm_id"],
                     "books_id": link["books_id"], "kind": link["kind"],
                     "crm_module": link["crm_module"] or (kind.crm_module if kind else ""),
                     "resource": resource, "action": action})
    # Approved by a person: applied now, past the brake (one row per record).
    approved = {h.crm_id: h for h in store.held_deletions(run.module, states=("approved",))}
    for item in todo:
        if item["crm_id"] in approved:
            item.update(action=approved[item["crm_id"]].action,
                        held=approved.pop(item["crm_id"]).id)
    acting = [t for t in todo if t["action"] != "ignore" and "held" not in t]
    note = None
    if acting and braked(len(acting), store.count_links(run.module),
                         settings.delete_brake_count, settings.delete_brake_share):
        store.hold_deletions(run.run_id, run.module, acting)
        note = brake_note(len(acting), run.run_id, settings.delete_brake_count,
                          settings.delete_brake_share)
        get_run_logger().warning("%s: %s", run.module, note)
        todo = [t for t in todo if t["action"] == "ignore" or "held" in t]
    todo += [{"deleted_side": h.deleted_side, "deleted_id": h.deleted_id, "crm_id": h.crm_id,
              "books_id": h.books_id, "kind": h.kind, "crm_module": h.crm_module,
              "resource": kinds[h.kind].books_resource if h.kind in kinds else "contacts",
              "action": h.action, "held": h.id} for h in approved.values()]
    retitled = {str(o["books_id"]): o["record_key"] for o in outcomes if _gone_twin(o)}
    # Journaled before they are sent, like the push's writes (the report settles them).
    store.journal_writes(run.run_id, run.module, [
        {"side": TWIN[t["deleted_side"]], "kind": t["kind"], "crm_id": t["crm_id"],
         "books_id": t["books_id"], "action": t["action"], "changes": [],
         "record_key": retitled.get(str(t["books_id"])) or _outcome(
             t, TWIN[t["deleted_side"]], t["action"], None)["record_key"]}
        for t in todo if t["action"] != "ignore"])
    done = [_apply(run, item) for item in todo]
    store.finish_deletions(item["held"] for item, o in zip(todo, done, strict=True)
                           if "held" in item and o["ok"])
    if newest is not None and all(o["ok"] for o in done):
        store.advance_cursor(run.module, CURSOR, newest)
    handled = {(t["deleted_side"], t["deleted_id"]) for t in todo}
    kept = [o for o in outcomes if not _gone_twin(o) or ("books", str(o["books_id"]))
            not in handled]
    # The refused writes to gone twins leave the outcomes here: settle their journal rows now.
    store.settle_writes(run.run_id, [o for o in outcomes if _gone_twin(o) and (
        "books", str(o["books_id"])) in handled])
    for o in done:  # a gone twin's outcome keeps the key its refused update had
        o["record_key"] = retitled.get(str(o.get("books_id")), o["record_key"])
    return kept + done, note


def _deleted(run: RunContext, crm: Fetched, books: Fetched, outcomes: list[dict]):
    """[(side, id)] of the records found deleted, and the newest CRM deletion time read."""
    found: list[tuple[str, str]] = []
    newest = None
    if not run.targeted:
        runtime = run.runtime()
        since = runtime.store.cursor(run.module, CURSOR)
        # The CRM modules the change scan reads: a kind two-way mode adds is not read (and
        # has no link to retire) until one of its records is linked.
        modules = sorted(run.facts.get("crm_fields") or {
            k.crm_module for k in run.spec().active_kinds(run.module_settings())})
        for module in modules:
            for page in runtime.crm.deleted(module, since):
                for row in page:
                    found.append(("crm", str(row["id"])))
                    newest = later(newest, parse_stamp("crm", row.get("deleted_time")))
    found += [("crm", key.rsplit("/", 1)[1]) for key in crm.gone]
    found += [("books", key.rsplit("/", 1)[1]) for key in books.gone]
    found += [("books", str(o["books_id"])) for o in outcomes if _gone_twin(o)]
    return found, newest


def _gone_twin(outcome: dict) -> bool:
    """A Books write refused because the linked Books record no longer exists."""
    return (not outcome["ok"] and outcome["side"] == "books" and bool(outcome.get("books_id"))
            and str(outcome.get("code")) == "1002")


def _apply(run: RunContext, item: dict) -> dict:
    """Do the policy's action to the twin, then retire the link; the outcome says what."""
    runtime = run.runtime()
    side, action = item["deleted_side"], item["action"]
    twin_side = TWIN[side]
    twin_id = item["books_id"] if twin_side == "books" else item["crm_id"]
    already, said = False, None
    if action != "ignore":
        result = _write(runtime, item, action)
        if not result.ok and action == "delete" and twin_side == "books" \
                and str(result.code) not in GONE_CODES:
            # Books keeps a contact or item a transaction uses: inactive is the closest.
            said = f"Books refused the delete ({result.code}: {result.message})"
            action, result = "deactivate", _write(runtime, item, "deactivate")
        if not result.ok:
            if str(result.code) not in GONE_CODES:
                return {**_outcome(item, twin_side, action, None), "ok": False,
                        "code": result.code, "field": result.field,
                        "message": f"could not apply the deletion policy: {result.message}"}
            already = True
    runtime.store.delete_link(run.module, crm_id=item["crm_id"])
    text = reason(side, action, twin_id, already=already)
    if said:
        text = f"{text} ({said}: marked inactive instead)"
    return _outcome(item, twin_side, "retire" if already or action == "ignore" else action,
                    text)


def _write(runtime, item: dict, action: str):
    """Delete or deactivate the twin of a deleted record."""
    if TWIN[item["deleted_side"]] == "books":
        if action == "delete":
            return runtime.books.delete(item["resource"], item["books_id"])
        return runtime.books.mark_active(item["resource"], item["books_id"], False)
    [result] = runtime.crm.delete(item["crm_module"], [item["crm_id"]])
    return result


def _outcome(item: dict, twin_side: str, action: str, text: str | None) -> dict:
    key = crm_key(item["crm_module"], item["deleted_id"]) if item["deleted_side"] == "crm" \
        else books_key(item["resource"], item["deleted_id"])
    return {"record_key": key, "side": twin_side, "action": action, "ok": True,
            "crm_id": item["crm_id"], "books_id": item["books_id"], "name": None,
            "reason": text, "changes": []}
