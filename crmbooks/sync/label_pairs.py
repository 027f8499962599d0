"""Transaction custom fields that pair themselves by their label, as pure functions.

A CRM custom field of a transaction module (Quotes …) and a Books custom field of its resource
(estimates …) with the same label — compared after Unicode NFKC, case folding and collapsing
spaces, so "PO  Number" and "po number" are one label — carry each other's values both ways,
with no `--map`. A pair is made only when each field's type can hold every value of the other
(a free-text field and a number field cannot); a field with no partner, an ambiguous label, or
types that do not fit is reported with its reason (`crmbooks status`) and left alone.

An explicit map (`configure transactions --map`) wins: a field it names on either side takes
part in no label pair. crmbooks' own fields (the Books id, number and address in the CRM, the
CRM id in Books) never pair: they are not the user's custom fields.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from crmbooks.sync.registry import shape

#: What kind of value a field holds, by data type, on each side. Types not listed (lookups,
#: multi-select, date-time, formulas, attachments, auto-numbers …) hold values crmbooks does
#: not convert, so they never pair.
BOOKS_KINDS = {"string": "text", "multiline": "text", "email": "email", "url": "url",
               "phone": "phone", "dropdown": "choice", "number": "whole", "decimal": "number",
               "amount": "number", "percent": "number", "date": "date",
               "check_box": "boolean", "boolean": "boolean"}
CRM_KINDS = {"text": "text", "textarea": "text", "email": "email", "website": "url",
             "phone": "phone", "picklist": "choice", "integer": "whole", "double": "number",
             "currency": "number", "decimal": "number", "percent": "number", "date": "date",
             "boolean": "boolean"}
#: Kinds that carry each other's values both ways besides equal kinds: a whole number is a
#: number, and Books' "number" fields take the CRM's decimals as the existing maps do.
_ALSO_FITS = {("whole", "number"), ("number", "whole")}
_SPACES = re.compile(r"\s+")


def normalise_label(label: Any) -> str:
    """The form labels are compared in: Unicode NFKC, case-folded, spaces collapsed and
    trimmed ('' for no label)."""
    text = unicodedata.normalize("NFKC", str(label or ""))
    return _SPACES.sub(" ", text.casefold()).strip()


def kinds_fit(books_type: str | None, crm_type: str | None) -> bool:
    """True when a Books custom field of `books_type` and a CRM field of `crm_type` can carry
    each other's values."""
    books, crm = BOOKS_KINDS.get(books_type or ""), CRM_KINDS.get(crm_type or "")
    if books is None or crm is None:
        return False
    return books == crm or (books, crm) in _ALSO_FITS


def pair_by_label(crm_fields: Iterable[Mapping[str, Any]],
                  books_fields: Iterable[Mapping[str, Any]], *,
                  mapped_crm: Iterable[str] = (), mapped_books: Iterable[str] = (),
                  own_crm: Iterable[str] = (), own_books: Iterable[str] = (),
                  module: str = "", resource: str = "") -> tuple[list[dict], list[dict]]:
    """(pairs, unpaired) of one transaction module.

    Args:
        crm_fields: the module's CRM field metadata (`api_name`, `field_label`, `data_type`,
            `custom_field`, `read_only`); only custom fields take part.
        books_fields: the resource's Books custom fields (`api_name`, `label`, `data_type`).
        mapped_crm / mapped_books: fields an explicit map already names (they win).
        own_crm / own_books: crmbooks' own fields, never paired.
        module / resource: names for the reasons ("Quotes", "estimates").

    Each pair has the shape of a map (`crm`, `books`, `direction` "both", `crm_type`,
    `books_type`) plus its `label`; each unpaired field is `side` ("crm" | "books"),
    `field`, `label` and `reason`.
    """
    crm_fields, books_fields = list(crm_fields), list(books_fields)
    mapped_crm, mapped_books = set(mapped_crm), set(mapped_books)
    skip_crm, skip_books = mapped_crm | set(own_crm), mapped_books | set(own_books)
    crm = [f for f in crm_fields if f.get("custom_field") and f.get("api_name")
           and f["api_name"] not in skip_crm]
    books = [f for f in books_fields if f.get("api_name") and f["api_name"] not in skip_books]
    crm_by, books_by = _by_label(crm, "field_label"), _by_label(books, "label")
    # Fields a map took: a field whose same-label partner is one of them is told so.
    crm_taken = _by_label([f for f in crm_fields if f.get("custom_field")
                           and f.get("api_name") in mapped_crm], "field_label")
    books_taken = _by_label([f for f in books_fields if f.get("api_name") in mapped_books],
                            "label")
    pairs, unpaired = [], []

    def report(side: str, field: Mapping[str, Any], reason: str) -> None:
        label = field.get("field_label" if side == "crm" else "label") or ""
        unpaired.append({"side": side, "field": str(field["api_name"]), "label": str(label),
                         "reason": reason})

    for key in sorted(set(crm_by) | set(books_by)):
        on_crm, on_books = crm_by.get(key, []), books_by.get(key, [])
        if not key:  # a field with no label has nothing to be paired by
            for f in on_crm:
                report("crm", f, "it has no label")
            for f in on_books:
                report("books", f, "it has no label")
            continue
        if len(on_crm) > 1 or len(on_books) > 1:
            names = ", ".join([*(f"CRM {f['api_name']}" for f in on_crm),
                               *(f"Books {f['api_name']}" for f in on_books)])
            for f in on_crm:
                report("crm", f, f"the label is shared by {names}: map one with --map")
            for f in on_books:
                report("books", f, f"the label is shared by {names}: map one with --map")
            continue
        if not on_books and key in books_taken:
            report("crm", on_crm[0], f"its same-label Books field "
                   f"{books_taken[key][0]['api_name']} is mapped with --map to another field")
            continue
        if not on_books:
            report("crm", on_crm[0], f"no Books custom field of {resource or 'the resource'} "
                   "has this label (crmbooks learns Books' custom fields from the records of the "
                   "first list page: give the field a value on one of them)")
            continue
        if not on_crm and key in crm_taken:
            report("books", on_books[0], f"its same-label CRM field "
                   f"{crm_taken[key][0]['api_name']} is mapped with --map to another field")
            continue
        if not on_crm:
            report("books", on_books[0], f"no CRM custom field of {module or 'the module'} "
                   "has this label")
            continue
        c, b = on_crm[0], on_books[0]
        crm_type, books_type = c.get("data_type"), b.get("data_type")
        if not kinds_fit(books_type, crm_type):
            why = (f"the types do not carry each other's values: CRM {c['api_name']} is "
                   f"{crm_type}, Books {b['api_name']} is {books_type}")
            report("crm", c, why)
            report("books", b, why)
        elif c.get("read_only") or c.get("field_read_only"):
            why = f"CRM {c['api_name']} is read-only, so Books values cannot reach it"
            report("crm", c, why)
            report("books", b, why)
        else:
            pairs.append({"crm": str(c["api_name"]), "books": str(b["api_name"]),
                          "direction": "both", "crm_type": crm_type, "books_type": books_type,
                          "label": str(c.get("field_label") or "")})
    return pairs, unpaired


def pair_module(module: str, resource: str, crm_fields: Iterable[Mapping[str, Any]],
                books_fields: Iterable[Mapping[str, Any]], maps: Iterable[Any] = ()
                ) -> tuple[list[dict], list[dict]]:
    """`pair_by_label` for one transaction module (CRM `module`, Books `resource`), leaving out
    crmbooks' own fields and every field an explicit map of that resource names (`maps`:
    the transactions settings' maps, each with `books` "custom_fields.cf_…", `crm` and an
    optional `section`)."""
    own = shape()
    explicit = [m for m in maps if m.section in (None, resource)]
    return pair_by_label(
        crm_fields, books_fields, module=module, resource=resource,
        mapped_crm={m.crm for m in explicit},
        mapped_books={m.books.removeprefix("custom_fields.") for m in explicit},
        own_crm={own.crm.books_id, own.crm.books_number, own.crm.books_url},
        own_books={own.books.crm_id})


def _by_label(fields: Iterable[Mapping[str, Any]], key: str) -> dict[str, list[Mapping]]:
    out: dict[str, list[Mapping]] = {}
    for f in fields:
        out.setdefault(normalise_label(f.get(key)), []).append(f)
    return out
