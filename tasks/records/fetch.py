"""Fetch for the record modules: what changed on each side since the cursors, in the largest
pages the APIs allow — or, for a targeted run, the given records read by id.

CRM: one paged list per CRM module with If-Modified-Since (a quiet module answers 304: one
request). Books: the connector's cheapest change scan (a sorted scan that stops at the cursor
for contacts, a full scan for items, which have no modified-time filter or sort). Records whose
modified stamp equals the one we stored right after our own write, and whose values are still
the ones that write left, are echoes, not changes, and are dropped here: that is what keeps a
run after a big push from re-reading everything.

A contact's full record (read one by one, in two-way mode) is kept in the state database with
the stamp it had, until the cursor moves past it: a run killed before its report leaves the
cursor where it was, and its rerun reads in full only the contacts whose stamp (or listed
values) changed since, not every contact the killed run had read.

A targeted run (retry, fetch one, import) reads each record by id (one request per record and
module tried); a record that read says no longer exists is reported as gone, so that the
report resolves its failure with a note.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd

from crmbooks.connectors.http import dumps
from crmbooks.sync.cursors import earliest, later, newest_stamp
from crmbooks.sync.mapping import books_key, crm_key
from crmbooks.sync.values import same
from tasks.context import RunContext
from tasks.family import Fetched

# Contacts of which Books contact_type belong to a module (the rest is another module's).
CONTACT_TYPE = {"customers": "customer", "vendors": "vendor"}
BOOKS_ID = {"contacts": "contact_id", "items": "item_id"}
KEEP_CHUNK = 200  # full records looked up and kept per store transaction


def books_resources(run: RunContext) -> list[str]:
    """The Books resources the module's active kinds read (contact persons come inline)."""
    kinds = run.spec().active_kinds(run.module_settings())
    return sorted({k.books_resource for k in kinds} - {"contact_persons"})


def books_filter(run: RunContext, resource: str) -> dict[str, str]:
    """The list filter that keeps another module's contacts out of a scan (customers and
    vendors are both Books contacts): without it each module pages through the other's."""
    if resource == "contacts" and run.module in CONTACT_TYPE:
        return {"contact_type": CONTACT_TYPE[run.module]}
    return {}


def is_echo(echoes: dict[str, str], record_id, stamp) -> bool:
    """True when a record's modified stamp is the one our own last write left on it.

    Records without a stamp (Books items carry none) are never echoes.
    """
    return stamp is not None and echoes.get(str(record_id)) == stamp


def unchanged(synced: dict | None, row: dict) -> bool:
    """True when a fetched row still has the values our last sync left on it.

    Stamps have whole seconds: an edit in the same second as our write (a CRM workflow rule
    reacting to it, say) carries our write's stamp. Only an unchanged row is an echo.
    """
    return synced is not None and all(same(row.get(f), v) for f, v in synced.items() if f in row)


def echo_stamps(run: RunContext, side: str) -> dict[str, str]:
    """{record id: modified stamp right after our last write} for one side."""
    return run.runtime().store.link_stamps(run.module, side)


def _synced_values(run: RunContext, side: str, ids: list) -> dict[str, dict]:
    """{record id: the link's last synced values} for the given ids of one side."""
    links = run.runtime().store.links_of(run.module, **{f"{side}_ids": ids})
    column, id_column = f"{side}_values", f"{side}_id"
    if links.empty:
        return {}
    return {str(i): v or {} for i, v in zip(links[id_column], links[column], strict=True)}


def fetch(run: RunContext, side: str) -> Fetched:
    """One side's changed (or targeted) records, one frame per CRM module / Books resource;
    an incremental run also reads the records whose queued decision waits to be applied."""
    if side == "crm":
        return fetch_crm_targets(run) if run.targeted else _with_decided(
            run, side, fetch_crm(run))
    return fetch_books_targets(run) if run.targeted else _with_decided(
        run, side, fetch_books(run))


def decided_ids(run: RunContext, side: str) -> list[str]:
    """Ids on ``side`` of the queued records a person decided about (pair, separate) that no
    run has applied yet: unchanged since, they would not be read by a run's change scan."""
    ids = []
    for entry in run.runtime().store.to_apply(run.module):
        if entry.side == side:
            ids.append(entry.record_id)
        elif entry.decision == "pair" and entry.other_id:
            ids.append(entry.other_id)
    return list(dict.fromkeys(ids))


def _with_decided(run: RunContext, side: str, fetched: Fetched) -> Fetched:
    """Add the decided records the change scan did not return (read by id)."""
    ids = decided_ids(run, side)
    if not ids:
        return fetched
    id_field = "id" if side == "crm" else None
    frames = dict(fetched.frames)
    have = set()
    for resource, frame in frames.items():
        column = id_field or BOOKS_ID.get(resource)
        if column and not frame.empty and column in frame:
            have |= {str(i) for i in frame[column]}
    wanted = [i for i in ids if i not in have]
    if not wanted:
        return fetched
    read_by_id = fetch_crm_targets if side == "crm" else fetch_books_targets
    extra = read_by_id(run.model_copy(update={"targets": {side: wanted}}))
    for resource, frame in extra.frames.items():
        if frame.empty:
            continue
        old = frames.get(resource)
        frames[resource] = frame if old is None or old.empty else pd.concat(
            [old, frame], ignore_index=True)
    return Fetched(frames, newest=fetched.newest, began=fetched.began, gone=fetched.gone)


def fetch_crm(run: RunContext) -> Fetched:
    """CRM records changed since the CRM cursor, one frame per CRM module."""
    runtime = run.runtime()
    echoes = echo_stamps(run, "crm")
    frames, newest, began = {}, None, []
    for module, fields in run.facts["crm_fields"].items():
        rows = []
        with runtime.crm.http.watch() as read:
            for page in runtime.crm.iter_records(module, fields, cvid=run.views.get(module),
                                                 modified_since=run.crm_cursor,
                                                 sort_by="Modified_Time"):
                newest = later(newest, newest_stamp("crm", page, "Modified_Time"))
                # The synced values of this page's echo candidates only: reading every link's
                # values made a run's memory grow with the links, not with what it fetched.
                candidates = [r.get("id") for r in page
                              if is_echo(echoes, r.get("id"), r.get("Modified_Time"))]
                synced = _synced_values(run, "crm", candidates) if candidates else {}
                rows += [r for r in page if not unchanged(synced.get(str(r.get("id"))), r)]
        began.append(read.began)
        frames[module] = pd.DataFrame(rows, dtype=object)
    return Fetched(frames, newest=newest, began=earliest(began))


def fetch_books(run: RunContext) -> Fetched:
    """Books records changed since the Books cursor, one frame per Books resource.

    Contacts come as list summaries; in two-way mode the ones that need their full record
    (addresses, contact persons, custom fields) are read one by one, the only way Books offers.
    """
    runtime = run.runtime()
    echoes = echo_stamps(run, "books")
    frames, newest, began = {}, None, []
    for resource in books_resources(run):
        rows = []
        with runtime.books.http.watch() as read:
            for page in runtime.books.iter_modified(resource, run.books_cursor,
                                                    books_filter(run, resource)):
                page = [row for row in page if resource != "contacts"
                        or row.get("contact_type") == CONTACT_TYPE.get(run.module)]
                newest = later(newest, newest_stamp("books", page, "last_modified_time"))
                rows += [row for row in page if not is_echo(
                    echoes, row.get(BOOKS_ID[resource]), row.get("last_modified_time"))]
        began.append(read.began)
        if resource == "contacts" and run.module_settings().scope == "both":
            rows = full_records(run, resource, rows)
        frames[resource] = pd.DataFrame(rows, dtype=object)
    return Fetched(frames, newest=newest, began=earliest(began))


def full_records(run: RunContext, resource: str, rows: list[dict]) -> list[dict]:
    """The full record behind each listed summary (the summary when it vanished meanwhile):
    the one kept from an earlier read when it still holds, else read now (one request) and
    kept. Kept per chunk, so a run killed while reading keeps what it had read."""
    runtime, id_field = run.runtime(), BOOKS_ID[resource]
    out = []
    for start in range(0, len(rows), KEEP_CHUNK):
        chunk = rows[start:start + KEEP_CHUNK]
        kept = runtime.store.kept_records(run.module, "books",
                                          [str(row[id_field]) for row in chunk])
        read = []
        for row in chunk:
            record = still_holds(kept.get(str(row[id_field])), row)
            if record is None:
                record = runtime.books.get(resource, str(row[id_field]))
                if record is not None:
                    read.append(record)
            out.append(record or row)
        runtime.store.keep_records(run.module, "books", [
            (str(r[id_field]), r.get("last_modified_time"), dumps(r)) for r in read])
    return out


def still_holds(kept: tuple[str | None, str] | None, summary: dict) -> dict | None:
    """The kept full record when the listed summary shows it unchanged since it was read: the
    same modified stamp and the same listed values (an edit within the stamp's second changes
    a value, not the stamp). None: read it again."""
    if kept is None or kept[0] is None or kept[0] != summary.get("last_modified_time"):
        return None
    record = json.loads(kept[1], parse_float=Decimal)
    if not all(same(record.get(f), v) for f, v in summary.items() if f in record):
        return None
    return record


def fetch_crm_targets(run: RunContext) -> Fetched:
    """The CRM records named in `run.targets["crm"]`, one frame per CRM module."""
    runtime = run.runtime()
    wanted = run.facts["crm_target_fields"]
    frames: dict[str, list] = {module: [] for module in wanted}
    gone = []
    for record_id in run.targets.get("crm", []):
        for module, fields in wanted.items():  # an id belongs to one module: try each
            record = runtime.crm.get_record(module, record_id, fields)
            if record is not None:
                frames[module].append(record)
                break
        else:  # in no module: deleted (a transient error raised instead)
            gone += [crm_key(module, record_id) for module in wanted]
    return Fetched({m: pd.DataFrame(rows, dtype=object) for m, rows in frames.items()},
                   gone=gone)


def fetch_books_targets(run: RunContext) -> Fetched:
    """The Books records named in `run.targets["books"]` (full detail)."""
    [resource] = books_resources(run)
    runtime = run.runtime()
    ids = run.targets.get("books", [])
    found = [runtime.books.get(resource, record_id) for record_id in ids]
    gone = [books_key(resource, i) for i, record in zip(ids, found, strict=True) if record is None]
    rows = [record for record in found if record is not None]
    return Fetched({resource: pd.DataFrame(rows, dtype=object)}, gone=gone)
