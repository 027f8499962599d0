"""Listing CRM records (`GET /{module}`): order, If-Modified-Since, custom views, page and
page-token windows, and the `info` block of the answer.

The CRM pages with page/per_page up to the first 2000 records and with opaque page tokens, bound
to the query, up to 100,000; a page token expires after about a day (observed, unverified).
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

from fastapi import Request

from emulators.common.envelopes import crm_error, empty_response, json_response
from emulators.crm.http import field_list, if_modified_since, int_param
from emulators.crm.store import iso
from emulators.crm.versions import LATEST, fields_required
from emulators.crm.views import find, record_filter

DISCRETE_LIMIT = 2000
TOKEN_LIMIT = 100_000
MAX_TOKENS = 20_000
_TOKEN_TTL = timedelta(days=1)
SORT_BY = ["id", "Created_Time", "Modified_Time"]


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
    """(offset, per_page, via_token) from page/per_page or page_token."""
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
    version = request.path_params.get("version", LATEST)
    fields = field_list(crm, module, request.query_params.get("fields"),
                        required=fields_required(version))
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
