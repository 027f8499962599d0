"""HTTP routes of the CRM emulator under /crm/{version}/ (v2 … v8), ref §3.

Every handler authorises first, holds `emu.lock` around state and raises `ApiError` with
Zoho's envelope for anything wrong; nothing may escape as a 500.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime

from fastapi import APIRouter, Request

from emulators.core import ApiError, crm_error, empty_response, json_response
from emulators.crm_criteria import to_utc_iso
from emulators.crm_fields import MODULES, NAME_FIELD
from emulators.crm_store import iso

VERSIONS = {"v2", "v2.1", "v3", "v4", "v5", "v6", "v7", "v8"}
MAX_WRITE = 100
MAX_FIELDS = 50
DISCRETE_LIMIT = 2000
TOKEN_LIMIT = 100_000
SEARCH_LIMIT = 2000
MAX_TOKENS = 20_000
_TOKEN_TTL = timedelta(days=1)  # [U] observed page-token expiries are about a day
WRONG_FORMAT = "either the request body or parameters is in wrong format"
SORT_BY = ["id", "Created_Time", "Modified_Time"]


# ------------------------------------------------------------------------- request helpers


def check_version(version: str) -> None:
    """Unknown API versions are unknown URLs."""
    if version not in VERSIONS:
        raise crm_error("INVALID_URL_PATTERN",
                        "Please check if the URL trying to access is a correct one", status=404)


def resolve_module(name: str) -> str:
    """Canonical module API name (matched case-insensitively) or INVALID_MODULE."""
    for module in MODULES:
        if module.lower() == name.lower():
            return module
    raise crm_error("INVALID_MODULE", "the module name given seems to be invalid",
                    {"resource_path_index": 0})


def scope(module: str, op: str) -> str:
    """The OAuth scope of a module operation, e.g. ZohoCRM.modules.salesorders.READ."""
    return f"ZohoCRM.modules.{MODULES[module][2]}.{op}"


def int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    """An integer query parameter within bounds, else INVALID_DATA naming the parameter."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise crm_error("INVALID_DATA", "invalid data", {"param_name": name,
                                                         "expected_data_type": "integer"}) from None
    if value < low or (high is not None and value > high):
        details = {"param_name": name}
        if high is not None:
            details["maximum_value"] = high
        raise crm_error("INVALID_DATA", "invalid data", details)
    return value


def if_modified_since(request: Request) -> str | None:
    """The If-Modified-Since header as a stored-form UTC ISO string (ISO-8601 or HTTP date)."""
    raw = request.headers.get("if-modified-since")
    if not raw:
        return None
    try:
        return to_utc_iso(raw.strip())
    except ValueError:
        pass
    try:
        return iso(parsedate_to_datetime(raw))
    except (TypeError, ValueError):
        raise crm_error("INVALID_DATA", "invalid data",
                        {"param_name": "If-Modified-Since"}) from None


def field_list(crm, module: str, raw: str | None, required: bool) -> list[str] | None:
    """The `fields` parameter: required on list (ref §3.2), ≤50, known API names only."""
    names = [n.strip() for n in (raw or "").split(",") if n.strip()]
    if not names:
        if required:
            raise crm_error("REQUIRED_PARAM_MISSING", "required param is missing",
                            {"param_name": "fields"})
        return [f.api_name for f in crm.active_fields(module)]
    if len(names) > MAX_FIELDS:
        raise crm_error("LIMIT_EXCEEDED", "limit exceeded",
                        {"limit": MAX_FIELDS, "param_name": "fields"})
    known = crm.field_map(module)
    for name in names:
        if name != "id" and name not in known:
            # [U] details beyond param_name are our choice: they name the offending field.
            raise crm_error("INVALID_DATA", "invalid data",
                            {"param_name": "fields", "api_name": name})
    return names


async def read_body(request: Request) -> dict:
    """The JSON body as an object; otherwise INVALID_DATA with the message Zoho's examples
    use for a body or parameters it cannot parse (crm-oas deleteRecords
    response-400-unabletoparsedatatype). [U] whether it is wrapped in `data` for a body."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise crm_error("INVALID_DATA", WRONG_FORMAT, {})
    return body


def data_items(body: dict) -> list:
    """`data` of a write body: a non-empty array of at most 100 records."""
    data = body.get("data")
    if data is None or data == []:
        raise crm_error("MANDATORY_NOT_FOUND", "required field not found",
                        {"api_name": "data", "json_path": "$.data"})
    if not isinstance(data, list):
        raise crm_error("INVALID_DATA", "invalid data",
                        {"api_name": "data", "json_path": "$.data",
                         "expected_data_type": "jsonarray"})
    if len(data) > MAX_WRITE:
        # Shape from the OAS example (updateRecord response-400-limitexceedederror).
        raise ApiError(400, {"data": [{
            "code": "LIMIT_EXCEEDED", "details": {"maximum_length": MAX_WRITE, "api_name": "data"},
            "message": "count of records in your request exceeds the limit", "status": "error"}]})
    return data


def write_status(results: list[dict], ok_status: int) -> int:
    """201/200 all ok, 207 mixed, 400 all failed (ref §3.4)."""
    ok = sum(1 for r in results if r["status"] == "success")
    if ok == len(results):
        return ok_status
    return 400 if ok == 0 else 207


def criteria_getter(crm, module: str):
    """Comparable values for criteria evaluation (see crm_criteria.evaluate)."""

    def get(rec: dict, f):
        raw = rec.get(f.api_name)
        if raw is None:
            return None
        dt = f.data_type
        if dt == "lookup":
            target = crm.stores[f.lookup_module].records.get(raw)
            name = target.get(NAME_FIELD[f.lookup_module]) if target else None
            return raw, (name or "").lower()
        if dt == "ownerlookup":
            user = crm.directory.users.get(raw, {})
            return raw, user.get("full_name", "").lower()
        if dt in ("integer", "currency", "double"):
            return Decimal(str(raw))
        if isinstance(raw, str):
            return raw.lower() if dt not in ("date", "datetime") else raw
        return raw

    return get


# ------------------------------------------------------------------------- listing


def sorted_ids(crm, module: str, sort_by: str, desc: bool, since: str | None) -> list[str]:
    """Record ids in the requested order, optionally only those modified at/after `since`."""
    store = crm.stores[module]
    if sort_by == "Modified_Time":
        ids = store.modified_since(since) if since else [i for _, i in store.by_modified]
    else:
        ids = list(store.records)  # insertion order == id order == creation order
        if since:
            recs = store.records
            ids = [i for i in ids if recs[i]["Modified_Time"] >= since]
    if desc:
        ids.reverse()
    return ids


def view_predicate(crm, module: str, cvid: str | None):
    """The record filter of `cvid`, or INVALID_DATA {"param_name":"cvid"}."""
    if cvid is None:
        return None
    from emulators.crm_views import find, record_filter

    view = find(crm, module, cvid)
    if view is None:
        raise crm_error("INVALID_DATA", "invalid data", {"param_name": "cvid"})
    return record_filter(crm, module, view)


def sort_params(request: Request, allowed: list[str] | None) -> tuple[str, str]:
    """sort_by / sort_order with Zoho's defaults (id, desc)."""
    sort_by = request.query_params.get("sort_by") or "id"
    sort_order = request.query_params.get("sort_order") or "desc"
    if allowed is not None and sort_by not in allowed:
        raise crm_error("INVALID_DATA", "invalid data",
                        {"param_name": "sort_by", "supported_values": allowed})
    if sort_order not in ("asc", "desc"):
        raise crm_error("INVALID_DATA", "invalid data",
                        {"param_name": "sort_order", "supported_values": ["asc", "desc"]})
    return sort_by, sort_order


def _token_signature(module: str, request: Request, since: str | None) -> str:
    params = sorted((k, v) for k, v in request.query_params.multi_items()
                    if k not in ("page_token", "page"))
    return json.dumps([module, params, since])


def _new_token(crm, signature: str, offset: int) -> tuple[str, str]:
    """An opaque token bound to the query; the oldest are forgotten beyond MAX_TOKENS so a
    long benchmark cannot grow memory without bound."""
    token = secrets.token_hex(24)
    expiry = crm.emu.now() + _TOKEN_TTL
    tokens = crm.page_tokens
    tokens[token] = {"sig": signature, "offset": offset, "expiry": expiry}
    while len(tokens) > MAX_TOKENS:
        del tokens[next(iter(tokens))]
    return token, iso(expiry)


def page_window(crm, module: str, request: Request, since: str | None) -> tuple[int, int, bool]:
    """(offset, per_page, via_token) from page/per_page or page_token (ref §3.2)."""
    per_page = int_param(request, "per_page", 200, 1, 200)
    token = request.query_params.get("page_token")
    if token:
        entry = crm.page_tokens.get(token)
        if entry is None or entry["sig"] != _token_signature(module, request, since):
            raise crm_error("TOKEN_BOUND_DATA_MISMATCH", "The page_token given seems to be "
                            "invalid or input param is added or altered or deleted",
                            {"param_name": "page_token"})
        if entry["expiry"] <= crm.emu.now():
            raise crm_error("EXPIRED_VALUE", "Page token expired",
                            {"api_name": "page_token", "json_path": "$.query.page_token"})
        if entry["offset"] >= TOKEN_LIMIT:
            raise crm_error("PAGINATION_LIMIT_EXCEEDED", "You can only get upto 100000 records "
                            "using page_token param", {"param_name": "page_token"})
        return entry["offset"], per_page, True
    page = int_param(request, "page", 1, 1, None)
    if page * per_page > DISCRETE_LIMIT:
        raise crm_error("DISCRETE_PAGINATION_LIMIT_EXCEEDED", "You can only get the first 2000 "
                        "records without using page_token param", {"limit": DISCRETE_LIMIT})
    return (page - 1) * per_page, per_page, False


def selected_ids(crm, module: str, request: Request, sort: tuple[str, str],
                 since: str | None, pred) -> list[str]:
    """Ids a list call selects (If-Modified-Since, `ids`, the view's `pred`), in order."""
    ids = sorted_ids(crm, module, sort[0], sort[1] == "desc", since)
    wanted = request.query_params.get("ids")
    if wanted:
        keep = {i.strip() for i in wanted.split(",")}
        ids = [i for i in ids if i in keep]
    if pred is not None:
        recs = crm.stores[module].records
        ids = [i for i in ids if pred(recs[i])]
    return ids


def list_records(crm, module: str, request: Request):
    """GET /{module}: the body (or 204/304) of a list call."""
    fields = field_list(crm, module, request.query_params.get("fields"), required=True)
    sort = sort_params(request, SORT_BY)
    since = if_modified_since(request)
    pred = view_predicate(crm, module, request.query_params.get("cvid"))
    offset, per_page, via_token = page_window(crm, module, request, since)
    ids = selected_ids(crm, module, request, sort, since, pred)
    if not ids:
        return empty_response(304 if since else 204)
    window = ids[offset:offset + per_page]
    if not window:
        return empty_response(204)
    recs = crm.stores[module].records
    data = [crm.renderer.record(module, recs[i], fields) for i in window]
    more = offset + per_page < len(ids)
    info = {"call": False, "per_page": per_page, "count": len(data), "sort_by": sort[0],
            "page": offset // per_page + 1, "sort_order": sort[1], "email": False,
            "more_records": more,
            **_tokens(crm, module, request, since, (offset, per_page, via_token), more)}
    return json_response({"data": data, "info": info})


def _tokens(crm, module: str, request: Request, since: str | None, window: tuple,
            more: bool) -> dict:
    """next/previous page tokens (bound to the query) and their expiry."""
    offset, per_page, via_token = window
    sig = _token_signature(module, request, since)
    out = {"next_page_token": None, "previous_page_token": None, "page_token_expiry": None}
    if more and offset + per_page < TOKEN_LIMIT:
        out["next_page_token"], out["page_token_expiry"] = _new_token(crm, sig,
                                                                      offset + per_page)
    if via_token and offset > 0:
        out["previous_page_token"], out["page_token_expiry"] = _new_token(
            crm, sig, max(0, offset - per_page))
    return out


def now_epoch_ms(crm) -> int:
    """server_time for notifications."""
    return int(crm.emu.now().timestamp() * 1000)


def build_router(crm) -> APIRouter:
    """All CRM routes. Specific paths are registered before `/{module}/{id}`."""
    from emulators.crm_routes_meta import add_meta_routes
    from emulators.crm_routes_records import add_record_routes

    router = APIRouter()
    add_meta_routes(router, crm)
    add_record_routes(router, crm)
    return router
