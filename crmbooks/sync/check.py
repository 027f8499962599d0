"""Check a mapping against both sides' live field metadata before anything is written.

An unknown CRM field, a type mismatch, a read-only CRM field written to, a picklist value the
CRM does not have, or a Books custom field that does not exist yet each become a
:class:`MappingProblem` naming the field and what to do; :func:`assert_mapping_ok` turns
them into one :class:`MappingCheckError` that stops the run (exit code 2, nothing written).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import Any

from crmbooks.sync.figures import CRM_TYPES, FIGURE_KINDS, FIGURES, Figure
from crmbooks.sync.mapping import effective_mapping
from crmbooks.sync.modules import KindSpec, ModuleSpec
from crmbooks.sync.values import CUSTOM
from mappings.schema import BOOKS_FIELDS, FieldPair, Mapping, MappingError, default_mapping

#: Books custom-field data types each converter can write (unknown types are not flagged).
BOOKS_CF_TYPES: dict[str, frozenset[str]] = {
    "text": frozenset({"string", "multiline", "dropdown", "email", "url", "phone", "text"}),
    "email": frozenset({"email", "string"}),
    "phone": frozenset({"phone", "string"}),
    "url": frozenset({"url", "string"}),
    "decimal": frozenset({"decimal", "amount", "number", "percent"}),
    "boolean": frozenset({"check_box", "boolean"}),
    "active_status": frozenset({"check_box", "boolean"}),
    "picklist": frozenset({"dropdown", "string"}),
    "lookup_name": frozenset({"string", "text"}),
    "full_name": frozenset({"string", "text"}),
}
KNOWN_BOOKS_CF_TYPES = frozenset().union(*BOOKS_CF_TYPES.values()) | {"date", "datetime",
                                                                      "multiselect", "lookup"}


class MappingCheckError(ValueError):
    """The mapping does not fit the live fields of CRM or Books; nothing may be written."""


@dataclass(frozen=True)
class MappingProblem:
    """One field of the mapping that does not fit a side's live metadata."""

    section: str
    side: str  # crm | books
    field: str
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.section}: {self.message} — {self.hint}"


def check_mapping(spec: ModuleSpec, mapping: Mapping, kinds: Iterable[KindSpec],
                  crm_fields: MappingABC[str, list[dict[str, Any]]],
                  books_custom_fields: MappingABC[str, list[dict[str, Any]]]
                  ) -> list[MappingProblem]:
    """All problems of ``mapping`` for the given kinds against live metadata.

    Args:
        crm_fields: {CRM module: the ``fields`` of ``GET /settings/fields?module=…``}.
        books_custom_fields: {Books resource (contacts|items): custom field definitions
            ``{api_name, data_type, is_unique}``}.
    """
    problems: list[MappingProblem] = []
    for kind in kinds:
        section = mapping.section(kind.section)
        live = {f.get("api_name"): f for f in crm_fields.get(kind.crm_module, [])}
        custom = {f.get("api_name"): f for f in books_custom_fields.get(kind.books_resource, [])}
        for pair in section.fields:
            problems += _crm_problems(kind, pair, live, mapping)
            problems += _books_problems(kind, pair, custom)
        problems += _id_field_problems(spec, kind, live, custom)
        if spec.name == "customers" and kind.name in FIGURE_KINDS:
            problems += figure_problems(kind.crm_module, crm_fields.get(kind.crm_module, []))
    return problems


def _crm_problems(kind: KindSpec, pair: FieldPair, live: dict[str, dict],
                  mapping: Mapping) -> list[MappingProblem]:
    """Problems of one pair on the CRM side."""
    out = []
    for name in pair.crm_fields:
        meta = live.get(name)
        if meta is None:
            out.append(MappingProblem(
                kind.name, "crm", name, f"CRM field {name} does not exist in {kind.crm_module}",
                "check its API name in CRM (Setup › Modules and Fields) or remove the mapping"))
            continue
        dtype = meta.get("data_type")
        if pair.conv.crm_types and dtype not in pair.conv.crm_types:
            out.append(MappingProblem(
                kind.name, "crm", name, f"CRM field {name} is of type {dtype!r}, which "
                f"converter {pair.converter!r} cannot handle "
                f"(expects {', '.join(sorted(pair.conv.crm_types))})",
                "pick a converter that fits the field's type, or map another field"))
        if pair.goes_to("crm") and (meta.get("read_only") or meta.get("field_read_only")):
            out.append(MappingProblem(
                kind.name, "crm", name, f"CRM field {name} is read-only",
                "set direction: to_books for this field"))
        out += _picklist_problems(kind, pair, name, meta, mapping)
    return out


def _picklist_problems(kind: KindSpec, pair: FieldPair, name: str, meta: dict,
                       mapping: Mapping) -> list[MappingProblem]:
    """Value-map keys that the CRM picklist does not offer."""
    if not pair.value_map or not meta.get("pick_list_values"):
        return []
    offered = {v.get("actual_value") for v in meta["pick_list_values"]} | {
        v.get("display_value") for v in meta["pick_list_values"]}
    return [MappingProblem(kind.name, "crm", name,
                           f"value map {pair.value_map!r} maps {value!r}, which is not a value "
                           f"of the CRM picklist {name}",
                           f"add {value!r} to the picklist in CRM or fix the value map")
            for value in mapping.value_maps[pair.value_map] if value not in offered]


def _books_problems(kind: KindSpec, pair: FieldPair,
                    custom: dict[str, dict]) -> list[MappingProblem]:
    """Problems of one pair on the Books side (custom fields only: standard ones are known)."""
    if not pair.books.startswith(CUSTOM):
        return []
    name = pair.books[len(CUSTOM):]
    meta = custom.get(name)
    if meta is None:
        return [MappingProblem(
            kind.name, "books", pair.books, f"Books custom field {name} does not exist yet",
            f"create it in Books (Settings › Preferences › {kind.books_resource} › Custom "
            "Fields), then run again")]
    dtype = meta.get("data_type")
    allowed = BOOKS_CF_TYPES.get(pair.converter, frozenset())
    if dtype in KNOWN_BOOKS_CF_TYPES and allowed and dtype not in allowed:
        return [MappingProblem(
            kind.name, "books", pair.books, f"Books custom field {name} is of type {dtype!r}, "
            f"which converter {pair.converter!r} cannot write",
            "change the custom field's type in Books or pick another converter")]
    return []


def _id_field_problems(spec: ModuleSpec, kind: KindSpec, live: dict[str, dict],
                       custom: dict[str, dict]) -> list[MappingProblem]:
    """The unique fields that make writes replayable (exactly-once) must exist on both sides."""
    out = []
    if kind.books_resource != "contact_persons":
        cf = custom.get(spec.books_crm_id_field)
        if cf is None or not cf.get("is_unique", True):
            out.append(MappingProblem(
                kind.name, "books", spec.books_crm_id_field,
                f"Books {kind.books_resource} need a unique custom field "
                f"{spec.books_crm_id_field} for the CRM id",
                "create it as a text field with 'unique' ticked, then run again"))
    if spec.crm_books_id_field not in live:
        out.append(MappingProblem(
            kind.name, "crm", spec.crm_books_id_field,
            f"CRM {kind.crm_module} need a unique field {spec.crm_books_id_field} for the "
            "Books id", "create it as a single-line field marked 'Do not allow duplicate "
            "values', then run again"))
    return out


def figure_problems(crm_module: str, fields: Iterable[MappingABC[str, Any]]
                    ) -> list[MappingProblem]:
    """Every figure field of ``crm_module`` that is missing, of the wrong type or read-only,
    given the module's live ``/settings/fields``."""
    live = {f.get("api_name"): f for f in fields}
    out = []
    for fig in FIGURES:
        meta = live.get(fig.crm_field)
        if meta is None:
            out.append(MappingProblem(
                "figures", "crm", fig.crm_field,
                f"CRM {crm_module} have no field {fig.crm_field} for the {fig.label}",
                f"create it in CRM (Setup › Modules and Fields › {crm_module}) as a "
                f"{_type_words(fig)} field with API name {fig.crm_field}, then run again"))
            continue
        dtype = meta.get("data_type")
        if dtype not in CRM_TYPES[fig.kind]:
            out.append(MappingProblem(
                "figures", "crm", fig.crm_field,
                f"CRM field {crm_module}.{fig.crm_field} is of type {dtype!r}, but the "
                f"{fig.label} needs a {_type_words(fig)} field",
                "change the field's type in CRM (or recreate it), then run again"))
        if meta.get("read_only") or meta.get("field_read_only"):
            out.append(MappingProblem(
                "figures", "crm", fig.crm_field,
                f"CRM field {crm_module}.{fig.crm_field} is read-only, so the {fig.label} "
                "cannot be written", "make it editable in CRM, then run again"))
    return out


def _type_words(fig: Figure) -> str:
    return {"money": "currency", "date": "date", "text": "single-line"}[fig.kind]


def assert_mapping_ok(*args: Any, **kwargs: Any) -> None:
    """Run :func:`check_mapping`; raise MappingCheckError listing every problem."""
    problems = check_mapping(*args, **kwargs)
    if problems:
        lines = "\n".join(f"- {p}" for p in problems)
        raise MappingCheckError(f"the field mapping does not fit the connected apps "
                                f"({len(problems)} problem(s)); nothing was written:\n{lines}")


# ------------------------------------------------------------------ the operator's own maps
#: CRM data types that hold a reference to another record, not a value a map can carry.
LOOKUP_TYPES = frozenset({"lookup", "ownerlookup", "userlookup", "multiselectlookup"})
#: Converters a value map can be put on (the value is text on both sides).
VALUE_MAP_CONVERTERS = frozenset({"text", "picklist"})


def check_field_maps(spec: ModuleSpec, settings: Any,
                     crm_fields: MappingABC[str, list[dict[str, Any]]] | None,
                     books_custom_fields: MappingABC[str, list[dict[str, Any]]] | None
                     ) -> list[MappingProblem]:
    """The problems of a module's extra field maps and value maps (``settings.maps``,
    ``settings.value_maps``), checked when `crmbooks configure` saves them, so that a map no
    run could use is never saved.

    Each problem names the map and what to do. ``crm_fields`` / ``books_custom_fields`` are
    the cached live metadata ({CRM module: fields}, {Books resource: custom fields}); None
    when it could not be read (then only what the mapping schema knows is checked).
    """
    kinds = {k.section: k for k in spec.kinds}
    value_maps: dict[str, dict[str, str]] = dict(getattr(settings, "value_maps", {}) or {})
    problems: list[MappingProblem] = []
    for m in getattr(settings, "maps", ()) or ():
        kind = kinds.get(m.section or spec.kinds[0].section)
        if kind is None:
            continue
        where = f"--map {m.books.removeprefix(CUSTOM)}={m.crm}"
        problem = (_books_field_problem(spec, kind, m.books, books_custom_fields, BOOKS_FIELDS)
                   or _crm_field_problem(kind, m, value_maps.get(m.books), crm_fields))
        if problem:
            problems.append(MappingProblem(kind.name, problem[0], problem[1],
                                           f"{where}: {problem[2]}", problem[3]))
    if value_maps:
        problems += _value_map_problems(spec, settings, value_maps, crm_fields)
    if not problems:
        try:  # anything else the mapping schema refuses (a field mapped twice …)
            effective_mapping(spec, settings)
        except MappingError as exc:
            problems.append(MappingProblem(spec.kinds[0].name, "books", "", str(exc),
                                           "fix the map or remove it with --unmap"))
    return problems


def _books_field_problem(spec: ModuleSpec, kind: KindSpec, books: str,
                         custom: MappingABC[str, list[dict[str, Any]]] | None,
                         standard: MappingABC[str, frozenset[str]]
                         ) -> tuple[str, str, str, str] | None:
    """(side, field, message, hint) when the Books end of a map does not exist."""
    if books.startswith(CUSTOM):
        name = books[len(CUSTOM):]
        if name == spec.books_crm_id_field:
            return ("books", books, f"{name} holds the CRM id crmbooks writes",
                    "map another Books custom field")
        live = None if custom is None else {f.get("api_name") for f in
                                            custom.get(kind.books_resource, [])}
        if live is not None and name not in live:
            return ("books", books, f"Books {kind.books_resource} have no custom field {name}",
                    f"create it in Books (Settings › Preferences › {kind.books_resource} › "
                    "Custom Fields) or fix the map")
        return None
    if books not in standard[kind.books_resource]:
        return ("books", books, f"Books {kind.books_resource} have no field {books!r}",
                "name a standard Books field or a custom field as cf_<api_name>")
    return None


def _crm_field_problem(kind: KindSpec, m: Any, value_map: dict[str, str] | None,
                       crm_fields: MappingABC[str, list[dict[str, Any]]] | None
                       ) -> tuple[str, str, str, str] | None:
    """(side, field, message, hint) when the CRM end of a map cannot carry its values."""
    if crm_fields is None:
        return None
    meta = {f.get("api_name"): f for f in crm_fields.get(kind.crm_module, [])}.get(m.crm)
    if meta is None:
        return ("crm", m.crm, f"the CRM {kind.crm_module} have no field {m.crm}",
                "check its API name in CRM (Setup › Modules and Fields) or fix the map")
    dtype = meta.get("data_type")
    if dtype in LOOKUP_TYPES:
        return ("crm", m.crm, f"CRM field {m.crm} is a lookup (a link to another record), "
                "not a value", "map a text or picklist field instead")
    if m.direction != "to_books" and (meta.get("read_only") or meta.get("field_read_only")):
        return ("crm", m.crm, f"CRM field {m.crm} is read-only, so Books values cannot be "
                "written to it", "map a field the CRM lets you edit")
    if dtype == "picklist" and not value_map:
        return ("crm", m.crm, f"CRM field {m.crm} is a picklist and has no value map",
                f"give each of its values a Books value with --value-map "
                f"{m.books.removeprefix(CUSTOM)}:CRM_VALUE=BOOKS_VALUE")
    converter = "picklist" if value_map else m.converter
    allowed = FieldPair(books=m.books, crm=m.crm, converter=converter,
                        value_map="x" if value_map else None).conv.crm_types
    if allowed and dtype not in allowed:
        return ("crm", m.crm, f"CRM field {m.crm} is of type {dtype!r}, which a text map "
                f"cannot carry (it takes {', '.join(sorted(allowed))})",
                "map a field of one of those types")
    return None


def _value_map_problems(spec: ModuleSpec, settings: Any, value_maps: dict[str, dict[str, str]],
                        crm_fields: MappingABC[str, list[dict[str, Any]]] | None
                        ) -> list[MappingProblem]:
    """A value map must belong to a text or picklist map of the module, and its CRM values
    must be values of the CRM picklist."""
    base = effective_mapping(spec, settings.model_copy(update={"value_maps": {}}),
                             default_mapping(spec.mapping_file))
    out = []
    for books, entries in value_maps.items():
        where = f"--value-map {books.removeprefix(CUSTOM)}"
        found = [(kind, pair) for kind in spec.kinds
                 for pair in base.section(kind.section).fields if pair.books == books]
        if not found:
            out.append(MappingProblem(spec.kinds[0].name, "books", books,
                                      f"{where}: no map of {spec.name} writes {books}",
                                      "map the field first with --map"))
            continue
        for kind, pair in found:
            if pair.converter not in VALUE_MAP_CONVERTERS:
                out.append(MappingProblem(kind.name, "books", books,
                                          f"{where}: {books} is mapped with converter "
                                          f"{pair.converter!r}, which takes no value map",
                                          "give value maps to text or picklist maps only"))
                continue
            meta = {f.get("api_name"): f for f in (crm_fields or {}).get(kind.crm_module, [])}
            offered = {v.get("actual_value") for v in
                       (meta.get(pair.crm, {}).get("pick_list_values") or [])}
            unknown = [v for v in entries if offered and v not in offered]
            if unknown:
                out.append(MappingProblem(
                    kind.name, "crm", str(pair.crm),
                    f"{where}: {', '.join(map(repr, unknown))} is not a value of the CRM "
                    f"picklist {pair.crm}", "use one of " + ", ".join(
                        sorted(str(v) for v in offered if v and v != "-None-"))))
    return out
