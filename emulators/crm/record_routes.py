"""CRM record routes: list, get, create, update, upsert, delete, deleted list, search, count."""

from __future__ import annotations

from fastapi import APIRouter, Request

from emulators.common.envelopes import ApiError, crm_error, empty_response, json_response
from emulators.crm.criteria import to_utc_iso
from emulators.crm.http import (
    WRONG_FORMAT,
    check_version,
    data_items,
    field_list,
    if_modified_since,
    int_param,
    read_body,
    resolve_module,
    write_status,
)
from emulators.crm.listing import list_records, view_predicate
from emulators.crm.query import search as run_search
from emulators.crm.validate import ItemError

PREFIX = "/crm/{version}/{module}"
INVALID_ID = "the id given seems to be invalid"


def _id_error(rec_id, path: str | None = None) -> dict:
    details = {"api_name": "id", "json_path": path} if path else {"id": rec_id}
    return {"code": "INVALID_DATA", "details": details, "message": INVALID_ID, "status": "error"}


NOT_MODULES = {"settings", "actions", "users", "org", "coql", "__features"}


def _enter(crm, version: str, module: str, request: Request, op: str) -> str:
    check_version(version)
    if module.lower() in NOT_MODULES:
        # e.g. /settings/layouts, which this emulator does not serve: an unknown URL
        raise crm_error("INVALID_URL_PATTERN",
                        "Please check if the URL trying to access is a correct one", status=404)
    module = resolve_module(crm, module)
    crm.emu.authorize(request, "crm", crm.catalogue.scope(module, op))
    return module


def add_record_routes(router: APIRouter, crm) -> None:
    """Register the per-module routes (specific sub-paths before `/{id}`)."""
    emu = crm.emu

    @router.get(PREFIX + "/search")
    async def search(version: str, module: str, request: Request):
        """GET /{module}/search."""
        module = _enter(crm, version, module, request, "READ")
        with emu.lock:
            return run_search(crm, module, request)

    @router.get(PREFIX + "/deleted")
    async def deleted(version: str, module: str, request: Request):
        """GET /{module}/deleted: the recycle bin and purged records."""
        module = _enter(crm, version, module, request, "READ")
        kind = request.query_params.get("type", "all")
        if kind not in ("all", "recycle", "permanent"):
            # The shape of the "pattern not matched" 400 example of getDeletedRecords in
            # Zoho's CRM OpenAPI file.
            raise ApiError(400, {"data": [{
                "code": "PATTERN_NOT_MATCHED", "details": {"param_name": "type"},
                "message": "Please check whether the input values are correct",
                "status": "error"}]})
        page = int_param(request, "page", 1, 1, None)
        per_page = int_param(request, "per_page", 200, 1, 200)
        since = if_modified_since(request)
        with emu.lock:
            items = [d for d in reversed(crm.stores[module].deleted)
                     if (kind == "all" or d["type"] == kind)
                     and (since is None or d["deleted_time"] >= since)]
            window = [dict(d) for d in items[(page - 1) * per_page: page * per_page]]
        if not window:
            return empty_response(304 if since and not items else 204)
        return json_response({"data": window, "info": {
            "per_page": per_page, "count": len(window), "page": page,
            "more_records": page * per_page < len(items)}})

    @router.get(PREFIX + "/actions/count")
    async def count(version: str, module: str, request: Request):
        """GET /{module}/actions/count."""
        module = _enter(crm, version, module, request, "READ")
        with emu.lock:
            pred = view_predicate(crm, module, request.query_params.get("cvid"))
            recs = crm.stores[module].records.values()
            total = len(recs) if pred is None else sum(1 for r in recs if pred(r))
        return json_response({"count": total})

    @router.post(PREFIX + "/upsert")
    async def upsert(version: str, module: str, request: Request):
        """POST /{module}/upsert."""
        module = _enter(crm, version, module, request, "CREATE")
        emu.authorize(request, "crm", crm.catalogue.scope(module, "UPDATE"))
        body = await read_body(request)
        items = data_items(body)
        check = _duplicate_check_fields(crm, module, body.get("duplicate_check_fields"))
        with emu.lock:
            cache: dict = {}
            events: dict = {"insert": [], "update": [], "affected": []}
            results = [_upsert_one(crm, module, item, i, check, cache, events)
                       for i, item in enumerate(items)]
            # one callback per operation per request, as for create and update
            _notify(crm, module, "insert", events["insert"], [])
            _notify(crm, module, "update", events["update"], events["affected"])
        return json_response({"data": results}, write_status(results, 200))

    @router.get(PREFIX)
    async def list_(version: str, module: str, request: Request):
        """GET /{module}: list records."""
        module = _enter(crm, version, module, request, "READ")
        with emu.lock:
            return list_records(crm, module, request)

    @router.post(PREFIX)
    async def create(version: str, module: str, request: Request):
        """POST /{module}: create records."""
        module = _enter(crm, version, module, request, "CREATE")
        body = await read_body(request)
        items = data_items(body)
        results, created = [], []
        with emu.lock:
            for i, item in enumerate(items):
                try:
                    rec, details = crm.create(module, item, i)
                except ItemError as exc:
                    results.append(exc.body())
                    continue
                created.append(rec["id"])
                results.append({"code": "SUCCESS", "details": details,
                                "message": "record added", "status": "success"})
            _notify(crm, module, "insert", created, [])
        return json_response({"data": results}, write_status(results, 201))

    @router.put(PREFIX)
    async def update_many(version: str, module: str, request: Request):
        """PUT /{module}: update records by their ids."""
        module = _enter(crm, version, module, request, "UPDATE")
        body = await read_body(request)
        items = data_items(body)
        guard = _unmodified_since(request)
        with emu.lock:
            results = _update_items(crm, module, items, None, guard)
        return json_response({"data": results}, _update_status(results))

    @router.delete(PREFIX)
    async def delete_many(version: str, module: str, request: Request):
        """DELETE /{module}?ids=: delete records."""
        module = _enter(crm, version, module, request, "DELETE")
        raw = request.query_params.get("ids")
        ids = [i.strip() for i in (raw or "").split(",") if i.strip()]
        if not ids:
            raise crm_error("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                            {"param_name": "ids"})
        if len(ids) > 100:
            raise crm_error("LIMIT_EXCEEDED", "limit exceeded",
                            {"limit": 100, "param_name": "ids"})
        with emu.lock:
            results = _delete_ids(crm, module, ids)
        return json_response({"data": results}, write_status(results, 200))

    @router.get(PREFIX + "/{rec_id}")
    async def get_one(version: str, module: str, rec_id: str, request: Request):
        """GET /{module}/{id}: one record."""
        module = _enter(crm, version, module, request, "READ")
        with emu.lock:
            fields = field_list(crm, module, request.query_params.get("fields"), required=False)
            rec = crm.stores[module].records.get(rec_id)
            if rec is None:
                raise crm_error("INVALID_DATA", INVALID_ID, {"resource_path_index": 1})
            since = if_modified_since(request)
            if since and rec["Modified_Time"] < since:
                return empty_response(304)
            return json_response({"data": [crm.renderer.record(module, rec, fields)]})

    @router.get(PREFIX + "/{rec_id}/{related}")
    async def related_records(version: str, module: str, rec_id: str, related: str,
                              request: Request):
        """GET /{module}/{id}/{related list}: the records of the related module whose lookup
        points at this record (a deal's Quotes, an account's Invoices …), as the record's
        related list shows them; 204 when there are none."""
        module = _enter(crm, version, module, request, "READ")
        with emu.lock:
            if rec_id not in crm.stores[module].records:
                raise crm_error("INVALID_DATA", INVALID_ID, {"resource_path_index": 1})
            child = next((m for m in crm.catalogue.modules if m.lower() == related.lower()),
                         None)
            lookups = [f.api_name for f in crm.field_map(child).values()
                       if f.data_type == "lookup" and f.lookup_module == module] if child else []
            if not lookups:
                raise crm_error("INVALID_DATA", "the related list name given seems to be "
                                "invalid", {"resource_path_index": 2})
            fields = field_list(crm, child, request.query_params.get("fields"), required=False)
            found = [rec for rec in crm.stores[child].records.values()
                     if any(rec.get(name) == rec_id for name in lookups)]
            if not found:
                return empty_response(204)
            page = int_param(request, "per_page", 200, 1, 200)
            rows = [crm.renderer.record(child, rec, fields) for rec in found[:page]]
            return json_response({"data": rows, "info": {
                "per_page": page, "count": len(rows), "page": 1,
                "more_records": len(found) > page}})

    @router.put(PREFIX + "/{rec_id}")
    async def update_one(version: str, module: str, rec_id: str, request: Request):
        """PUT /{module}/{id}: update one record."""
        module = _enter(crm, version, module, request, "UPDATE")
        body = await read_body(request)
        items = data_items(body)
        guard = _unmodified_since(request)
        with emu.lock:
            results = _update_items(crm, module, items, rec_id, guard)
        return json_response({"data": results}, _update_status(results))

    @router.delete(PREFIX + "/{rec_id}")
    async def delete_one(version: str, module: str, rec_id: str, request: Request):
        """DELETE /{module}/{id}: delete one record."""
        module = _enter(crm, version, module, request, "DELETE")
        with emu.lock:
            if rec_id not in crm.stores[module].records:
                # As the "invalid record id" 400 example of deleteRecord in Zoho's OpenAPI file.
                raise crm_error("INVALID_DATA", "invalid record id", {"resource_path_index": 0})
            results = _delete_ids(crm, module, [rec_id])
        return json_response({"data": results}, write_status(results, 200))


def _duplicate_check_fields(crm, module: str, raw) -> list[str]:
    """The ordered duplicate-check fields: given ones, else system fields then unique ones."""
    if raw is None:
        uniques = [n for n, f in crm.field_map(module).items() if f.unique]
        return list(crm.catalogue.modules[module].duplicate_fields) + uniques
    fmap = crm.field_map(module)
    if not isinstance(raw, list) or not raw:
        raise crm_error("INVALID_DATA", "invalid data",
                        {"api_name": "duplicate_check_fields",
                         "json_path": "$.duplicate_check_fields"})
    for i, name in enumerate(raw):
        f = fmap.get(name) if isinstance(name, str) else None
        if f is None or f.data_type in ("subform", "ownerlookup") or f.read_only:
            raise crm_error("INVALID_DATA", "invalid data",
                            {"api_name": str(name), "json_path": f"$.duplicate_check_fields[{i}]"})
    return raw


def _upsert_one(crm, module: str, item, i: int, check: list[str], cache: dict,
                events: dict) -> dict:
    found = crm.find_duplicate(module, item, check, cache) if isinstance(item, dict) else None
    try:
        if found is None:
            rec, details = crm.create(module, item, i)
            crm.remember(cache, rec)
            events["insert"].append(rec["id"])
            # As in Zoho's OpenAPI example, an insert names the duplicate-check field it
            # evaluated.
            checked = next((n for n in check if item.get(n) not in (None, "")), None)
            return {"code": "SUCCESS", "duplicate_field": checked, "action": "insert",
                    "details": details, "message": "record added", "status": "success"}
        name, rec_id = found
        try:
            rec, details, changed = crm.update(module, rec_id, item, i)
        except ItemError as exc:
            exc.details["id"] = rec_id  # as Zoho's upsert examples show for the update path
            raise
        crm.remember(cache, rec)
        events["update"].append(rec_id)
        events["affected"].append({rec_id: changed})
        return {"code": "SUCCESS", "duplicate_field": name, "action": "update",
                "details": details, "message": "record updated", "status": "success"}
    except ItemError as exc:
        return exc.body()


def _unmodified_since(request: Request) -> str | None:
    """If-Unmodified-Since (ISO-8601) as a stored-form UTC string."""
    raw = request.headers.get("if-unmodified-since")
    if not raw:
        return None
    try:
        return to_utc_iso(raw.strip())
    except ValueError:
        raise crm_error("INVALID_DATA", "invalid data",
                        {"param_name": "If-Unmodified-Since"}) from None


def _update_status(results: list[dict]) -> int:
    """412 when every item was refused as ALREADY_MODIFIED (as in Zoho's OpenAPI example),
    else 200/207/400."""
    if results and all(r["code"] == "ALREADY_MODIFIED" for r in results):
        return 412
    return write_status(results, 200)


def _already_modified(crm, rec: dict) -> dict:
    details = crm.details(rec)
    details.pop("$approval_state", None)
    return {"code": "ALREADY_MODIFIED",
            "message": "record updated time has already passed if-unmodified-since time",
            "status": "error", "details": details}


def _update_items(crm, module: str, items: list, path_id: str | None,
                  guard: str | None = None) -> list[dict]:
    results, updated, affected = [], [], []
    for i, item in enumerate(items):
        rec_id = path_id
        if rec_id is None:
            raw = item.get("id") if isinstance(item, dict) else None
            if raw in (None, ""):
                results.append({"code": "MANDATORY_NOT_FOUND", "details": {
                    "api_name": "id", "json_path": f"$.data[{i}].id"},
                    "message": "required field not found", "status": "error"})
                continue
            rec_id = str(raw)
        if rec_id not in crm.stores[module].records:
            results.append(_id_error(rec_id, f"$.data[{i}].id"))
            continue
        current = crm.stores[module].records[rec_id]
        if guard is not None and current["Modified_Time"] > guard:
            results.append(_already_modified(crm, current))
            continue
        try:
            _, details, changed = crm.update(module, rec_id, item, i)
        except ItemError as exc:
            results.append(exc.body())
            continue
        updated.append(rec_id)
        affected.append({rec_id: changed})
        results.append({"code": "SUCCESS", "details": details, "message": "record updated",
                        "status": "success"})
    _notify(crm, module, "update", updated, affected)
    return results


def _delete_ids(crm, module: str, ids: list[str]) -> list[dict]:
    results, gone = [], []
    for rec_id in ids:
        if not rec_id.isdigit():
            results.append({"code": "INVALID_DATA", "details": {"id": rec_id},
                            "message": WRONG_FORMAT, "status": "error"})
            continue
        if rec_id not in crm.stores[module].records:
            results.append({"code": "INVALID_DATA", "details": {"id": rec_id},
                            "message": "record not deleted", "status": "error"})
            continue
        crm.delete(module, rec_id)
        gone.append(rec_id)
        results.append({"code": "SUCCESS", "details": {"id": rec_id},
                        "message": "record deleted", "status": "success"})
    _notify(crm, module, "delete", gone, [])
    return results


def _notify(crm, module: str, operation: str, ids: list[str], affected: list) -> None:
    if ids and crm.notifier.channels:
        server_time = int(crm.emu.now().timestamp() * 1000)  # epoch milliseconds
        crm.notifier.publish(module, operation, ids, affected, crm.emu.base_url, server_time)
