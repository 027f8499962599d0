"""Map records between CRM and Books through a mapping section: DataFrames in, new ones out.

``to_books`` turns fetched CRM records into rows ready to plan and push to Books;
``to_crm`` does the same for Books records. Each returns ``(mapped, failures)``: a record that
cannot be converted becomes one failure row (with every problem it has) and is left out of
``mapped``; the others go on. Nothing here mutates its inputs or does I/O.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from crmbooks.sync.modules import KindSpec, ModuleSpec
from crmbooks.sync.values import build_payload, canon, get_path, primary_person
from mappings.converters import ConversionError, is_blank
from mappings.schema import FieldPair, Mapping, default_mapping

#: Columns of a mapped frame (both directions).
MAPPED_COLUMNS = [
    "record_key", "kind", "source", "crm_id", "books_id", "parent_crm_id", "parent_books_id",
    "name", "modified_time", "ref_id", "person_id", "crm_values", "books_values", "converted",
    "payload",
]
#: Columns of a failures frame (the store's ``add_failures`` accepts it as is).
FAILURE_COLUMNS = [
    "record_key", "kind", "side", "crm_id", "books_id", "name", "field", "code", "message",
    "hint", "payload",
]


def crm_key(crm_module: str, crm_id: str) -> str:
    """The record key of a CRM record, e.g. ``crm/Accounts/4150868000000002175``."""
    return f"crm/{crm_module}/{crm_id}"


def books_key(resource: str, books_id: str) -> str:
    """The record key of a Books record, e.g. ``books/contacts/460000000026049``."""
    return f"books/{resource}/{books_id}"


def clean_records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts without NaN cells (NaN would turn ids into floats)."""
    if frame is None or frame.empty:
        return []
    rows = frame.astype(object).to_dict("records")
    return [{k: v for k, v in r.items() if isinstance(v, (dict, list)) or not is_blank(v)
             or isinstance(v, str)} for r in rows]


def as_id(value: Any) -> str | None:
    """An id as a string (lookups {id, name} give their id), None when blank."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a float id is already damaged upstream; do not make it worse
    return str(value)


def _problem(pair: FieldPair, exc: ConversionError) -> dict[str, str]:
    return {"field": pair.books, "code": exc.code, "message": exc.message, "hint": exc.hint}


def _convert(pair: FieldPair, raw: Any, side: str, mapping: Mapping) -> Any:
    """Convert one value towards ``side``; ConversionError for a bad or missing value."""
    ctx = pair.ctx(mapping.value_maps, side=side)
    fn = pair.conv.to_books if side == "books" else pair.conv.to_crm
    value = fn(raw, ctx)
    if pair.required and (value is None or value == ""):
        source = "+".join(pair.crm_fields) if side == "books" else pair.books
        target = "Books" if side == "books" else "CRM"
        target_field = "+".join(pair.crm_fields)
        raise ConversionError("MISSING_REQUIRED", f"{source} is empty but {target} needs it "
                              f"(mapped to {pair.books if side == 'books' else target_field})",
                              f"fill in {source} in the source record")
    return value


def _failure(base: dict[str, Any], side: str, problems: list[dict[str, str]],
             payload: dict) -> dict[str, Any]:
    """One failure row for a record, naming every problem it has."""
    first = problems[0]
    message = "; ".join(p["message"] for p in problems)
    hint = "; ".join(dict.fromkeys(p["hint"] for p in problems if p["hint"]))
    return {**{k: base.get(k) for k in ("record_key", "kind", "crm_id", "books_id", "name")},
            "side": side, "field": first["field"], "code": first["code"], "message": message,
            "hint": hint or None, "payload": payload}


def _frames(rows: list[dict], failures: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    mapped = pd.DataFrame(rows, columns=MAPPED_COLUMNS, dtype=object)
    return mapped, pd.DataFrame(failures, columns=FAILURE_COLUMNS, dtype=object)


# ------------------------------------------------------------------------------ CRM → Books
def to_books(crm: pd.DataFrame, mapping: Mapping, kind: KindSpec,
             spec: ModuleSpec | None = None,
             base_currency: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map CRM records of ``kind`` to Books: (mapped rows, failure rows).

    With ``base_currency``, a record of a kind with a ``currency_field`` (CRM products) in
    another currency is refused: Books holds item prices in its base currency only.

    ``converted`` holds {books path: value in Books form}; ``payload`` is the nested Books
    request body for a create (defaults, mapped fields and the CRM id in the unique custom
    field); ``crm_values`` holds the raw CRM value of every mapped field (the link base).
    """
    section = mapping.section(kind.section)
    rows, failures = [], []
    for rec in clean_records(crm):
        row = _crm_row(rec, kind, spec)
        converted, problems = {}, _currency_problems(rec, kind, base_currency)
        problems += _no_id(row, "crm_id", kind.crm_module)
        for pair in section.fields:
            if not pair.goes_to("books"):
                continue
            raw = [rec.get(f) for f in pair.crm_fields] if pair.conv.multi else rec.get(pair.crm)
            try:
                converted[pair.books] = _convert(pair, raw, "books", mapping)
            except ConversionError as exc:
                problems.append(_problem(pair, exc))
        crm_values = {f: canon(rec.get(f)) for p in section.fields for f in p.crm_fields}
        # A create sends only what has a value; updates (plan.py) send explicit blanks.
        payload = build_payload({k: v for k, v in converted.items() if v is not None},
                                base=section.books_defaults)
        if spec and kind.books_resource != "contact_persons":
            payload = build_payload({f"custom_fields.{spec.books_crm_id_field}": row["crm_id"]},
                                    base=payload)
        if problems:
            failures.append(_failure(row, "books", problems, payload))
            continue
        rows.append({**row, "crm_values": crm_values, "books_values": None,
                     "converted": converted, "payload": payload})
    return _frames(rows, failures)


def _no_id(row: dict, column: str, where: str) -> list[dict[str, str]]:
    """A problem for a record that came without its id (a connector or data bug)."""
    if row[column]:
        return []
    return [{"field": "id", "code": "MISSING_ID", "message": f"a {where} record has no id",
             "hint": "report this: every fetched record must carry its id"}]


def _currency_problems(rec: dict, kind: KindSpec, base: str | None) -> list[dict[str, str]]:
    """A problem when the record's currency is not the Books base currency."""
    currency = rec.get(kind.currency_field) if kind.currency_field and base else None
    if not isinstance(currency, str) or not currency.strip() or currency.strip() == base:
        return []
    return [{"field": kind.currency_field, "code": "CURRENCY_MISMATCH",
             "message": f"{kind.currency_field} is {currency}, not the Books base currency "
                        f"{base}",
             "hint": f"give the record a price in {base}, or leave it out of the view"}]


def _crm_row(rec: dict[str, Any], kind: KindSpec, spec: ModuleSpec | None) -> dict[str, Any]:
    """Identity columns of a CRM record."""
    crm_id = as_id(rec.get("id"))
    ref = as_id(rec.get(spec.crm_books_id_field)) if spec else None
    parent = as_id(rec.get("Account_Name")) if kind.parent else None
    return {"record_key": crm_key(kind.crm_module, crm_id or "?"), "kind": kind.name,
            "source": "crm", "crm_id": crm_id, "books_id": None, "parent_crm_id": parent,
            "parent_books_id": None, "name": kind.crm_name(rec),
            "modified_time": rec.get("Modified_Time"), "ref_id": ref, "person_id": None}


# ------------------------------------------------------------------------------ Books → CRM
def to_crm(books: pd.DataFrame, mapping: Mapping, kind: KindSpec,
           spec: ModuleSpec | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map Books records of ``kind`` to CRM: (mapped rows, failure rows).

    ``converted`` holds {CRM API name: value in CRM form}; ``payload`` is the CRM record body
    (mapped fields and the Books id in the unique CRM field); ``books_values`` holds the raw
    Books value of every mapped path (the link base). Contact persons need a
    ``parent_books_id`` column (see :func:`explode_persons`).
    """
    section = mapping.section(kind.section)
    rows, failures = [], []
    for rec in clean_records(books):
        row = _books_row(rec, kind, spec)
        converted, problems = {}, _no_id(row, "books_id", kind.books_resource)
        for pair in section.fields:
            if not pair.goes_to("crm"):
                continue
            try:
                converted[pair.crm] = _convert(pair, get_path(rec, pair.books), "crm", mapping)
            except ConversionError as exc:
                problems.append(_problem(pair, exc))
        books_values = books_values_of(section, rec)
        payload = {k: v for k, v in converted.items() if v is not None}
        if spec and row["books_id"]:
            payload[spec.crm_books_id_field] = row["books_id"]
        if problems:
            failures.append(_failure(row, "crm", problems, payload))
            continue
        rows.append({**row, "crm_values": None, "books_values": books_values,
                     "converted": converted, "payload": payload})
    return _frames(rows, failures)


def books_values_of(section: Any, record: dict[str, Any]) -> dict[str, Any]:
    """{Books path: canonical value} of every mapped field of a Books record (a link's base).

    Also applied to the record Books answers a write with: a field the write did not carry
    (a ``to_crm`` pair such as an item's status) gets the value Books gave it, not None.
    """
    return {p.books: canon(get_path(record, p.books)) for p in section.fields}


def _books_row(rec: dict[str, Any], kind: KindSpec, spec: ModuleSpec | None) -> dict[str, Any]:
    """Identity columns of a Books record."""
    books_id = as_id(rec.get(kind.books_id_field))
    ref = as_id(get_path(rec, f"custom_fields.{spec.books_crm_id_field}")) if spec else None
    person = primary_person(rec) if kind.books_resource == "contacts" else {}
    return {"record_key": books_key(kind.books_resource, books_id or "?"), "kind": kind.name,
            "source": "books", "crm_id": None, "books_id": books_id, "parent_crm_id": None,
            "parent_books_id": as_id(rec.get("parent_books_id")), "name": kind.books_name(rec),
            "modified_time": rec.get("last_modified_time"), "ref_id": ref,
            "person_id": as_id(person.get("contact_person_id"))}


# ------------------------------------------------------------------------------- routing
def route_crm_contacts(contacts: pd.DataFrame, settings: Any,
                       individuals: Any = ()) -> dict[str, pd.DataFrame]:
    """Split fetched CRM Contacts into the kinds the customers settings sync.

    Returns ``{"contacts": ..., "contact_persons": ..., "unsynced": ...}``: in mode contacts
    every contact is an individual customer; in accounts+contacts a contact with an account
    is a contact person, one without is an individual customer only when
    ``include_unassociated_contacts`` is on, otherwise unsynced; in accounts nothing is synced.
    Whatever the mode, a contact in ``individuals`` (CRM ids linked to an individual Books
    customer: two-way, one went to CRM Contacts) is an individual customer, so that an edit
    of it follows its link.
    """
    empty = contacts.iloc[0:0]
    mode = getattr(settings, "crm_module", "accounts")
    if mode == "contacts" or contacts.empty:
        return {"contacts": contacts.copy(), "contact_persons": empty, "unsynced": empty}
    linked = {str(i) for i in individuals}
    is_linked = contacts["id"].map(lambda v: str(v) in linked) if "id" in contacts else \
        pd.Series([False] * len(contacts), index=contacts.index)
    if mode == "accounts":
        return {"contacts": contacts[is_linked].copy(), "contact_persons": empty,
                "unsynced": contacts[~is_linked].copy()}
    col = contacts["Account_Name"] if "Account_Name" in contacts else pd.Series(
        [None] * len(contacts), index=contacts.index)
    has_account = col.map(lambda v: as_id(v) is not None) & ~is_linked
    alone = contacts[~has_account]
    if getattr(settings, "include_unassociated_contacts", False):
        return {"contacts": alone.copy(), "contact_persons": contacts[has_account].copy(),
                "unsynced": empty}
    return {"contacts": alone[is_linked[~has_account]].copy(),
            "contact_persons": contacts[has_account].copy(),
            "unsynced": alone[~is_linked[~has_account]].copy()}


def kept_out_reason(side: str, settings: Any) -> str:
    """Why the customers settings keep a routed-out record of ``side`` out of the sync: a CRM
    contact its CRM module setting does not take, or a Books customer of a kind with nowhere
    to go (a business one while only CRM Contacts are synced)."""
    mode = getattr(settings, "crm_module", "accounts")
    if side == "books":
        if getattr(settings, "scope", "both") != "both":
            return "the customers module syncs CRM → Books only (`--scope fetch`)"
        return ("a business Books customer goes to CRM Accounts, and the customers module "
                "syncs CRM Contacts only (`--crm-module contacts`): choose `--crm-module "
                "accounts` or `accounts+contacts` to sync it")
    if mode == "accounts":
        return ("the customers module syncs CRM Accounts only (`--crm-module accounts`): a "
                "CRM contact is synced with `--crm-module accounts+contacts` or `contacts`, "
                "or once it is linked to an individual Books customer")
    return ("a contact not associated with any account: synced as an individual customer "
            "only with `--include-unassociated-contacts`")


def route_books(spec: ModuleSpec, settings: Any, books: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Split fetched Books records into the active kinds (business → accounts, individual →
    contacts); records of no active kind land under ``"unsynced"``."""
    kinds = [k for k in spec.active_kinds(settings) if k.books_resource != "contact_persons"]
    records = clean_records(books)
    out: dict[str, list] = {k.name: [] for k in kinds} | {"unsynced": []}
    for rec in records:
        kind = next((k for k in kinds if k.owns_books(rec)), None)
        out[kind.name if kind else "unsynced"].append(rec)
    cols = list(books.columns) if books is not None else []
    return {name: pd.DataFrame(rows, columns=cols or None, dtype=object)
            for name, rows in out.items()}


def explode_persons(customers: pd.DataFrame) -> pd.DataFrame:
    """One row per contact person of the given Books customers, with ``parent_books_id``."""
    rows = []
    for rec in clean_records(customers):
        for person in rec.get("contact_persons") or []:
            rows.append({**person, "parent_books_id": as_id(rec.get("contact_id"))})
    return pd.DataFrame(rows, dtype=object)


def attach_persons(accounts: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """A new accounts frame whose create payloads carry their contact persons inline.

    Books takes contact persons inside their contact (one call for all); persons are grouped
    under their account by ``parent_crm_id``, in input order.
    """
    by_parent: dict[str, list[dict]] = {}
    for rec in clean_records(persons):
        by_parent.setdefault(rec.get("parent_crm_id"), []).append(rec["payload"])
    out = accounts.copy()
    out["payload"] = [
        {**payload, "contact_persons": [*payload.get("contact_persons", []),
                                        *by_parent.get(crm_id, [])]}
        if by_parent.get(crm_id) else payload
        for crm_id, payload in zip(out["crm_id"], out["payload"], strict=True)
    ]
    return out


# ------------------------------------------------------------------------- for the flows
def effective_mapping(spec: ModuleSpec, settings: Any, mapping: Mapping | None = None) -> Mapping:
    """The module's mapping with the user's extra field maps (``settings.maps``) and value
    maps (``settings.value_maps``) applied.

    A map without a ``section`` goes to the module's first kind (accounts, vendors,
    products). Raises MappingError naming a bad map.
    """
    out = mapping or default_mapping(spec.mapping_file)
    by_section: dict[str, list] = {}
    for m in getattr(settings, "maps", ()) or ():
        by_section.setdefault(m.section or spec.kinds[0].section, []).append(m.pair())
    for section, pairs in by_section.items():
        out = out.with_extra_fields(section, pairs)
    for books, entries in (getattr(settings, "value_maps", None) or {}).items():
        out = out.with_value_map(books, entries)
    return out


def crm_fields(mapping: Mapping, kind: KindSpec, spec: ModuleSpec) -> list[str]:
    """The CRM API names to request for ``kind`` (the ``fields`` parameter, at most 50)."""
    names = ["id", "Modified_Time", spec.crm_books_id_field, *kind.crm_name_fields]
    if kind.parent or kind.name == "contacts":
        names.append("Account_Name")
    if kind.currency_field:
        names.append(kind.currency_field)
    names += [f for p in mapping.section(kind.section).fields for f in p.crm_fields]
    return list(dict.fromkeys(names))
