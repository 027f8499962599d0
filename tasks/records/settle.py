"""Where a record module's cursors go after a run.

A cursor moves only after a run with no failed record (a failed record must be fetched again),
to the newest stamp the run read. After a side was written, one verifying scan since that
baseline checks that everything newer is our own echo; only then does the cursor jump past
our writes, so the next quiet run costs one request per module instead of re-reading them.
Either way the cursor skips its own second when the read that reached it began after that
second had ended (crmbooks.sync.cursors.past_its_second): else every quiet run would read
again whatever changed in that second, several pages after a bulk change.
"""

from __future__ import annotations

from datetime import datetime

from crmbooks.sync.cursors import credible, later, parse_stamp, past_its_second
from tasks.context import RunContext
from tasks.family import Fetched
from tasks.records.fetch import CONTACT_TYPE, books_filter, echo_stamps


def settle(run: RunContext, crm: Fetched, books: Fetched, outcomes: list[dict],
           failed: set[str]) -> dict[tuple[str, str], datetime]:
    """The record module's cursors to move: both sides, unless a record failed. The full
    records kept for a rerun (tasks/records/fetch.py) go once their side's cursor moves: the
    next run lists only what changed after them."""
    moved = {}
    for side, fetched in (("crm", crm), ("books", books)):
        cursor = settle_cursor(run, side, fetched, outcomes, bool(failed))
        if cursor is not None:
            moved[(run.module, side)] = cursor
            run.runtime().store.forget_records(run.module, side)
    return moved


def settle_cursor(run: RunContext, side: str, fetched: Fetched,
                  outcomes: list[dict], any_failed: bool) -> datetime | None:
    """The new cursor of one side, or None to leave it where it is."""
    column = "Modified_Time" if side == "crm" else "last_modified_time"
    old = run.crm_cursor if side == "crm" else run.books_cursor
    stamps = [s for f in fetched.frames.values() if not f.empty and column in f
              for s in (credible(parse_stamp(side, v)) for v in f[column]) if s]
    baseline = later(max(stamps, default=old), fetched.newest)
    if any_failed:
        return None  # a failed record must be fetched again: the cursor stays
    wrote = [o for o in outcomes if o["ok"] and o["side"] == side]
    if not wrote:
        return past_its_second(baseline, fetched.began)
    # baseline None: the side was empty (a first sync into it); everything there now must be
    # our own writes, which one full scan checks. Else each later run would re-read them all.
    http = run.runtime().crm.http if side == "crm" else run.runtime().books.http
    with http.watch() as scan:
        newest = _past_own_writes(run, side, baseline, wrote, fetched)
    if newest is None:
        return baseline
    return past_its_second(newest, scan.began)


def _past_own_writes(run: RunContext, side: str, baseline: datetime | None,
                     wrote: list[dict], fetched: Fetched) -> datetime | None:
    """The newest stamp since `baseline` when everything since then is our own doing.

    "Ours" is a record we wrote (with the stamp our write left), a record this run fetched
    (with the stamp it had: the baseline itself is inclusive), or — on Books — a customer
    whose contact persons we added, which touches the customer after our own write.
    """
    runtime, spec, settings = run.runtime(), run.spec(), run.module_settings()
    id_column, stamp_column = ("id", "Modified_Time") if side == "crm" else (
        "contact_id", "last_modified_time")
    seen = {(str(i), s) for f in fetched.frames.values() if not f.empty and id_column in f
            and stamp_column in f for i, s in zip(f[id_column], f[stamp_column], strict=True)}
    seen |= {(str(o.get(f"{side}_id")), o.get(f"{side}_modified")) for o in wrote}
    # … or an echo of an earlier run: at the inclusive boundary the fetch dropped it as such.
    seen |= set(echo_stamps(run, side).items())
    touched = {str(o.get("parent_books_id")) for o in wrote if o.get("parent_books_id")}

    def ours(record_id, stamp) -> bool:
        return (str(record_id), stamp) in seen or (side == "books" and str(record_id) in touched)

    newest = baseline
    if side == "books":
        resources = {k.books_resource for k in spec.active_kinds(settings)} - {"contact_persons"}
        if resources != {"contacts"}:
            return None  # items have no modified-time scan: their fetch is always complete
        restamped = {}
        for page in runtime.books.iter_modified("contacts", baseline,
                                                books_filter(run, "contacts")):
            for row in page:
                if row.get("contact_type") != CONTACT_TYPE.get(run.module):
                    continue
                record_id, stamp = str(row.get("contact_id")), row.get("last_modified_time")
                if not ours(record_id, stamp):
                    return None
                if record_id in touched and (record_id, stamp) not in seen:
                    restamped[record_id] = stamp
                newest = later(newest, credible(parse_stamp("books", stamp)))
        _restamp(run, restamped)
        return newest
    # The CRM modules the change scan read (a kind two-way mode adds may not be read yet).
    for module in sorted(run.facts.get("crm_fields") or {
            k.crm_module for k in spec.active_kinds(settings)}):
        for page in runtime.crm.iter_records(module, ["id", "Modified_Time"],
                                             modified_since=baseline, sort_by="Modified_Time"):
            for row in page:
                if not ours(row.get("id"), row.get("Modified_Time")):
                    return None
                newest = later(newest, credible(parse_stamp("crm", row["Modified_Time"])))
    return newest


def _restamp(run: RunContext, stamps: dict[str, str]) -> None:
    """Remember the stamp our person writes left on their customers as those customers' echo
    stamp: else the next run reads them again, and each one's detail (a request apiece)."""
    store = run.runtime().store
    for books_id, stamp in stamps.items():
        link = store.find_link(run.module, books_id=books_id)
        if link is not None:
            store.upsert_link(run.module, crm_id=link.crm_id, books_id=books_id,
                              books_modified=stamp)
