"""Plan a sync: one row per record saying what would be written where, and why.

Inputs are the mapped frames of one record kind (``mapping.to_books`` / ``mapping.to_crm``),
the links (with their last synced values), optional indexes of every record on each side
(for duplicates by name) and the module settings. The plan is the whole truth of a run: a
dry run stops here; a real run pushes the rows whose ``target`` is books / crm / both and
then writes each row's ``crm_values`` / ``books_values`` into its link.
"""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd

from crmbooks.sync.dedupe import index_of, match, normalise_name
from crmbooks.sync.mapping import as_id, books_key, clean_records, crm_key, kept_out_reason
from crmbooks.sync.merge import MergeResult, Sides, merge_record
from crmbooks.sync.modules import KindSpec, ModuleSpec
from crmbooks.sync.outcomes import OTHER, counts, planned_events
from crmbooks.sync.values import build_payload, canon
from mappings.converters import ConversionError
from mappings.schema import Mapping

PLAN_COLUMNS = [
    "record_key", "kind", "source", "action", "target", "crm_id", "books_id",
    "parent_crm_id", "parent_books_id", "name", "match", "inline", "person_id",
    "books_payload", "crm_payload", "changes", "conflicts", "crm_values", "books_values",
    "proposals", "reason", "error", "review",
]
#: Evidence words of a queued record (the ``review`` column's ``evidence``).
EXACT_EVIDENCE = "same name once case, spaces and Unicode form are ignored"
CLOSE_EVIDENCE = "close name (punctuation and legal suffixes ignored)"
ACTIONS = ("create", "update", "nothing", "skip", "clone", "overwrite", "conflict-merge", "fail")



class _Ctx:
    """Everything one kind's planning needs, computed once."""

    def __init__(self, spec: ModuleSpec, kind: KindSpec, settings: Any, mapping: Mapping,
                 links: pd.DataFrame) -> None:
        self.spec, self.kind, self.mapping = spec, kind, mapping
        self.section = mapping.section(kind.section)
        self.scope = getattr(settings, "scope", "both")
        self.duplicates = getattr(settings, "duplicates", "skip")
        self.clone_suffix = getattr(settings, "clone_suffix", "(2)")
        self.decisions: dict[str, tuple[str, str | None]] = {}  # record key: (decision, id)
        self.names: dict[str, str] = {}  # ids of the other side's indexed records: their names
        # Normalised names this run creates in Books, and the record key that takes each:
        # Books names are unique, so a second record of the same name must not be sent.
        self.creating: dict[str, str] = {}
        self.two_way = self.scope == "both"
        self.links = _kind_links(links, kind)
        self.taken: set[str] = set()  # Books names held by another kind (see plan_kind)
        self.link_by_crm = {r["crm_id"]: r for r in clean_records(self.links)}
        self.claimed: set[tuple[str, str]] = set()


def _kind_links(links: pd.DataFrame | None, kind: KindSpec) -> pd.DataFrame:
    """The links of one kind (links written without a kind count for every kind)."""
    if links is None or links.empty:
        return pd.DataFrame(columns=["crm_id", "books_id", "crm_values", "books_values"])
    if "kind" not in links:
        return links
    return links[links["kind"].isin([kind.name, "", None])]


def _row(rec: dict, **kw: Any) -> dict[str, Any]:
    """A plan row from a mapped record, with the given columns set."""
    base = {c: None for c in PLAN_COLUMNS}
    for col in ("record_key", "kind", "source", "crm_id", "books_id", "parent_crm_id",
                "parent_books_id", "name", "person_id"):
        base[col] = rec.get(col)
    base.update(inline=False, changes=[], conflicts=[], proposals=[], match="none")
    base.update(kw)
    return base


def _combine(*records: dict | None) -> dict[str, Any]:
    """One record from several: each key takes the first value that is not None."""
    out: dict[str, Any] = {}
    for rec in records:
        for key, value in (rec or {}).items():
            if out.get(key) is None:
                out[key] = value
    return out


def _books_update_payload(values: dict[str, Any]) -> dict:
    """A Books update body: cleared fields are sent as "" (Books ignores absent keys)."""
    return build_payload({k: ("" if v is None else v) for k, v in values.items()})


# ------------------------------------------------------------------------------ linked
def _plan_linked(ctx: _Ctx, crm: list[dict], books: list[dict]) -> list[dict]:
    """Merge every record that has a link and was fetched on at least one side."""
    crm_by_id = {r["crm_id"]: r for r in crm if r["crm_id"] in ctx.link_by_crm}
    books_to_crm = {link["books_id"]: cid for cid, link in ctx.link_by_crm.items()}
    books_by_crm = {books_to_crm[r["books_id"]]: r for r in books if r["books_id"] in books_to_crm}
    rows = []
    for crm_id in [*crm_by_id, *[c for c in books_by_crm if c not in crm_by_id]]:
        link = ctx.link_by_crm[crm_id]
        rows.append(_merge_row(ctx, link, crm_by_id.get(crm_id), books_by_crm.get(crm_id)))
        ctx.claimed |= {("crm", crm_id), ("books", link["books_id"])}
    return rows


def _merge_row(ctx: _Ctx, link: dict, crm_rec: dict | None, books_rec: dict | None) -> dict:
    """The plan row of one linked record."""
    rec = _combine(crm_rec, books_rec, {k: link.get(k) for k in (
        "crm_id", "books_id", "parent_crm_id", "parent_books_id")})
    sides = Sides(base_crm=link.get("crm_values") or {}, base_books=link.get("books_values") or {},
                  crm=crm_rec["crm_values"] if crm_rec else dict(link.get("crm_values") or {}),
                  books=books_rec["books_values"] if books_rec else dict(
                      link.get("books_values") or {}))
    try:
        result = merge_record(ctx.section, ctx.mapping, sides,
                              winner=ctx.spec.conflict_winner(ctx.scope),
                              write_crm=ctx.two_way)
    except ConversionError as exc:
        return _row(rec, action="fail", target="none", match="link", reason=exc.message,
                    error=_error(exc))
    row = _result_row(ctx, rec, result, "link")
    if not link.get("crm_values") and not link.get("books_values"):
        row = _first_sync_of_manual_pair(ctx, row)
    return row


def _first_sync_of_manual_pair(ctx: _Ctx, row: dict) -> dict:
    """A pair made by hand, synced for the first time: store each side's id on the other, as
    a pairing by the sync does, even where no field differs (else a later run could not
    recover the pair by those ids, and Books' own CRM filter would miss it)."""
    if ctx.kind.parent:
        return row
    if row["books_payload"] is None:
        row["books_payload"] = {}
    if ctx.two_way and row["crm_payload"] is None:
        row["crm_payload"] = {"id": row["crm_id"]}
    row["target"] = "both" if row["crm_payload"] is not None else "books"
    if row["action"] == "nothing":
        row["action"] = "update"
    return _stamp_ids(ctx, row)


def _result_row(ctx: _Ctx, rec: dict, result: MergeResult, how: str,
                action: str | None = None) -> dict:
    """A plan row from a merge result (update / nothing / conflict-merge / overwrite)."""
    targets = [s for s, vals in (("books", result.to_books), ("crm", result.to_crm)) if vals]
    target = "both" if len(targets) == 2 else (targets[0] if targets else "none")
    if action is None:
        action = "conflict-merge" if result.conflicts else ("update" if targets else "nothing")
    books_payload = _books_update_payload(result.to_books) if result.to_books else None
    if books_payload and books_payload.get("contact_persons") and rec.get("person_id"):
        # Update the primary person in place (Books would otherwise add a new one).
        primary = {**books_payload["contact_persons"][0], "contact_person_id": rec["person_id"]}
        books_payload["contact_persons"] = [primary, *books_payload["contact_persons"][1:]]
    crm_payload = None
    if result.to_crm:
        crm_payload = {"id": rec["crm_id"], **result.to_crm}
    return _row(rec, action=action, target=target, match=how,
                books_payload=books_payload, crm_payload=crm_payload, changes=list(result.changes),
                conflicts=list(result.conflicts), crm_values=result.crm_values,
                books_values=result.books_values,
                reason=_merge_reason(result, how))


def _merge_reason(result: MergeResult, how: str) -> str:
    parts = {"link": "linked", "ref": "matched by the stored id (link recovered)",
             "name": "matched by name"}
    text = parts.get(how, how)
    if result.conflicts:
        fields = ", ".join(c["field"] for c in result.conflicts)
        text += f"; changed on both sides: {fields} (winner: {result.conflicts[0]['winner']})"
    elif not result.changes:
        text += "; nothing to change"
    return text


# ---------------------------------------------------------------------------- unlinked
def _own_id(side: str, rec: dict) -> str:
    return rec["crm_id"] if side == "crm" else rec["books_id"]


def _plan_unlinked(ctx: _Ctx, side: str, records: list[dict], other: list[dict],
                   other_index: pd.DataFrame, parents: dict[str, str],
                   new_parents: set[str]) -> list[dict]:
    """Plan the records of ``side`` without a link: pair, apply the duplicates policy, or create."""
    todo = [r for r in records if (side, _own_id(side, r)) not in ctx.claimed]
    if not todo:
        return []
    matches = match(pd.DataFrame(todo), other_index, ctx.links, side, parents)
    if not other_index.empty:
        ctx.names = dict(zip(other_index["id"], other_index["name"], strict=True))
    other_by_id = {_own_id(OTHER[side], r): r for r in other}
    rows = []
    for rec, found in zip(todo, clean_records(matches), strict=True):
        if (side, _own_id(side, rec)) in ctx.claimed:
            continue  # paired with a record planned earlier in this run
        rows.append(_decide(ctx, side, rec, found, other_by_id, parents, new_parents))
    return rows


def _decide(ctx: _Ctx, side: str, rec: dict, found: dict, other_by_id: dict,
            parents: dict[str, str], new_parents: set[str]) -> dict:
    """The plan row of one unlinked record, by how it matched the other side."""
    how, other_id = found.get("match"), found.get("other_id")
    decided = ctx.decisions.get(rec["record_key"])
    if how != "ref" and decided is not None and decided[0] in ("skip", "separate"):
        return _decided_row(ctx, side, rec, decided[0], parents, new_parents)
    if how == "ref" and rec.get("ref_id") and str(rec["ref_id"]) == str(other_id):
        # This record carries the other side's id: it is the copy we made of that record
        # (its link was lost, e.g. a crash right after the create). The original wins.
        other = other_by_id.get(other_id)
        if other is None:
            return _recovered_row(ctx, side, rec, other_id, parents)
        return _pair_row(ctx, side, rec, other_id, other, how, OTHER[side])
    if how == "ref" or (how == "name" and ctx.kind.parent):
        return _pair_row(ctx, side, rec, other_id, other_by_id.get(other_id), how, side)
    if how in ("name", "ambiguous"):
        return _duplicate_row(ctx, side, rec, found, other_by_id)
    proposals = found.get("proposals") or []
    if ctx.duplicates == "review" and not ctx.kind.parent:
        if proposals:
            return _review_row(ctx, side, rec, found["match"], proposals, CLOSE_EVIDENCE)
        likely = found.get("likely") or []
        if likely:
            evidence = sorted({e for c in likely for e in c["evidence"]})
            return _review_row(ctx, side, rec, "likely", [c["id"] for c in likely],
                               *evidence)
    return _create_row(ctx, side, rec, proposals, parents, new_parents)


def _decided_row(ctx: _Ctx, side: str, rec: dict, decision: str, parents: dict[str, str],
                 new_parents: set[str]) -> dict:
    """A queued record a person decided about: left out, or created as a separate record."""
    if decision == "skip":
        return _row(rec, action="skip", target=OTHER[side], reason=(
            "left out by decision (`crmbooks duplicates skip`)"))
    return _create_row(ctx, side, rec, [], parents, new_parents, action="clone", reason=(
        "created as a separate record by decision (`crmbooks duplicates separate`)"))


def _review_row(ctx: _Ctx, side: str, rec: dict, how: str, candidates: list[str],
                *evidence: str) -> dict:
    """Neither create nor link: queue the record with its candidates and the evidence."""
    other_side = "Books" if side == "crm" else "CRM"
    # One entry per pair: the candidates are not planned again from their own side.
    ctx.claimed |= {(OTHER[side], c) for c in candidates}
    named = [{"id": c, "name": ctx.names.get(c)} for c in candidates]
    listed = ", ".join(f"{c['id']} {c['name']!r}" if c["name"] else c["id"] for c in named)
    return _row(rec, action="skip", target=OTHER[side], match=how, proposals=candidates,
                review={"side": side, "record_id": _own_id(side, rec), "candidates": named,
                        "evidence": list(evidence)},
                reason=f"possible duplicate of {other_side} {listed} ({', '.join(evidence)}): "
                "waits for review (`crmbooks duplicates`)")


def _recovered_row(ctx: _Ctx, side: str, rec: dict, other_id: str,
                   parents: dict[str, str]) -> dict:
    """Link a copy we made to its original, which was not read this run (unchanged since the
    cursor, or our own echo): the copy's values, as the create had stored them, are the base
    of both sides; nothing is written. Writing the copy back over the original would change
    the original wherever the mapping is not one-to-one."""
    converted = {k: canon(v) for k, v in (rec.get("converted") or {}).items()}
    merged = _combine(rec, {f"{OTHER[side]}_id": other_id})
    if side == "crm":
        values = {"crm_values": rec["crm_values"],
                  "books_values": {p.books: converted.get(p.books) for p in ctx.section.fields}}
        if merged.get("parent_crm_id") and not merged.get("parent_books_id"):
            merged["parent_books_id"] = parents.get(merged["parent_crm_id"])
    else:
        values = {"books_values": rec["books_values"],
                  "crm_values": {f: converted.get(f) for p in ctx.section.fields
                                 for f in p.crm_fields}}
        if merged.get("parent_books_id") and not merged.get("parent_crm_id"):
            merged["parent_crm_id"] = parents.get(merged["parent_books_id"])
    ctx.claimed |= {("crm", merged["crm_id"]), ("books", merged["books_id"])}
    return _row(merged, action="nothing", target="none", match="ref", **values,
                reason="matched by the stored id (link recovered); nothing to change")


def _pair_row(ctx: _Ctx, side: str, rec: dict, other_id: str, other: dict | None, how: str,
              source: str, action: str | None = None) -> dict:
    """First pairing of two records (no base): ``source`` wins every differing field."""
    crm_rec, books_rec = (rec, other) if side == "crm" else (other, rec)
    merged = _combine(rec, other, {f"{OTHER[side]}_id": other_id})
    sides = Sides(None, None, (crm_rec or {}).get("crm_values") or {},
                  (books_rec or {}).get("books_values") or {})
    ctx.claimed |= {("crm", merged["crm_id"]), ("books", merged["books_id"])}
    try:
        result = merge_record(ctx.section, ctx.mapping, sides, source=source,
                              winner=ctx.spec.conflict_winner(ctx.scope), write_crm=ctx.two_way)
    except ConversionError as exc:
        return _row(merged, action="fail", target="none", match=how, reason=exc.message,
                    error=_error(exc))
    row = _result_row(ctx, merged, result, how,
                      action if (action and (result.to_books or result.to_crm)) else None)
    return _stamp_ids(ctx, row)


def _stamp_ids(ctx: _Ctx, row: dict) -> dict:
    """Make a write also store the other side's id in the unique field (exactly-once)."""
    if row["books_payload"] is not None and ctx.kind.books_resource != "contact_persons":
        path = f"custom_fields.{ctx.spec.books_crm_id_field}"
        row["books_payload"] = build_payload({path: row["crm_id"]}, base=row["books_payload"])
    if row["crm_payload"] is not None:
        row["crm_payload"] = {**row["crm_payload"], ctx.spec.crm_books_id_field: row["books_id"]}
    return row


def _duplicate_row(ctx: _Ctx, side: str, rec: dict, found: dict, other_by_id: dict) -> dict:
    """Apply the duplicates policy to a record whose name exists on the other side."""
    other_side = "Books" if side == "crm" else "CRM"
    candidates = found.get("candidates") or []
    named = f"{other_side} already has {len(candidates)} record(s) named {rec['name']!r}"
    policy = ctx.duplicates
    if policy == "review":
        return _review_row(ctx, side, rec, found["match"], candidates, EXACT_EVIDENCE)
    if policy == "clone":
        return _create_row(ctx, side, rec, [], {}, set(), action="clone",
                           reason=f"{named}; duplicates: clone keeps both")
    if policy == "skip":
        ctx.claimed |= {(OTHER[side], c) for c in candidates}
        return _row(rec, action="skip", target="none", match=found["match"],
                    proposals=candidates, reason=f"{named}; duplicates: skip keeps it")
    if found["match"] == "ambiguous" or found.get("other_linked"):
        why = "they cannot be told apart" if found["match"] == "ambiguous" else \
            "it is already linked to another record"
        return _row(rec, action="skip", target="none", match=found["match"],
                    proposals=candidates, reason=f"{named}; not overwritten because {why} "
                    "(link the right one manually, or rename)")
    winner = ctx.spec.overwrite_winner(ctx.scope)
    other_id = found["other_id"]
    if winner != side and other_id not in other_by_id:
        return _row(rec, action="skip", target="none", match="name", proposals=candidates,
                    reason=f"{named}; {other_side} wins overwrites but its record was not "
                    "fetched")
    row = _pair_row(ctx, side, rec, other_id, other_by_id.get(other_id), "name", winner,
                    action="overwrite")
    row["reason"] = f"{named}; duplicates: overwrite, {winner.upper()} data wins"
    return row


def _create_row(ctx: _Ctx, side: str, rec: dict, proposals: list[str],
                parents: dict[str, str], new_parents: set[str], action: str = "create",
                reason: str | None = None) -> dict:
    """Create the record on the other side (or clone it there)."""
    target = OTHER[side]
    converted = {k: canon(v) for k, v in (rec.get("converted") or {}).items()}
    if side == "crm":
        vals = {"crm_values": rec["crm_values"],
                "books_values": {p.books: converted.get(p.books) for p in ctx.section.fields},
                "books_payload": rec["payload"]}
    else:
        vals = {"books_values": rec["books_values"],
                "crm_values": {f: converted.get(f) for p in ctx.section.fields
                               for f in p.crm_fields},
                "crm_payload": rec["payload"]}
    if target == "books" and normalise_name(rec.get("name")) in ctx.taken:
        # Books display names are unique per contact type: a business customer cannot take
        # the name of an individual one (or the reverse). Writing would fail every run.
        return _row(rec, action="skip", target="none", match="name", reason=(
            f"Books already has another kind of record named {rec.get('name')!r} (names are "
            "unique per contact type there): rename one of them to sync this one"))
    if target == "books" and not ctx.kind.parent:
        name = normalise_name(rec.get("name"))
        first = ctx.creating.get(name) if name else None
        if first is not None and action == "create":
            # Two records of this run whose names differ only by case, spaces or Unicode
            # form: Books would take both (as two customers) or refuse the second on every
            # run. The first one takes the name; the policy decides about the others.
            why = f"same name as {first}, created in Books by this run"
            if ctx.duplicates == "review":
                return _review_row(ctx, side, rec, "name", [], why)
            if ctx.duplicates != "clone":
                return _row(rec, action="skip", target="none", match="name", reason=(
                    f"{why} (names are unique there); duplicates: {ctx.duplicates} keeps it "
                    "out (rename it, or link it by hand)"))
            action, reason = "clone", f"{why}; duplicates: clone keeps both"
        elif name:
            ctx.creating.setdefault(name, rec["record_key"])
    row = _row(rec, action=action, target=target, proposals=proposals, **vals,
               reason=reason or "no match on the other side")
    if action == "clone" and target == "books" and not ctx.kind.parent:
        _suffixed(ctx, row)
    if proposals:
        row["reason"] += f"; possible duplicate of {', '.join(proposals)} (review)"
    return _with_parent(ctx, side, row, parents, new_parents) if ctx.kind.parent else row


def _suffixed(ctx: _Ctx, row: dict) -> None:
    """Give a copy made in Books the clone suffix: Books refuses a second contact (or item)
    with the same name (code 3062), so a plain copy would fail on every run. The link keeps
    the suffixed name as Books' value, so the next run sees no change to send back."""
    field = ctx.kind.books_name_field
    name = (row["books_payload"] or {}).get(field)
    if not isinstance(name, str) or not name.strip():
        return
    used = {normalise_name(n) for n in ctx.names.values() if n} | set(ctx.creating)
    copy = next(c for c in _copy_names(name, ctx.clone_suffix)
                if normalise_name(c) not in used)
    ctx.creating[normalise_name(copy)] = row["record_key"]
    row["books_payload"] = {**row["books_payload"], field: copy}
    row["books_values"] = {**(row["books_values"] or {}), field: copy}
    row["reason"] += f"; named {copy!r} in Books, whose names must be unique"


def _copy_names(name: str, suffix: str):
    """Names for a copy: ``NAME (2)``, then ``NAME (3)`` … when those are taken too."""
    yield f"{name} {suffix}"
    for n in range(3, 1000):
        yield f"{name} {suffix.replace('2', str(n))}" if "2" in suffix else f"{name} {suffix} {n}"
    yield f"{name} {suffix} {uuid.uuid4().hex[:6]}"


def _with_parent(ctx: _Ctx, side: str, row: dict, parents: dict[str, str],
                 new_parents: set[str]) -> dict:
    """Resolve the parent of a contact person to create; inline when the parent is new too."""
    own_parent = row["parent_crm_id"] if side == "crm" else row["parent_books_id"]
    if own_parent in parents:
        other_parent = parents[own_parent]
        if side == "crm":
            row["parent_books_id"] = other_parent
        else:
            row["parent_crm_id"] = other_parent
            row["crm_payload"] = {**row["crm_payload"], "Account_Name": {"id": other_parent}}
        return row
    if own_parent in new_parents:
        row.update(inline=True, reason="created with its parent record in this run")
        return row
    row.update(action="skip", target="none",
               reason=f"its parent record {own_parent} is not synced (yet)")
    return row


# ------------------------------------------------------------------------------- public
def plan_kind(spec: ModuleSpec, kind: KindSpec, settings: Any, mapping: Mapping, *,
              crm: pd.DataFrame | None = None, books: pd.DataFrame | None = None,
              links: pd.DataFrame | None = None, crm_index: pd.DataFrame | None = None,
              books_index: pd.DataFrame | None = None, parents: dict[str, str] | None = None,
              new_parents: dict[str, set[str]] | None = None,
              failures: pd.DataFrame | None = None,
              taken: set[str] | None = None,
              decisions: dict[str, tuple[str, str | None]] | None = None,
              twins: pd.DataFrame | None = None) -> pd.DataFrame:
    """Plan one record kind: a DataFrame of PLAN_COLUMNS, one row per record.

    Args:
        crm / books: mapped frames of this kind (``to_books`` / ``to_crm`` output): the
            records fetched this run. In scope "fetch" Books rows only serve as current
            values of linked records; nothing is planned towards CRM.
        links: ``Store.links(module)`` (the kind column selects this kind's links).
        crm_index / books_index: every record on that side (``index_records``), for
            duplicates by name; default: the fetched frames.
        parents: {CRM parent id: Books parent id} (contact persons only).
        new_parents: {"crm": CRM ids, "books": Books ids} of parents created this run.
        failures: mapping failures (``to_books``/``to_crm``), added as ``fail`` rows.
        taken: normalised Books names held by records of *another* kind with the same
            uniqueness scope (e.g. individual customers, for accounts): such a record is
            skipped with a reason instead of failing on Books' duplicate-name error.
        decisions: {record key: (decision, other id)} taken on queued records
            (``Store.decisions``): ``skip`` leaves a record out, ``separate`` creates it as a
            copy (clone naming).
        twins: the Books records a CRM record may overwrite, read in full this run and
            mapped (``to_crm`` output): the values the overwrite compares against and
            records as replaced (a listed summary lacks most fields). Never planned
            themselves.
    """
    ctx = _Ctx(spec, kind, settings, mapping, links)
    ctx.taken = set(taken or ())
    ctx.decisions = dict(decisions or {})
    crm_recs, books_recs = clean_records(crm), clean_records(books)
    rows = _plan_linked(ctx, crm_recs, books_recs)
    indexes = {"crm": crm_index if crm_index is not None else index_of(crm),
               "books": books_index if books_index is not None else index_of(books)}
    parents = parents or {}
    oriented = {"crm": parents, "books": {b: c for c, b in parents.items()}}
    new_parents = new_parents or {}
    order = [spec.first_side, OTHER[spec.first_side]] if ctx.two_way else ["crm"]
    for side in order:
        recs, other = (crm_recs, books_recs) if side == "crm" else (books_recs, crm_recs)
        if side == "crm" and twins is not None and not twins.empty:
            full = clean_records(twins)  # read in full: they replace the listed summaries
            ids = {r["books_id"] for r in full}
            other = [r for r in other if r["books_id"] not in ids] + full
        rows += _plan_unlinked(ctx, side, recs, other, indexes[OTHER[side]], oriented[side],
                               set(new_parents.get(side, ())))
    rows += _fail_rows(failures, kind)
    return pd.DataFrame(rows, columns=PLAN_COLUMNS, dtype=object)


def _fail_rows(failures: pd.DataFrame | None, kind: KindSpec) -> list[dict]:
    """Mapping failures as ``fail`` plan rows (so a dry run shows them too)."""
    rows = []
    for f in clean_records(failures):
        if f.get("kind") not in (kind.name, None):
            continue
        hint = f" ({f['hint']})" if f.get("hint") else ""
        error = {k: f.get(k) for k in ("code", "field", "message", "hint", "payload")}
        rows.append(_row({**f, "source": OTHER[f["side"]]}, action="fail", target=f["side"],
                         reason=f"{f.get('message')}{hint}", error=error))
    return rows


def _error(exc: ConversionError) -> dict[str, Any]:
    """The ``error`` column of a fail row: what the failures table shows of it."""
    return {"code": exc.code, "field": None, "message": exc.message, "hint": exc.hint}


def plan_module(spec: ModuleSpec, settings: Any, mapping: Mapping, *,
                crm: dict[str, pd.DataFrame], books: dict[str, pd.DataFrame],
                links: pd.DataFrame | None = None,
                crm_index: dict[str, pd.DataFrame] | None = None,
                books_index: dict[str, pd.DataFrame] | None = None,
                failures: pd.DataFrame | None = None,
                taken: dict[str, set[str]] | None = None,
                decisions: dict[str, tuple[str, str | None]] | None = None,
                kept_out: list[dict] | None = None,
                twins: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Plan every active kind of a module (parents before children); frames keyed by kind.

    Contact persons created together with a new parent are put inline into the parent's
    Books create payload (``contact_persons``) and keep ``inline=True`` on their own row.
    ``kept_out``: skip rows of fetched records the settings keep out (``kept_out_rows``),
    added as they are so that the run counts them with their reason.
    """
    parts: list[pd.DataFrame] = []
    for kind in spec.active_kinds(settings):
        parents, new_parents = _parents(kind, links, parts)
        parts.append(plan_kind(
            spec, kind, settings, mapping, crm=crm.get(kind.name), books=books.get(kind.name),
            links=links, crm_index=(crm_index or {}).get(kind.name),
            books_index=(books_index or {}).get(kind.name), parents=parents,
            new_parents=new_parents, failures=failures, taken=(taken or {}).get(kind.name),
            decisions=decisions, twins=(twins or {}).get(kind.name)))
    if kept_out:
        parts.append(pd.DataFrame([{**_row(r), **{k: r[k] for k in (
            "action", "target", "reason")}} for r in kept_out], columns=PLAN_COLUMNS,
            dtype=object))
    plan = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=PLAN_COLUMNS)
    return _inline_children(plan.astype(object))


def kept_out_rows(spec: ModuleSpec, settings: Any, *, crm: pd.DataFrame | None = None,
                  books: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Skip rows (with their reason) for fetched records the settings keep out: CRM contacts
    the CRM module setting does not take (``crm``, raw CRM Contacts) and Books customers with
    no active kind (``books``, raw Books contacts). Without them a record the settings leave
    out would be ignored without a word.
    """
    if spec.name != "customers":
        return []
    rows = []
    contacts = spec.kind("contacts")
    reason = kept_out_reason("crm", settings)
    for rec in clean_records(crm):
        crm_id = as_id(rec.get("id"))
        if crm_id:
            rows.append({"record_key": crm_key("Contacts", crm_id), "kind": "contacts",
                         "source": "crm", "crm_id": crm_id, "name": contacts.crm_name(rec),
                         "action": "skip", "target": "books", "reason": reason})
    reason = kept_out_reason("books", settings)
    for rec in clean_records(books):
        books_id = as_id(rec.get("contact_id"))
        if not books_id or rec.get("contact_type") not in (None, "customer"):
            continue  # another module's contact (the fetch filters them out anyway)
        kind = next(k for k in spec.kinds if k.books_resource == "contacts" and k.owns_books(rec))
        rows.append({"record_key": books_key("contacts", books_id), "kind": kind.name,
                     "source": "books", "books_id": books_id, "name": kind.books_name(rec),
                     "action": "skip", "target": "crm", "reason": reason})
    return rows


def _parents(kind: KindSpec, links: pd.DataFrame | None,
             parts: list[pd.DataFrame]) -> tuple[dict[str, str], dict[str, set[str]]]:
    """For a child kind: {CRM parent id: Books parent id} and the parents created this run."""
    if not kind.parent:
        return {}, {}
    parents = {r["crm_id"]: r["books_id"] for r in clean_records(links)
               if r.get("kind") in (kind.parent, "", None)}
    new: dict[str, set[str]] = {"crm": set(), "books": set()}
    for part in parts:
        for r in clean_records(part[part["kind"] == kind.parent]):
            if r.get("crm_id") and r.get("books_id"):
                parents[r["crm_id"]] = r["books_id"]
            elif r["action"] in ("create", "clone"):
                new[r["source"]].add(r["crm_id"] if r["source"] == "crm" else r["books_id"])
    return parents, new


def _inline_children(plan: pd.DataFrame) -> pd.DataFrame:
    """Copy inline children's Books payloads into their new parent's create payload."""
    inline = plan[(plan["inline"] == True) & (plan["target"] == "books")]  # noqa: E712
    if inline.empty:
        return plan
    out = plan.copy()
    # The new parents' rows by CRM id, found once: comparing the whole crm_id column for each
    # parent would be quadratic (20+ minutes for 50,000 customers with 100,000 persons).
    creates = out[(out["target"] == "books") & out["action"].isin(["create", "clone"])]
    rows_of: dict[Any, list] = {}
    for i, crm_id in zip(creates.index, creates["crm_id"], strict=True):
        rows_of.setdefault(crm_id, []).append(i)
    for parent_id, group in inline.groupby("parent_crm_id"):
        for i in rows_of.get(parent_id, []):
            payload = dict(out.at[i, "books_payload"])
            payload["contact_persons"] = [*payload.get("contact_persons", []),
                                          *group["books_payload"].tolist()]
            out.at[i, "books_payload"] = payload
    return out


def link_fields(spec: ModuleSpec, row: dict[str, Any], *, crm_id: str | None = None,
                books_id: str | None = None, made_by: str = "sync",
                books_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``Store.upsert_link`` arguments for a plan row once its writes succeeded.

    Pass the id the remote side returned for a create (``books_id`` or ``crm_id``), and
    ``books_values`` read from the record Books answered with (what it really holds now).
    """
    kind = spec.kind(row["kind"])
    return {"crm_id": crm_id or row["crm_id"], "books_id": books_id or row["books_id"],
            "kind": kind.name, "crm_module": kind.crm_module,
            "parent_crm_id": row.get("parent_crm_id"),
            "parent_books_id": row.get("parent_books_id"),
            "crm_values": row.get("crm_values") or {},
            "books_values": books_values or row.get("books_values") or {}, "made_by": made_by}


def plan_counts(plan: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Counts per side as ``crmbooks sync --json`` prints them (what the plan would do)."""
    return counts(plan, [], dry_run=True)


def plan_events(plan: pd.DataFrame) -> list[dict[str, Any]]:
    """Record events (for ``Store.add_events``) of a plan, one per record and written side:
    what a dry run records. ``nothing`` rows make no event."""
    return planned_events(plan)
