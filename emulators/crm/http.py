"""Request helpers shared by the CRM routes under /crm/{version}/ (v2 … v8): versions,
modules and scopes, query parameters, bodies and the status of a write answer.

Every handler authorises first, holds `emu.lock` around state and raises `ApiError` with
Zoho's envelope for anything wrong; nothing may escape as a 500.
"""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime

from fastapi import Request

from emulators.common.envelopes import ApiError, crm_error
from emulators.crm.criteria import to_utc_iso
from emulators.crm.store import iso
from emulators.crm.versions import known

MAX_WRITE = 100
MAX_FIELDS = 50
SEARCH_LIMIT = 2000
WRONG_FORMAT = "either the request body or parameters is in wrong format"


# ------------------------------------------------------------------------- request helpers


def check_version(version: str) -> None:
    """Unknown API versions are unknown URLs."""
    if not known(version):
        raise crm_error("INVALID_URL_PATTERN",
                        "Please check if the URL trying to access is a correct one", status=404)


def resolve_module(crm, name: str) -> str:
    """Canonical module API name (matched case-insensitively) or INVALID_MODULE."""
    module = crm.catalogue.resolve(name)
    if module is None:
        raise crm_error("INVALID_MODULE", "the module name given seems to be invalid",
                        {"resource_path_index": 0})
    return module


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
    """The `fields` parameter: at most 50 known API names; without it, every active field,
    unless `required` (a v8 list call, see emulators.crm.versions)."""
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
            # Details beyond param_name are our choice (unverified): they name the field.
            raise crm_error("INVALID_DATA", "invalid data",
                            {"param_name": "fields", "api_name": name})
    return names


async def read_body(request: Request) -> dict:
    """The JSON body as an object; otherwise INVALID_DATA with the message Zoho's examples
    use for a body or parameters it cannot parse (the "unable to parse data type" 400 example
    of deleteRecords in Zoho's CRM OpenAPI file). Whether Zoho wraps it in `data` for a body
    is unverified."""
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
        # The shape of the "limit exceeded" 400 example of updateRecord in Zoho's OpenAPI file.
        raise ApiError(400, {"data": [{
            "code": "LIMIT_EXCEEDED", "details": {"maximum_length": MAX_WRITE, "api_name": "data"},
            "message": "count of records in your request exceeds the limit", "status": "error"}]})
    return data


def write_status(results: list[dict], ok_status: int) -> int:
    """201/200 all ok, 207 mixed, 400 all failed, as the CRM answers batch writes."""
    ok = sum(1 for r in results if r["status"] == "success")
    if ok == len(results):
        return ok_status
    return 400 if ok == 0 else 207
