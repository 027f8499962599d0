"""Search (`GET /{module}/search`) and COQL execution for the CRM emulator."""

from __future__ import annotations

import re
import time
from decimal import Decimal

from fastapi import Request

from emulators.common.envelopes import crm_error, empty_response, json_response
from emulators.crm.coql import Bool, CoqlError, Query, like_regex, parse
from emulators.crm.criteria import CriteriaError, compile_tree, record_values, to_utc_iso
from emulators.crm.criteria import parse as parse_criteria
from emulators.crm.fields import TEXT_TYPES, Field
from emulators.crm.http import SEARCH_LIMIT, field_list, int_param
from emulators.crm.listing import sort_params, view_predicate
from emulators.crm.metadata import field_meta
from emulators.crm.versions import LATEST

# ------------------------------------------------------------------------------- search


def _matcher(crm, module: str, request: Request):
    """The predicate of the highest-priority search parameter (criteria > email > phone > word)."""
    params = request.query_params
    fmap = crm.field_map(module)
    if params.get("criteria") is not None:
        try:
            tree = parse_criteria(crm.catalogue.field_map[module], params["criteria"])
        except CriteriaError as exc:
            raise crm_error(exc.code, exc.message, exc.details) from None
        return compile_tree(tree, record_values(crm, module))
    if params.get("email") is not None:
        wanted = params["email"].strip().lower()
        names = [n for n, f in fmap.items() if f.data_type == "email"]
        return lambda rec: any(wanted in (rec.get(n) or "").lower() for n in names)
    if params.get("phone") is not None:
        digits = re.sub(r"\D", "", params["phone"])
        if len(params["phone"].strip()) < 3 or not digits:
            raise crm_error("INVALID_DATA", "invalid data", {"param_name": "phone"})
        names = [n for n, f in fmap.items() if f.data_type == "phone"]
        return lambda rec: any(digits in re.sub(r"\D", "", rec.get(n) or "") for n in names)
    if params.get("word") is not None:
        word = params["word"].strip().lower()
        if len(word) < 2:
            raise crm_error("INVALID_DATA", "invalid data", {"param_name": "word"})
        names = [n for n, f in fmap.items() if f.data_type in TEXT_TYPES]
        return lambda rec: any(word in (rec.get(n) or "").lower() for n in names)
    raise crm_error("EXPECTED_PARAM_MISSING", "One of the expected parameter is missing",
                    {"param_names": ["criteria", "email", "phone", "word"]})


def search(crm, module: str, request: Request):
    """GET /{module}/search: at most 2000 results reachable, 204 when none, and records
    written in the last `search_lag_s` seconds not yet indexed (an injected fault)."""
    match = _matcher(crm, module, request)
    fields = field_list(crm, module, request.query_params.get("fields"), required=False)
    sort_by, sort_order = sort_params(request, None)
    if sort_by != "id" and sort_by not in crm.field_map(module):
        raise crm_error("INVALID_DATA", "invalid data", {"param_name": "sort_by"})
    pred = view_predicate(crm, module, request.query_params.get("cvid"))
    page = int_param(request, "page", 1, 1, None)
    per_page = int_param(request, "per_page", 200, 1, 200)
    if page * per_page > SEARCH_LIMIT:
        raise crm_error("LIMIT_REACHED", "maximum response iteration limit reached",
                        {"limit": str(SEARCH_LIMIT)})
    store = crm.stores[module]
    lag = crm.emu.faults.search_lag_s
    horizon = time.monotonic() - lag
    hits = [rec for rec in store.records.values()
            if (not lag or store.written.get(rec["id"], 0) <= horizon)
            and (pred is None or pred(rec)) and match(rec)]
    if sort_by != "id":
        hits.sort(key=lambda r: (r.get(sort_by) is None, _sort_key(r.get(sort_by))))
    if sort_order == "desc":
        hits.reverse()
    window = hits[(page - 1) * per_page: page * per_page]
    if not window:
        return empty_response(204)
    data = [crm.renderer.record(module, rec, fields) for rec in window]
    return json_response({"data": data, "info": {
        "per_page": per_page, "count": len(data), "page": page, "sort_by": sort_by,
        "sort_order": sort_order, "more_records": page * per_page < len(hits)}})


def _sort_key(value):
    if isinstance(value, int | float):
        return (0, value, "")
    return (1, 0, str(value).lower() if value is not None else "")


# ------------------------------------------------------------------------------- COQL


class _Columns:
    """Resolves COQL column names (plain or `Lookup.field`) against the field metadata."""

    OWNER_ATTRS = {"id": "id", "email": "email", "full_name": "full_name", "name": "full_name",
                   "first_name": "first_name", "last_name": "last_name"}

    def __init__(self, crm, module: str):
        self.crm, self.module = crm, module
        self.fmap = crm.field_map(module)

    def field(self, col: str, clause: str) -> Field | None:
        """The base field of a column (None for `id`); INVALID_QUERY when unknown."""
        base, _, sub = col.partition(".")
        if base == "id" and not sub:
            return None
        f = self.fmap.get(base)
        ok = f is not None and f.data_type != "subform"
        if ok and sub:
            if f.data_type == "lookup":
                ok = sub == "id" or sub in self.crm.field_map(f.lookup_module)
            elif f.data_type == "ownerlookup":
                ok = sub in self.OWNER_ATTRS
            else:
                ok = False
        if not ok:
            raise CoqlError("INVALID_QUERY", "column given seems to be invalid",
                            {"column_name": col, "clause": clause})
        return f

    def value(self, rec: dict, col: str):
        """The raw value of a column on a record (lookups: id, or the sub-field)."""
        base, _, sub = col.partition(".")
        if base == "id" and not sub:
            return rec["id"]
        raw = rec.get(base)
        if not sub or raw is None:
            return raw
        f = self.fmap[base]
        if sub == "id":
            return raw
        if f.data_type == "ownerlookup":
            user = self.crm.directory.users.get(raw, {})
            return user.get(self.OWNER_ATTRS[sub])
        target = self.crm.stores[f.lookup_module].records.get(raw)
        return None if target is None else target.get(sub)

    def sub_field(self, col: str) -> Field | None:
        """Metadata of the column's final field (for typing comparisons)."""
        base, _, sub = col.partition(".")
        f = self.field(col, "where")
        if f is None or not sub:
            return f
        if sub == "id" or f.data_type == "ownerlookup":
            return None
        return self.crm.field_map(f.lookup_module)[sub]

    def render(self, rec: dict, col: str):
        """A column as COQL returns it: lookups as {"id"}, other values as stored."""
        value = self.value(rec, col)
        f = None if "." in col else self.fmap.get(col)
        if value is not None and f is not None and f.data_type in ("lookup", "ownerlookup"):
            return {"id": value}
        return value


def _prepare(cols: _Columns, node) -> None:
    """Resolve each comparison's field and coerce its literals once, not once per record."""
    if isinstance(node, Bool):
        for n in node.items:
            _prepare(cols, n)
        return
    node.meta = cols.sub_field(node.column)
    if node.op not in ("is null", "is not null"):
        node.coerced = [_coerce(node.meta, v, node) for v in node.values]


def _compile(cols: _Columns, node):
    """A record predicate for a prepared WHERE tree; plain text/picklist comparisons become
    direct closures, everything else goes through `_compare`."""
    if isinstance(node, Bool):
        subs = [_compile(cols, n) for n in node.items]
        if node.op == "and":
            return lambda rec: all(s(rec) for s in subs)
        return lambda rec: any(s(rec) for s in subs)
    f = node.meta
    plain = "." not in node.column and f is not None
    if plain and (f.data_type in TEXT_TYPES or f.data_type == "picklist"):
        name, op = node.column, node.op

        def low(rec: dict):
            value = rec.get(name)
            return value.lower() if isinstance(value, str) and value != "" else None

        if op == "=":
            w = node.coerced[0]
            return lambda rec: low(rec) == w
        if op == "in":
            ws = set(node.coerced)
            return lambda rec: low(rec) in ws
        if op in ("like", "not like"):
            rx = like_regex(str(node.values[0]))
            hit = op == "like"
            return lambda rec: ((v := low(rec)) is not None and bool(rx.match(v))) == hit
    return lambda rec: _compare(cols, node, rec)


def _compare(cols: _Columns, node, rec: dict) -> bool:
    if isinstance(node, Bool):
        results = (_compare(cols, n, rec) for n in node.items)
        return all(results) if node.op == "and" else any(results)
    actual = cols.value(rec, node.column)
    f = node.meta
    op = node.op
    if op in ("is null", "is not null"):
        empty = actual is None or actual == ""
        return empty if op == "is null" else not empty
    values = node.coerced
    actual = _coerce(f, actual, node) if actual is not None else None
    if op in ("like", "not like"):
        hit = actual is not None and bool(like_regex(str(node.values[0])).match(str(actual)))
        return hit if op == "like" else not hit
    if op in ("in", "not in"):
        hit = actual is not None and actual in values
        return hit if op == "in" else not hit
    if op == "!=":
        return actual is None or actual != values[0]
    if actual is None:
        return False
    if op == "between":
        return values[0] <= actual <= values[1]
    return {"=": actual == values[0], ">": actual > values[0], "<": actual < values[0],
            ">=": actual >= values[0], "<=": actual <= values[0]}[op]


def _coerce(f: Field | None, value, node):
    """Bring a stored or literal value into a comparable form for the column's type."""
    dt = f.data_type if f is not None else "id"
    try:
        if dt in ("integer", "currency", "double"):
            if isinstance(value, bool):
                raise ValueError
            return Decimal(str(value))
        if dt == "datetime":
            return to_utc_iso(str(value))
        if dt == "boolean":
            if not isinstance(value, bool):
                raise ValueError
            return value
    except (ValueError, ArithmeticError):
        raise CoqlError("INVALID_QUERY", "invalid value given for the column",
                        {"column_name": node.column, "operator": node.op,
                         "value": str(value), "reason": "value type mismatch"}) from None
    if isinstance(value, Decimal):
        return str(value)
    return str(value).lower() if dt in TEXT_TYPES or dt == "picklist" else str(value)


def _check_where(cols: _Columns, node) -> None:
    if node is None:
        return
    if isinstance(node, Bool):
        for n in node.items:
            _check_where(cols, n)
        return
    f = cols.sub_field(node.column)
    dt = f.data_type if f is not None else "id"
    if node.op in ("like", "not like") and dt not in TEXT_TYPES | {"picklist"}:
        raise CoqlError("INVALID_QUERY", "invalid operator found",
                        {"column_name": node.column, "operator": node.op,
                         "reason": "operator not supported for the column"})
    if node.op in (">", "<", ">=", "<=", "between") and dt in TEXT_TYPES | {
            "picklist", "boolean", "lookup", "ownerlookup"}:
        raise CoqlError("INVALID_QUERY", "invalid operator found",
                        {"column_name": node.column, "operator": node.op,
                         "reason": "operator not supported for the column"})


def _module_of(crm, name: str) -> str:
    module = crm.catalogue.resolve(name)
    if module is None:
        raise CoqlError("INVALID_QUERY", "invalid module given", {"module": name})
    return module


def run_coql(crm, request: Request, body: dict):
    """POST /coql: COQL needs the coql scope and the module's READ scope. The caller holds
    the lock and maps CoqlError to the envelope."""
    q: Query = parse(body.get("select_query"))
    module = _module_of(crm, q.module)
    crm.emu.authorize(request, "crm", crm.catalogue.scope(module, "READ"))
    cols = _Columns(crm, module)
    for col in q.columns:
        cols.field(col, "select")
    for col, _ in q.order:
        cols.field(col, "order by")
    _check_where(cols, q.where)
    recs = list(crm.stores[module].records.values())  # id ascending = default order
    if q.where is not None:
        _prepare(cols, q.where)
        keep = _compile(cols, q.where)
        recs = [r for r in recs if keep(r)]
    for col, desc in reversed(q.order):
        present = [r for r in recs if cols.value(r, col) is not None]
        absent = [r for r in recs if cols.value(r, col) is None]
        present.sort(key=lambda r, c=col: _sort_key(cols.value(r, c)), reverse=desc)
        recs = absent + present if not desc else present + absent
    window = recs[q.offset:q.offset + q.limit]
    if not window:
        return empty_response(204)
    data = []
    for rec in window:
        row = {col: cols.render(rec, col) for col in q.columns}
        row["id"] = rec["id"]
        data.append(row)
    out = {"data": data, "info": {"count": len(data),
                                  "more_records": q.offset + q.limit < len(recs)}}
    if body.get("include_meta") == ["fields"]:
        fmap = crm.catalogue.field_map[module]
        version = request.path_params.get("version", LATEST)
        out["fields"] = {col: field_meta(crm.catalogue, module, fmap[col], version)
                         for col in q.columns if col in fmap}
    return json_response(out)
