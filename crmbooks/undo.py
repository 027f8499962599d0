"""Undo a run: put back the values it replaced and remove the records it created.

What `crmbooks undo RUN` does, from the run's write journal (every write journaled before it
was sent, with the values it replaced as the run read them):

* a field the run changed gets its before value back, on the side the run wrote it, when the
  record still holds what the run wrote there;
* a record the run created is deleted, when it is unchanged since (its modified stamp is the
  one the run's write left); a Books contact or item that a transaction uses cannot be
  deleted there, so it is marked inactive instead;
* every other part is refused with its reason: the record changed since (by a person, or by
  a later run), or it was deleted since.

The plan comes first (`plan_undo`, which reads every record concerned and writes nothing);
`apply_undo` then does it as a run of its own in history, with its own journal, so an undo
can be undone in turn. The link of a restored pair is given the values the undo left on each
side, so the next sync sees nothing changed and does not carry the old values back across;
the link of a removed record is retired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmbooks.runtime import Runtime
from crmbooks.settings import parse_module_settings
from crmbooks.store import Run, RunLockHeld, Store, StoreError, lock_is_stale
from crmbooks.sync.mapping import books_key, books_values_of, crm_key, effective_mapping
from crmbooks.sync.modules import module_spec
from crmbooks.sync.outcomes import EVENT_OF
from crmbooks.sync.values import build_payload, canon, same

#: The modules whose runs can be undone (their records pair one to one).
UNDO_MODULES = ("customers", "vendors", "items")
#: Actions that made a record on the side they wrote.
CREATES = ("create", "clone")
#: Codes that say a record is gone: Books 1002, CRM INVALID_DATA.
GONE_CODES = ("1002", "INVALID_DATA")


class UndoError(ValueError):
    """An undo that cannot start; the message is one sentence, and nothing was written."""


@dataclass
class Part:
    """One step of an undo: a record on one side, what to do to it, or why not."""

    record_key: str
    side: str
    name: str | None
    kind: str | None
    crm_id: str | None
    books_id: str | None
    action: str  # restore | delete | refuse
    changes: list[dict] = field(default_factory=list)  # the undo's own: before → after
    reason: str = ""
    crm_module: str | None = None
    resource: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The part as `--json` prints it."""
        return {"record": self.record_key, "name": self.name, "side": self.side,
                "action": self.action, "crm_id": self.crm_id, "books_id": self.books_id,
                "changes": self.changes, "reason": self.reason}


@dataclass
class UndoPlan:
    """What undoing ``run`` would do, part by part."""

    run: Run
    parts: list[Part]

    @property
    def doable(self) -> list[Part]:
        """The parts that would write."""
        return [p for p in self.parts if p.action != "refuse"]

    @property
    def refused(self) -> list[Part]:
        """The parts refused, each with its reason."""
        return [p for p in self.parts if p.action == "refuse"]


def find_run(store: Store, run_id: str) -> Run:
    """A run by its id or the first characters of it; UndoError when none or several."""
    from sqlmodel import select

    wanted = run_id.strip()
    run = store.run(wanted) if wanted else None
    if run is not None:
        return run
    with store.session() as s:
        found = list(s.exec(select(Run).where(Run.id.startswith(wanted)).limit(2)).all()) \
            if wanted else []
    if len(found) == 1:
        return found[0]
    if found:
        raise UndoError(f"run {run_id!r} matches several runs: give more characters of its id")
    raise UndoError(f"no run {run_id!r}: `crmbooks history` lists the run ids")


def check_run(store: Store, run: Run) -> None:
    """Refuse a run that cannot be undone (UndoError, one sentence)."""
    if run.dry_run:
        raise UndoError(f"run {run.id[:8]} was a dry run: it wrote nothing, so there is "
                        "nothing to undo")
    if run.module not in UNDO_MODULES:
        raise UndoError(f"run {run.id[:8]} is a {run.module} run: undo covers "
                        f"{', '.join(UNDO_MODULES)} runs")
    if (run.org_id or "") not in ("", store.org_id or ""):
        raise UndoError(f"run {run.id[:8]} synced Books organization {run.org_id}: undo "
                        "covers runs of the primary organization")
    undone = store.undone_by(run.id)
    if undone is not None:
        raise UndoError(f"run {run.id[:8]} was undone already, by run {undone[:8]} (undo that "
                        "run to bring its changes back)")
    if run.state == "running" and not run.finished_at:
        lock = Store(store.engine, org_id=run.org_id or "").run_lock(run.module)
        if lock is not None and lock.run_id == run.id and not lock_is_stale(lock):
            raise UndoError(f"run {run.id[:8]} is still running: undo it once it has ended")


def plan_undo(runtime: Runtime, run_id: str) -> UndoPlan:
    """What undoing the run would do, reading every record concerned (nothing written)."""
    store = runtime.store
    run = find_run(store, run_id)
    check_run(store, run)
    writes = [w for w in store.writes(run.id) if w["state"] in ("done", "confirmed")]
    if not writes:
        raise UndoError(f"run {run.id[:8]} wrote nothing that can be undone (every write it "
                        "sent failed or was never confirmed, or it ran before crmbooks kept "
                        "a journal of its writes)")
    spec = module_spec(run.module)
    active = store.active_settings(run.module)
    mapping = effective_mapping(spec, parse_module_settings(run.module,
                                                            active[1] if active else None))
    later = store.later_writes(run.module, [w["record_key"] for w in writes],
                               max(w["id"] for w in writes))
    parts = []
    for write in writes:
        kind = spec.kind(write["kind"]) if write.get("kind") else spec.kinds[0]
        part = Part(write["record_key"], write["side"], write["name"], kind.name,
                    write["crm_id"], write["books_id"], "refuse",
                    crm_module=kind.crm_module, resource=kind.books_resource)
        if kind.parent:
            part.reason = "a contact person follows its customer: undo it there"
        elif write["record_key"] in later:
            by = later[write["record_key"]][0]["run_id"]
            part.reason = f"changed since by run {by[:8]}: undo that run first"
        elif write["action"] in ("delete", "deactivate") and store.undo_of(run.id):
            part.reason = ("a record an undo removed is not brought back (`crmbooks "
                           "duplicates separate` on its source syncs it again)")
        elif write["action"] in ("delete", "deactivate"):
            part.reason = ("a record the run deleted or marked inactive, by the module's "
                           "deletion policy, is not brought back")
        else:
            _plan_part(runtime, spec, mapping.section(kind.section), write, part)
        parts.append(part)
    return UndoPlan(run, parts)


def _current(runtime: Runtime, spec, part: Part, fields: list[str]) -> dict | None:
    """The record as it is now on the part's side (None: deleted)."""
    if part.side == "books":
        return runtime.books.get(part.resource, str(part.books_id))
    wanted = sorted({"id", "Modified_Time", spec.crm_books_id_field, *fields})
    return runtime.crm.get_record(part.crm_module, str(part.crm_id), wanted)


def _plan_part(runtime: Runtime, spec, section, write: dict, part: Part) -> None:
    """Fill in what to do about one journaled write (or why not)."""
    created = write["action"] in CREATES
    record_id = part.books_id if part.side == "books" else part.crm_id
    if not record_id:
        part.reason = "the journal holds no id of the record"
        return
    fields = [c["field"] for c in write["changes"] or []]
    record = _current(runtime, spec, part, fields)
    where = "Books" if part.side == "books" else "the CRM"
    if record is None:
        part.reason = f"deleted in {where} since the run"
        return
    if created:
        stamp = record.get("last_modified_time" if part.side == "books" else "Modified_Time")
        if write.get("stamp") and stamp and str(stamp) != str(write["stamp"]):
            part.reason = (f"changed in {where} since the run (modified {stamp}, the run left "
                           f"{write['stamp']})")
            return
        part.action = "delete"
        part.reason = f"created by run {write['run_id'][:8]}, unchanged since"
        return
    now = books_values_of(section, record) if part.side == "books" else record
    moved = [c for c in write["changes"] or [] if not same(now.get(c["field"]), c["after"])]
    if moved:
        c = moved[0]
        part.reason = (f"changed in {where} since the run: {c['field']} is now "
                       f"{canon(now.get(c['field']))!r}, the run wrote {c['after']!r}")
        return
    if not write["changes"]:
        part.reason = "the run changed no field here (only ids and links)"
        return
    part.action = "restore"
    part.changes = [{"side": part.side, "field": c["field"], "before": c["after"],
                     "after": c["before"]} for c in write["changes"]]
    part.reason = "puts back the values the run replaced"


def apply_undo(runtime: Runtime, plan: UndoPlan) -> tuple[str, list[dict]]:
    """Do the plan as a run of its own; return (the undo run id, one outcome per part)."""
    store, run = runtime.store, plan.run
    spec = module_spec(run.module)
    text = f"undo of run {run.id}"
    undo_id = store.start_run(run.module, message=text)
    try:  # one writer per module: never alongside a sync of the same records
        store.acquire_run_lock(run.module, undo_id)
    except RunLockHeld as exc:
        store.finish_run(undo_id, "refused", counts={}, api_calls={}, message=str(exc))
        raise UndoError(f"a {run.module} run is in progress: undo once it has ended") from exc
    try:
        try:
            store.record_undo(undo_id, run.id)
        except StoreError as exc:
            store.finish_run(undo_id, "refused", counts={}, api_calls={}, message=str(exc))
            raise UndoError(f"run {run.id[:8]} was undone already (by another undo that "
                            "started at the same time)") from exc
        return undo_id, _undo(runtime, spec, plan, undo_id, text)
    finally:
        store.release_run_lock(run.module, undo_id)


def _undo(runtime: Runtime, spec, plan: UndoPlan, undo_id: str, text: str) -> list[dict]:
    """The writes of an undo, journaled first, and its history."""
    store, run = runtime.store, plan.run
    store.journal_writes(undo_id, run.module, [
        {"side": p.side, "record_key": p.record_key, "kind": p.kind, "crm_id": p.crm_id,
         "books_id": p.books_id, "name": p.name, "action": _verb(p), "changes": p.changes}
        for p in plan.doable])
    outcomes = [_apply(runtime, spec, p, undo_id) for p in plan.doable]
    store.settle_writes(undo_id, outcomes)
    events = [_event(o) for o in outcomes]
    events += [{"side": p.side, "record_key": p.record_key, "crm_id": p.crm_id,
                "books_id": p.books_id, "name": p.name, "action": "skipped",
                "message": f"not undone: {p.reason}"} for p in plan.refused]
    store.add_events(undo_id, run.module, events)
    tally = _tally(outcomes, plan.refused)
    failed = any(not o["ok"] for o in outcomes)
    store.finish_run(undo_id, "completed_with_failures" if failed else "completed",
                     counts=tally, api_calls={}, message=text)
    return outcomes


def _verb(part: Part) -> str:
    return "delete" if part.action == "delete" else "update"


def _apply(runtime: Runtime, spec, part: Part, undo_id: str) -> dict:
    """Write one part; its outcome (ok, or the provider's refusal)."""
    out = {"record_key": part.record_key, "side": part.side, "action": _verb(part),
           "crm_id": part.crm_id, "books_id": part.books_id, "name": part.name,
           "changes": part.changes, "ok": True, "reason": part.reason}
    store = runtime.store
    if part.action == "delete":
        result, how = _remove(runtime, part)
        if not result.ok and str(result.code) not in GONE_CODES:
            return {**out, "ok": False, "message": f"{result.code}: {result.message}"}
        link = store.find_link(spec.name, **({"books_id": part.books_id}
                                             if part.side == "books"
                                             else {"crm_id": part.crm_id}))
        if link is not None:
            store.delete_link(spec.name, crm_id=link.crm_id)
        if how == "deactivate":
            out.update(action="deactivate", reason="a transaction uses it, so Books keeps it: "
                       "marked inactive instead of deleted")
        out["reason"] += "; " + _keep_out(runtime, spec, part, undo_id)
        return out
    values = {c["field"]: c["after"] for c in part.changes}
    if part.side == "books":
        result = runtime.books.update(part.resource, str(part.books_id), build_payload(
            {k: ("" if v is None else v) for k, v in values.items()}))
        stamp = (result.record or {}).get("last_modified_time") if result.ok else None
    else:
        [result] = runtime.crm.update(part.crm_module, [{"id": part.crm_id, **values}])
        stamp = (result.details or {}).get("Modified_Time") if result.ok else None
    if not result.ok:
        return {**out, "ok": False, "message": f"{result.code}: {result.message}"}
    out[f"{part.side}_modified"] = stamp
    _relink(store, spec, part, values, stamp)
    return out


def _keep_out(runtime: Runtime, spec, part: Part, undo_id: str) -> str:
    """Keep the source of a removed record out of later runs (else the next run, which reads
    it again, would create the record once more): the id it kept of its copy is cleared and
    it is left out by a `skip` decision in the review queue. Returns what it says."""
    store = runtime.store
    kind = spec.kind(part.kind)
    if part.side == "books":
        key, source_id, side = crm_key(kind.crm_module, part.crm_id), part.crm_id, "crm"
        runtime.crm.update(kind.crm_module, [{"id": part.crm_id,
                                              spec.crm_books_id_field: None}])
    else:
        key, source_id, side = books_key(kind.books_resource, part.books_id), part.books_id, \
            "books"
        body = build_payload({f"custom_fields.{spec.books_crm_id_field}": ""})
        if kind.books_link_field:
            body[kind.books_link_field] = ""
        runtime.books.update(kind.books_resource, str(part.books_id), body)
    # A refused clearing (the source deleted meanwhile) changes nothing: the decision holds.
    store.queue_reviews(undo_id, spec.name, [{
        "record_key": key, "side": side, "record_id": source_id, "kind": kind.name,
        "name": part.name, "candidates": [], "evidence": [f"its copy was removed by undo run "
                                                          f"{undo_id[:8]}"]}])
    for entry in store.review(key, spec.name):
        store.decide_review(entry.id, "skip")
    return (f"its source {key} is left out of later runs (`crmbooks duplicates separate "
            f"{key}` syncs it again)")


def _remove(runtime: Runtime, part: Part):
    """Delete a created record; a Books record a transaction uses is marked inactive."""
    if part.side == "crm":
        [result] = runtime.crm.delete(part.crm_module, [str(part.crm_id)])
        return result, "delete"
    result = runtime.books.delete(part.resource, str(part.books_id))
    if result.ok or str(result.code) in GONE_CODES or part.resource not in ("contacts", "items"):
        return result, "delete"
    return runtime.books.mark_active(part.resource, str(part.books_id), False), "deactivate"


def _relink(store: Store, spec, part: Part, values: dict, stamp: str | None) -> None:
    """Give the pair's link the values the undo left, so the next sync sees no change."""
    link = store.find_link(spec.name, crm_id=part.crm_id) if part.crm_id else None
    if link is None:
        return
    side_values = dict((link.books_values if part.side == "books" else link.crm_values) or {})
    side_values.update({k: canon(v) for k, v in values.items()})
    fields = {"crm_id": link.crm_id, "books_id": link.books_id, "kind": link.kind,
              "crm_module": link.crm_module, "parent_crm_id": link.parent_crm_id,
              "parent_books_id": link.parent_books_id, "made_by": link.made_by,
              "crm_values": link.crm_values or {}, "books_values": link.books_values or {},
              f"{part.side}_values": side_values}
    if stamp:
        fields[f"{part.side}_modified"] = stamp
    store.upsert_link(spec.name, **fields)


def _event(outcome: dict) -> dict:
    action = EVENT_OF.get(outcome["action"], "updated") if outcome["ok"] else "failed"
    return {"side": outcome["side"], "record_key": outcome["record_key"],
            "crm_id": outcome["crm_id"], "books_id": outcome["books_id"],
            "name": outcome["name"], "action": action, "changes": outcome["changes"],
            "message": outcome.get("message") if not outcome["ok"] else outcome["reason"]}


def _tally(outcomes: list[dict], refused: list[Part]) -> dict[str, dict[str, int]]:
    """Counts per side, as every run reports them."""
    out = {s: dict.fromkeys(("created", "updated", "deleted", "skipped", "conflicts",
                             "failed"), 0) for s in ("books", "crm")}
    for o in outcomes:
        key = "failed" if not o["ok"] else ("deleted" if o["action"] == "delete"
                                            else "updated")
        out[o["side"]][key] += 1
    for p in refused:
        out[p.side]["skipped"] += 1
    return out
