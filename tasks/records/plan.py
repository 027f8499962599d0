"""Map, dedupe and plan for the record modules: the pure core (crmbooks.sync) behind three
thin steps.

* `map_records` turns fetched raw records into each side's form, per record kind, and collects
  per-record mapping failures (bad email, name too long, unmapped picklist value …).
* `dedupe` builds the name index of the *other* side that duplicate detection needs. A run
  whose fetch was complete already has it; an incremental run looks up only the names of new,
  unlinked records (one request each), or scans the other side when that is cheaper.
* `plan_changes` decides, per record, create / update / merge / skip / clone / overwrite.
"""

from __future__ import annotations

import pandas as pd

from crmbooks.connectors.zoho_crm import criterion
from crmbooks.store import LINK_COLUMNS
from crmbooks.sync.dedupe import INDEX_COLUMNS, index_records, normalise_name
from crmbooks.sync.mapping import (
    FAILURE_COLUMNS,
    effective_mapping,
    explode_persons,
    route_books,
    route_crm_contacts,
    to_books,
    to_crm,
)
from crmbooks.sync.modules import syncs_lone_contacts
from crmbooks.sync.plan import kept_out_rows, plan_module
from tasks.context import RunContext
from tasks.family import Fetched
from tasks.records.fetch import CONTACT_TYPE, full_records

PAGE = 200  # records per list page on both sides


def scan_is_cheaper(names: int, known_records: int) -> bool:
    """True when one paged scan of the other side costs fewer requests than a lookup per name.

    The other side's size is estimated from what we know of it (its linked and fetched
    records); a scan costs one request per 200 of them.
    """
    return names > -(-max(known_records, 1) // PAGE)


def raw_by_kind(run: RunContext, crm: Fetched, books: Fetched) -> tuple[dict, dict]:
    """Split fetched frames into the module's record kinds: ({kind: crm df}, {kind: books df})."""
    crm_kinds, books_kinds, _ = split_by_kind(run, crm, books)
    return crm_kinds, books_kinds


def split_by_kind(run: RunContext, crm: Fetched, books: Fetched) -> tuple[dict, dict, dict]:
    """Fetched frames by record kind, and what the settings keep out: ({kind: crm df},
    {kind: books df}, {"crm": CRM contacts, "books": Books customers of no active kind})."""
    spec, settings = run.spec(), run.module_settings()
    crm_kinds, books_kinds = {}, {}
    kept_out = {"crm": pd.DataFrame(), "books": pd.DataFrame()}
    for kind in spec.active_kinds(settings):
        frame = crm.frames.get(kind.crm_module, pd.DataFrame())
        if kind.crm_module == "Contacts" and run.module == "customers":
            routed = route_crm_contacts(frame, settings, _individuals(run, frame))
            kept_out["crm"] = routed["unsynced"]
            frame = routed.get(kind.name, frame.iloc[0:0])
        crm_kinds[kind.name] = frame
    for resource, frame in books.frames.items():
        routed = route_books(spec, settings, frame) if not frame.empty else {}
        if not run.one_way and settings.scope == "both" and "unsynced" in routed:
            # One way, Books records only serve as current values: none is kept out.
            kept_out["books"] = routed["unsynced"]
        for kind in spec.active_kinds(settings):
            if kind.books_resource == resource:
                books_kinds[kind.name] = routed.get(kind.name, pd.DataFrame())
    if "contact_persons" in crm_kinds and "accounts" in books_kinds:
        books_kinds["contact_persons"] = explode_persons(books_kinds["accounts"])
    return crm_kinds, books_kinds, kept_out


def _individuals(run: RunContext, contacts: pd.DataFrame) -> set[str]:
    """CRM ids among the fetched ``contacts`` that are linked to an individual customer."""
    if contacts.empty or "id" not in contacts or syncs_lone_contacts(run.module_settings()):
        return set()  # every lone contact is an individual customer anyway
    # Ids and kind only: the links' values are not needed to route a contact.
    links = run.runtime().store.link_ids(run.module)
    if links.empty:
        return set()
    fetched = {str(i) for i in contacts["id"].dropna()}
    return {str(i) for i, kind in zip(links["crm_id"], links["kind"], strict=True)
            if kind == "contacts" and str(i) in fetched}


def map_records(run: RunContext, crm: Fetched, books: Fetched) -> dict:
    """Mapped frames per kind and side, plus the mapping failures (one row per record)."""
    spec, settings = run.spec(), run.module_settings()
    mapping = effective_mapping(spec, settings)
    crm_kinds, books_kinds, kept_out = split_by_kind(run, crm, books)
    mapped = {"crm": {}, "books": {}, "kept_out": kept_out_rows(
        spec, settings, crm=kept_out["crm"], books=kept_out["books"])}
    failures = [pd.DataFrame(columns=FAILURE_COLUMNS)]
    for kind in spec.active_kinds(settings):
        frame, failed = to_books(crm_kinds.get(kind.name, pd.DataFrame()), mapping, kind, spec,
                                 base_currency=run.base_currency)
        if run.one_way and not frame.empty:
            frame = frame.assign(ref_id=None)  # the CRM holds the primary org's Books ids
        mapped["crm"][kind.name] = frame
        failures.append(failed)
        if kind.name in books_kinds:
            frame, failed = to_crm(books_kinds[kind.name], mapping, kind, spec)
            mapped["books"][kind.name] = frame
            failures.append(failed)
    mapped["failures"] = pd.concat(failures, ignore_index=True)
    return mapped


def dedupe(run: RunContext, crm: Fetched, books: Fetched) -> dict[str, dict[str, pd.DataFrame]]:
    """For each kind, the index of every record on each side that duplicates may match."""
    spec, settings = run.spec(), run.module_settings()
    crm_kinds, books_kinds, kept_out = split_by_kind(run, crm, books)
    # Only ids are needed here ("is this name's record linked", how many links): no values.
    links = _link_ids_if(run, [*crm_kinds.values(), *books_kinds.values()])
    indexes: dict[str, dict] = {"crm": {}, "books": {}, "taken": {}, "twins": {}}
    for kind in spec.active_kinds(settings):
        if kind.books_resource == "contact_persons":
            continue  # persons match within their parent, from the fetched records
        crm_raw = crm_kinds.get(kind.name, pd.DataFrame())
        books_raw = books_kinds.get(kind.name, pd.DataFrame())
        indexes["books"][kind.name], looked_up = _books_index(run, kind, crm_raw, books_raw,
                                                              links)
        seen = books.frames.get(kind.books_resource, pd.DataFrame())
        indexes["taken"][kind.name] = taken_names(
            kind, (seen.to_dict("records") if not seen.empty else []) + looked_up)
        indexes["twins"][kind.name] = _twins(
            run, kind, crm_raw, (seen.to_dict("records") if not seen.empty else []) + looked_up,
            links)
        if settings.scope == "both":
            # A Books individual duplicates a CRM contact the settings keep out just as well:
            # sent anyway, it would be a second CRM contact of that name.
            seen = pd.concat([crm_raw, kept_out["crm"]], ignore_index=True) if (
                kind.name == "contacts" and not kept_out["crm"].empty) else crm_raw
            indexes["crm"][kind.name] = _crm_index(run, kind, seen, books_raw, links)
    return indexes


def _twins(run: RunContext, kind, crm_raw: pd.DataFrame, rows: list[dict],
           links: pd.DataFrame) -> pd.DataFrame:
    """The Books records of ``kind`` an overwrite may write, read in full and mapped like
    fetched ones: the values the plan compares against and history records as replaced.

    Books lists contacts as summaries without addresses, website or custom fields, so an
    overwrite planned on a summary would record those as empty. Only records named like an
    unlinked CRM record of this run are read (one request each, kept like the fetch's)."""
    settings = run.module_settings()
    if settings.duplicates != "overwrite" or kind.books_resource != "contacts" or not rows:
        return pd.DataFrame()
    linked = set(links["books_id"]) if not links.empty else set()
    names = {normalise_name(n) for n in _unlinked_names(crm_raw, links, "crm", kind.crm_name,
                                                        "id")}
    wanted = [r for r in rows if kind.owns_books(r) and str(r.get("contact_id")) not in linked
              and normalise_name(kind.books_name(r)) in names]
    if not wanted:
        return pd.DataFrame()
    full = full_records(run, "contacts", list({str(r["contact_id"]): r
                                               for r in wanted}.values()))
    mapping = effective_mapping(run.spec(), settings)
    frame, _ = to_crm(pd.DataFrame(full, dtype=object), mapping, kind, run.spec())
    return frame


def _fetched(frames: list[pd.DataFrame]) -> bool:
    return not all(frame is None or frame.empty for frame in frames)


def _link_ids_if(run: RunContext, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The module's links as ids and kind (``Store.link_ids``), or none when no record was
    fetched (they only serve the fetched records)."""
    return run.runtime().store.link_ids(run.module) if _fetched(frames) else pd.DataFrame()


def plan_links(run: RunContext, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The links a plan of the mapped ``frames`` needs (LINK_COLUMNS, one row per link).

    Only the links of the fetched records (by their CRM or Books id) are read whole, with the
    last synced values their merge needs; every other link comes as its ids and kind (empty
    values): the plan only asks of those whether a record is linked, and to what (a child's
    parent). Reading every link's JSON values made an incremental run's memory grow with the
    number of links, not with what it fetched (+176 MB at 10,000 accounts).
    """
    if not _fetched(frames):
        return pd.DataFrame()
    store = run.runtime().store
    crm_ids, books_ids = set(), set()
    for frame in frames:
        for column, ids in (("crm_id", crm_ids), ("books_id", books_ids)):
            if frame is not None and column in frame:
                ids.update(str(i) for i in frame[column].dropna())
    full = store.links_of(run.module, crm_ids=crm_ids, books_ids=books_ids)
    light = store.link_ids(run.module)
    rest = light[~light["crm_id"].isin(set(full["crm_id"]))].reindex(columns=LINK_COLUMNS)
    if rest.empty:
        return full
    rest = rest.astype(object)
    for column in ("crm_values", "books_values"):
        rest[column] = [{} for _ in range(len(rest))]
    return rest if full.empty else pd.concat([full, rest], ignore_index=True)


def _unlinked_names(raw: pd.DataFrame, links: pd.DataFrame, side: str, name_of, id_field) -> list:
    if raw.empty:
        return []
    linked = set(links[f"{side}_id"]) if not links.empty else set()
    return sorted({name_of(r) for r in raw.to_dict("records")
                   if str(r.get(id_field)) not in linked and name_of(r)})


def _books_index(run, kind, crm_raw, books_raw, links) -> tuple[pd.DataFrame, list[dict]]:
    """The Books name index of a kind, and the raw Books rows looked up to build it."""
    spec, runtime = run.spec(), run.runtime()
    own = index_records(books_raw, kind, "books", spec)
    if run.books_cursor is None and not run.targeted:
        return own, []  # the Books fetch was complete
    names = _unlinked_names(crm_raw, links, "crm", kind.crm_name, "id")
    if not names:
        return own, []
    resource = kind.books_resource
    extra = {"contact_type": CONTACT_TYPE[run.module]} if resource == "contacts" else {}
    name_param = "contact_name" if resource == "contacts" else "name"
    rows = []
    if scan_is_cheaper(len(names), len(links) + len(books_raw)):
        for page in runtime.books.iter_pages(resource, extra):
            rows += page
    else:
        for name in names:
            for page in runtime.books.iter_pages(resource, {**extra, name_param: name}):
                rows += page
    found = index_records(pd.DataFrame(rows, dtype=object), kind, "books", spec)
    return _union(own, found), rows


def taken_names(kind, rows: list[dict]) -> set[str]:
    """Normalised names of Books records that share the kind's name space but not its kind.

    Books display names are unique per contact type, so an individual customer's name is
    taken for a business customer too (and the reverse).
    """
    if kind.books_resource != "contacts":
        return set()
    return {normalise_name(kind.books_name(r)) for r in rows
            if not kind.owns_books(r) and kind.books_name(r)}


def _crm_index(run, kind, crm_raw, books_raw, links) -> pd.DataFrame:
    spec, runtime = run.spec(), run.runtime()
    own = index_records(crm_raw, kind, "crm", spec)
    read = run.facts.get("crm_fields") or {kind.crm_module: []}
    if run.crm_cursor is None and not run.targeted and not run.views and \
            kind.crm_module in read:
        return own  # the CRM fetch was complete (CRM Contacts may not be read at all)
    # Otherwise look the unlinked Books names up in the whole CRM module: a view limits what
    # is synced, not what a Books record duplicates (the duplicates policy applies to
    # out-of-view records too).
    names = _unlinked_names(books_raw, links, "books", kind.books_name, kind.books_id_field)
    if not names:
        return own
    fields = ["id", spec.crm_books_id_field, *kind.crm_name_fields]
    rows = []
    if scan_is_cheaper(len(names), len(links) + len(crm_raw)):
        for page in runtime.crm.iter_records(kind.crm_module, fields):
            rows += page
    else:
        name_field = kind.crm_name_fields[-1] if len(kind.crm_name_fields) > 1 else \
            kind.crm_name_fields[0]
        for name in names:
            value = name.split(" ")[-1] if len(kind.crm_name_fields) > 1 else name
            for page in runtime.crm.search(kind.crm_module, fields=fields,
                                           criteria=criterion(name_field, "equals", value)):
                rows += page
    found = index_records(pd.DataFrame(rows, dtype=object), kind, "crm", spec)
    return _union(own, found)


def _union(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    both = pd.concat([a, b], ignore_index=True) if not b.empty else a
    return both.drop_duplicates(subset=["id"]).reset_index(drop=True)[INDEX_COLUMNS]


def plan_changes(run: RunContext, mapped: dict, indexes: dict) -> pd.DataFrame:
    """The plan: one row per record, what to write where and why."""
    spec, settings = run.spec(), run.module_settings()
    mapping = effective_mapping(spec, settings)
    links = plan_links(run, [*mapped["crm"].values(), *mapped["books"].values(),
                             mapped["failures"]])
    # Decisions on queued records apply only when something was fetched (links alike).
    decisions = run.runtime().store.decisions(run.module) if not links.empty or any(
        not f.empty for f in [*mapped["crm"].values(), *mapped["books"].values()]) else {}
    return plan_module(spec, settings, mapping, crm=mapped["crm"], books=mapped["books"],
                       links=links, crm_index=indexes["crm"] or None,
                       books_index=indexes["books"] or None, failures=mapped["failures"],
                       taken=indexes.get("taken"), decisions=decisions,
                       kept_out=mapped.get("kept_out"), twins=indexes.get("twins"))
