"""Three-way merge of one linked record: base = the link's last synced values.

Each side is compared with its *own* last synced values (CRM values with CRM values, Books
with Books), so a lossy conversion never looks like a change. Per field pair:
  - changed on one side only → written to the other side;
  - changed on both, to values that convert to each other → nothing, no conflict;
  - changed on both, differently → the winner's value is written and a conflict recorded.
Without a base (a pair matched for the first time), ``source`` wins every differing field
and nothing counts as a conflict. Pure: returns a new :class:`MergeResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmbooks.sync.values import canon, same
from mappings.schema import FieldPair, Mapping, Section


@dataclass(frozen=True)
class MergeResult:
    """What to write on each side, what changed, which conflicts, and the new link values."""

    to_books: dict[str, Any] = field(default_factory=dict)  # books path → new value
    to_crm: dict[str, Any] = field(default_factory=dict)  # CRM API name → new value
    changes: tuple[dict, ...] = ()  # {"side", "field", "before", "after"}
    conflicts: tuple[dict, ...] = ()  # {"field", "crm", "books", "winner"}
    crm_values: dict[str, Any] = field(default_factory=dict)  # link values after the writes
    books_values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sides:
    """The values of one record: base and current, on each side (raw, as that side has them)."""

    base_crm: dict[str, Any] | None
    base_books: dict[str, Any] | None
    crm: dict[str, Any]
    books: dict[str, Any]


def _convert(pair: FieldPair, mapping: Mapping, value: Any, side: str) -> Any:
    ctx = pair.ctx(mapping.value_maps, side=side)
    return (pair.conv.to_books if side == "books" else pair.conv.to_crm)(value, ctx)


def _crm_raw(pair: FieldPair, values: dict[str, Any]) -> Any:
    raw = [values.get(f) for f in pair.crm_fields]
    return raw if pair.conv.multi else raw[0]


def _changed(pair: FieldPair, sides: Sides) -> tuple[bool, bool]:
    """(changed in CRM, changed in Books) since the last sync."""
    crm = any(not same(sides.crm.get(f), (sides.base_crm or {}).get(f))
              for f in pair.crm_fields)
    books = not same(sides.books.get(pair.books), (sides.base_books or {}).get(pair.books))
    return crm, books


def merge_record(section: Section, mapping: Mapping, sides: Sides, *, winner: str,
                 source: str = "crm", write_crm: bool = True,
                 write_books: bool = True) -> MergeResult:
    """Merge one record's fields (see module doc). ConversionError for a bad value.

    Args:
        winner: crm|books, takes a field changed on both sides.
        source: crm|books, wins differing fields when there is no base (first pairing).
        write_crm / write_books: False forbids writes to that side (scope "fetch").
    """
    no_base = not sides.base_crm and not sides.base_books
    to_books: dict[str, Any] = {}
    to_crm: dict[str, Any] = {}
    changes: list[dict] = []
    conflicts: list[dict] = []
    for pair in section.fields:
        crm_now, books_now = _crm_raw(pair, sides.crm), sides.books.get(pair.books)
        as_books = _convert(pair, mapping, crm_now, "books") if pair.goes_to("books") else None
        if pair.goes_to("books") and same(as_books, books_now):
            continue  # both sides already agree (also covers "changed to the same value")
        crm_changed, books_changed = (source == "crm", source == "books") if no_base \
            else _changed(pair, sides)
        take = _take(crm_changed, books_changed, winner)
        if crm_changed and books_changed:
            conflicts.append({"field": pair.books, "crm": canon(crm_now),
                              "books": canon(books_now), "winner": winner})
        if take == "crm" and pair.goes_to("books") and write_books:
            to_books[pair.books] = as_books
            changes.append(_change("books", pair.books, books_now, as_books))
        elif take == "books" and pair.goes_to("crm") and write_crm:
            as_crm = _convert(pair, mapping, books_now, "crm")
            if not same(as_crm, crm_now):
                to_crm[pair.crm] = as_crm
                changes.append(_change("crm", pair.crm, crm_now, as_crm))
    return MergeResult(to_books, to_crm, tuple(changes), tuple(conflicts),
                       *_new_values(section, sides, to_books, to_crm))


def _take(crm_changed: bool, books_changed: bool, winner: str) -> str | None:
    """Which side's value a field takes."""
    if crm_changed and books_changed:
        return winner
    if crm_changed:
        return "crm"
    return "books" if books_changed else None


def _change(side: str, name: str, before: Any, after: Any) -> dict[str, Any]:
    return {"side": side, "field": name, "before": canon(before), "after": canon(after)}


def _new_values(section: Section, sides: Sides, to_books: dict,
                to_crm: dict) -> tuple[dict, dict]:
    """Link values once the writes are done: current values overlaid with what was written."""
    crm = {f: canon(sides.crm.get(f)) for p in section.fields for f in p.crm_fields}
    books = {p.books: canon(sides.books.get(p.books)) for p in section.fields}
    crm.update({k: canon(v) for k, v in to_crm.items()})
    books.update({k: canon(v) for k, v in to_books.items()})
    return crm, books
