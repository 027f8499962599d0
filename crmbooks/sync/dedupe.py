"""Match incoming records to the other side: by link, by the stored id, then by name.

The duplicates policy acts on *exact* matches of the normalised display name. A looser
"fuzzy" key (punctuation and legal suffixes removed) only *proposes* matches for review; it
never links or skips anything by itself. So do *likely* matches by another name: the same
email, phone number or website domain (``likely``, with the evidence of each).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from crmbooks.sync.mapping import as_id, clean_records
from crmbooks.sync.modules import KindSpec, ModuleSpec
from crmbooks.sync.values import get_path

#: Columns of an index of the other side's records (what names and ids exist there).
INDEX_COLUMNS = ["id", "kind", "name", "ref_id", "parent_id", "keys"]
#: Columns added by :func:`match`.
MATCH_COLUMNS = ["record_key", "match", "other_id", "other_linked", "candidates", "proposals",
                 "likely"]
#: The evidence of a likely match, per kind of key (see :func:`contact_keys`).
KEY_EVIDENCE = {"email": "same email", "phone": "same phone number",
                "domain": "same website domain"}
_KEY_FIELDS = {"email": "email", "phone": "phone", "mobile": "phone", "website": "domain"}

LEGAL_SUFFIXES = frozenset([
    "inc", "incorporated", "ltd", "limited", "llc", "llp", "lp", "plc", "corp", "corporation",
    "co", "company", "gmbh", "ag", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "oy", "ab",
    "as", "aps", "pty", "pvt", "kg", "kk",
])
_SPACES = re.compile(r"\s+")


def normalise_name(name: Any) -> str:
    """The exact-match key of a display name: NFKC, casefolded, whitespace collapsed."""
    if not isinstance(name, str):
        return ""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", name).casefold()).strip()


def fuzzy_name(name: Any) -> str:
    """A looser key for proposals only: also without punctuation and legal suffixes."""
    text = normalise_name(name)
    text = "".join(c if not unicodedata.category(c).startswith(("P", "S")) else " "
                   for c in text)
    words = [w for w in text.split() if w not in LEGAL_SUFFIXES]
    return " ".join(words)


def contact_keys(values: Mapping[str, Any] | None) -> list[str]:
    """Keys that make two records with different names likely the same: ``email:…``,
    ``phone:…`` (the last 9 digits: country prefixes vary) and ``domain:…`` (``www.``
    dropped). ``values`` is a record, or a flat {field path: value} of one side."""
    keys = []
    for field, value in (values or {}).items():
        what = _KEY_FIELDS.get(str(field).rsplit(".", 1)[-1].lower())
        if not what or not isinstance(value, str) or not value.strip():
            continue
        text = value.strip().casefold()
        if what == "email" and "@" in text:
            keys.append(f"email:{text}")
        elif what == "phone" and len(digits := re.sub(r"\D", "", text)) >= 7:
            keys.append(f"phone:{digits[-9:]}")
        elif what == "domain":
            host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
            host = host.removeprefix("www.")
            if "." in host:
                keys.append(f"domain:{host}")
    return sorted(set(keys))


def _values_of(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A mapped record's own values (the CRM's or Books', by its source)."""
    return dict(rec.get("crm_values") or {}) if rec.get("source") == "crm" else dict(
        rec.get("books_values") or {})


def index_of(mapped: pd.DataFrame) -> pd.DataFrame:
    """An index (INDEX_COLUMNS) of the records of a mapped frame, keyed by their own ids."""
    rows = []
    for rec in clean_records(mapped):
        own = rec.get("crm_id") if rec.get("source") == "crm" else rec.get("books_id")
        parent = rec.get("parent_crm_id") if rec.get("source") == "crm" else rec.get(
            "parent_books_id")
        rows.append({"id": own, "kind": rec.get("kind"), "name": rec.get("name"),
                     "ref_id": rec.get("ref_id"), "parent_id": parent,
                     "keys": contact_keys(_values_of(rec))})
    return pd.DataFrame(rows, columns=INDEX_COLUMNS, dtype=object)


def _linked(links: pd.DataFrame, side: str) -> dict[str, str]:
    """{id on ``side``: id on the other side} from a links frame."""
    if links is None or links.empty:
        return {}
    other = "books_id" if side == "crm" else "crm_id"
    return dict(zip(links[f"{side}_id"], links[other], strict=True))


def match(incoming: pd.DataFrame, other: pd.DataFrame, links: pd.DataFrame, side: str,
          parent_map: dict[str, str] | None = None) -> pd.DataFrame:
    """Find, for each incoming record from ``side``, its counterpart in ``other`` (an index).

    Order: the link; the other side's id stored on the record (or ours stored on theirs:
    crash recovery); the exact normalised name within the same kind (and, for contact
    persons, the same parent via ``parent_map`` {our parent id: their parent id}).
    ``match`` is link | ref | name | ambiguous | none; ``other_linked`` says whether a name
    match is already linked to another record; ``proposals`` lists fuzzy name matches.
    """
    own_links = _linked(links, side)
    their_side = "books" if side == "crm" else "crm"
    their_links = _linked(links, their_side)
    ids = set(other["id"]) if not other.empty else set()
    by_ref = {r: i for r, i in zip(other["ref_id"], other["id"], strict=True) if r} \
        if not other.empty else {}
    by_name, by_fuzzy = _name_tables(other)
    by_key = _key_table(other)
    rows = []
    for rec in clean_records(incoming):
        own = rec.get("crm_id") if side == "crm" else rec.get("books_id")
        found = _match_one(rec, own, own_links, their_links, ids, by_ref, by_name, by_fuzzy,
                           parent_map or {}, side)
        if found["match"] == "none" and not found["proposals"] and by_key:
            found["likely"] = _likely(rec, by_key, their_links)
        rows.append(found)
    return pd.DataFrame(rows, columns=MATCH_COLUMNS, dtype=object)


def _key_table(other: pd.DataFrame) -> dict[tuple, list[str]]:
    """{(kind, key): [ids]} of the other side's email, phone and website-domain keys."""
    table: dict[tuple, list[str]] = {}
    if other.empty or "keys" not in other:
        return table
    for rec in clean_records(other):
        for key in rec.get("keys") or []:
            table.setdefault((rec.get("kind"), key), []).append(rec["id"])
    return table


def _likely(rec: dict, by_key: dict, their_links: dict) -> list[dict]:
    """[{"id", "evidence"}] of unlinked records on the other side sharing a key with ``rec``."""
    found: dict[str, list[str]] = {}
    for key in contact_keys(_values_of(rec)):
        for other_id in by_key.get((rec.get("kind"), key), []):
            if other_id not in their_links:
                found.setdefault(other_id, []).append(KEY_EVIDENCE[key.split(":", 1)[0]])
    return [{"id": i, "evidence": sorted(set(e))} for i, e in found.items()]


def _name_tables(other: pd.DataFrame) -> tuple[dict, dict]:
    """{(kind, parent, exact name): [ids]} and {(kind, parent, fuzzy name): [ids]}."""
    by_name: dict[tuple, list[str]] = {}
    by_fuzzy: dict[tuple, list[str]] = {}
    for rec in clean_records(other):
        parent = rec.get("parent_id")
        exact = normalise_name(rec.get("name"))
        if exact:
            by_name.setdefault((rec.get("kind"), parent, exact), []).append(rec["id"])
            by_fuzzy.setdefault((rec.get("kind"), parent, fuzzy_name(exact)), []).append(rec["id"])
    return by_name, by_fuzzy


def _match_one(rec: dict, own: str, own_links: dict, their_links: dict, ids: set,
               by_ref: dict, by_name: dict, by_fuzzy: dict, parent_map: dict,
               side: str) -> dict[str, Any]:
    """The match of one incoming record."""
    out = {"record_key": rec["record_key"], "match": "none", "other_id": None,
           "other_linked": False, "candidates": [], "proposals": [], "likely": []}
    if own in own_links:
        return {**out, "match": "link", "other_id": own_links[own]}
    ref = rec.get("ref_id")
    if ref and ref not in their_links:  # the stored id is trusted; a stale one fails on push
        return {**out, "match": "ref", "other_id": ref}
    if own in by_ref and by_ref[own] not in their_links:
        return {**out, "match": "ref", "other_id": by_ref[own]}
    parent = rec.get("parent_crm_id") if side == "crm" else rec.get("parent_books_id")
    parent = parent_map.get(parent, parent) if parent else None
    exact = normalise_name(rec.get("name"))
    found = by_name.get((rec.get("kind"), parent, exact), []) if exact else []
    if len(found) == 1:
        return {**out, "match": "name", "other_id": found[0], "candidates": found,
                "other_linked": found[0] in their_links}
    if len(found) > 1:
        return {**out, "match": "ambiguous", "candidates": found}
    fuzzy = by_fuzzy.get((rec.get("kind"), parent, fuzzy_name(exact)), []) if exact else []
    return {**out, "proposals": [i for i in fuzzy if i not in their_links]}


def index_records(frame: pd.DataFrame | None, kind: KindSpec, side: str,
                  spec: ModuleSpec) -> pd.DataFrame:
    """An index (INDEX_COLUMNS) of raw records of ``side`` (no mapping needed).

    Use it for "every name that exists there": a record that fails to map still blocks a
    duplicate. Books records are kept only if they belong to ``kind``.
    """
    rows = []
    for rec in clean_records(frame):
        if side == "crm":
            rows.append({"id": as_id(rec.get("id")), "kind": kind.name,
                         "name": kind.crm_name(rec),
                         "ref_id": as_id(rec.get(spec.crm_books_id_field)),
                         "parent_id": as_id(rec.get("Account_Name")) if kind.parent else None,
                         "keys": contact_keys(rec)})
        elif kind.books_resource == "contact_persons" or kind.owns_books(rec):
            rows.append({"id": as_id(rec.get(kind.books_id_field)), "kind": kind.name,
                         "name": kind.books_name(rec),
                         "ref_id": as_id(get_path(rec, f"custom_fields.{spec.books_crm_id_field}")),
                         "parent_id": as_id(rec.get("parent_books_id")),
                         "keys": contact_keys(rec)})
    return pd.DataFrame(rows, columns=INDEX_COLUMNS, dtype=object)
