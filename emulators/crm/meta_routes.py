"""CRM metadata and org-level routes: settings (modules, fields, custom views), org, users,
notifications (actions/watch) and COQL."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from fastapi import APIRouter, Request

from emulators.common.envelopes import crm_error, empty_response, json_response
from emulators.crm.coql import CoqlError
from emulators.crm.http import (
    check_version,
    if_modified_since,
    int_param,
    read_body,
    resolve_module,
)
from emulators.crm.metadata import field_meta
from emulators.crm.notify import OPERATIONS
from emulators.crm.query import run_coql
from emulators.crm.store import iso
from emulators.crm.versions import (
    CAPABILITY_FLAGS,
    module_capability_flags,
    module_status_key,
)
from emulators.crm.views import find, render

PREFIX = "/crm/{version}"


def _module_param(crm, request: Request) -> str:
    raw = request.query_params.get("module")
    if not raw:
        raise crm_error("REQUIRED_PARAM_MISSING", "required param is missing",
                        {"param_name": "module"})
    return resolve_module(crm, raw)


def add_meta_routes(router: APIRouter, crm) -> None:
    """Register settings, org, users, notification and COQL routes."""
    emu = crm.emu
    _settings_routes(router, crm)
    _users_routes(router, crm)
    _watch_routes(router, crm)

    @router.get(PREFIX + "/org")
    async def org(version: str, request: Request):
        """GET /org: company, currency, multi-currency flag and edition."""
        check_version(version)
        emu.authorize(request, "crm", "ZohoCRM.org.READ")
        config = emu.config
        symbol = {"USD": "$", "EUR": "€", "GBP": "£", "INR": "₹", "JPY": "¥"}.get(
            config.crm_currency, config.crm_currency)
        return json_response({"org": [{
            "id": "5725767000000012001", "company_name": config.crm_org_name,
            "alias": None, "primary_email": "admin@zylker.example", "primary_zuid": "70000100",
            "zgid": "70000001", "domain_name": "org70000001", "type": "production",
            "country": "United States", "country_code": "US", "time_zone": "Etc/UTC",
            "currency": config.crm_currency, "currency_symbol": symbol,
            "currency_locale": "en_US", "iso_code": config.crm_currency,
            "mc_status": config.crm_multi_currency, "gapps_enabled": False,
            "employee_count": "50", "phone": None, "website": None,
            "license_details": {
                "paid": True, "paid_type": config.crm_edition.lower(),
                "paid_expiry": "2027-12-31T00:00:00+00:00", "users_license_purchased": 10,
                "trial_type": None, "trial_expiry": None, "trial_action": None},
            "privacy_settings": False, "hipaa_compliance_enabled": False,
        }]})

    @router.post(PREFIX + "/coql")
    async def coql(version: str, request: Request):
        """POST /coql: a COQL select query."""
        check_version(version)
        emu.authorize(request, "crm", "ZohoCRM.coql.READ")
        body = await read_body(request)
        try:
            with emu.lock:
                return run_coql(crm, request, body)
        except CoqlError as exc:
            raise crm_error(exc.code, exc.message, exc.details) from None


def _settings_routes(router: APIRouter, crm) -> None:
    emu = crm.emu

    @router.get(PREFIX + "/settings/modules")
    async def modules(version: str, request: Request):
        """GET /settings/modules: every module."""
        check_version(version)
        emu.authorize(request, "crm", "ZohoCRM.settings.modules.READ")
        return json_response({"modules": [_module_meta(crm, m, False, version)
                                          for m in crm.catalogue.modules]})

    @router.get(PREFIX + "/settings/modules/{api_name}")
    async def module(version: str, api_name: str, request: Request):
        """GET /settings/modules/{api_name}: one module with its fields."""
        check_version(version)
        emu.authorize(request, "crm", "ZohoCRM.settings.modules.READ")
        return json_response({"modules": [_module_meta(crm, resolve_module(crm, api_name),
                                                       True, version)]})

    @router.get(PREFIX + "/settings/fields")
    async def fields(version: str, request: Request):
        """GET /settings/fields?module=: field metadata."""
        check_version(version)
        emu.authorize(request, "crm", "ZohoCRM.settings.fields.READ")
        module = _module_param(crm, request)
        kind = request.query_params.get("type", "all")
        if kind not in ("all", "used", "unused"):
            raise crm_error("INVALID_DATA", "invalid data",
                            {"param_name": "type", "supported_values": ["all", "used", "unused"]})
        if kind == "unused":
            return empty_response(204)
        return json_response({"fields": [field_meta(crm.catalogue, module, f, version)
                                         for f in crm.active_fields(module)]})

    @router.get(PREFIX + "/settings/custom_views")
    async def custom_views(version: str, request: Request):
        """GET /settings/custom_views?module=: the views of a module."""
        check_version(version)
        emu.authorize(request, "crm", "ZohoCRM.settings.custom_views.READ")
        module = _module_param(crm, request)
        page = int_param(request, "page", 1, 1, None)
        per_page = int_param(request, "per_page", 200, 1, 200)
        views = crm.views[module]
        window = views[(page - 1) * per_page: page * per_page]
        if not window:
            return empty_response(204)
        return json_response({
            "custom_views": [render(crm, module, v) for v in window],
            "info": _views_info(crm, module, per_page, page, page * per_page < len(views),
                                len(window)),
        })

    @router.get(PREFIX + "/settings/custom_views/{view_id}")
    async def custom_view(version: str, view_id: str, request: Request):
        """GET /settings/custom_views/{id}?module=: one view with its criteria."""
        check_version(version)
        emu.authorize(request, "crm", "ZohoCRM.settings.custom_views.READ")
        module = _module_param(crm, request)
        view = find(crm, module, view_id)
        if view is None:
            raise crm_error("INVALID_DATA", "the id given seems to be invalid",
                            {"resource_path_index": 2})
        return json_response({"custom_views": [render(crm, module, view)],
                              "info": _views_info(crm, module, 1, 1, False)})


def _module_meta(crm, api: str, detail: bool, version: str) -> dict:
    """One module as `/settings/modules` describes it in API `version` (the single-module
    form adds fields, the default custom view and layouts)."""
    cat = crm.catalogue
    info = cat.modules[api]
    singular, plural, n, name_field = info.singular, info.plural, info.number, info.name_field
    admin = {"name": "Administrator", "id": "5725767000000099100"}
    meta = {
        "api_name": api, "module_name": api, "id": cat.module_id(api),
        "singular_label": singular, "plural_label": plural, "api_supported": True,
        "creatable": True, "editable": True, "deletable": True, "viewable": True,
        "convertable": False, "generated_type": "custom" if info.custom else "default",
        "sequence_number": n, "visible": True, "visibility": 1, "presence_sub_menu": True,
        "global_search_supported": True, "common.search_supported": True, "description": None,
        "recycle_bin_on_delete": True, "inventory_template_supported": info.subform is not None,
        "modified_time": None, "modified_by": crm.user_ref(), "triggers_supported": True,
        "chart_view": False, "isBlueprintSupported": True, "emailTemplate_support": True,
        "email_parser_supported": False, "filter_supported": True, "show_as_tab": True,
        "web_link": None, "quick_create": True, "feeds_required": False,
        "scoring_supported": True, "webform_supported": api in ("Accounts", "Contacts"),
        "arguments": [], "chart_view_supported": True, "profile_count": 2,
        "business_card_field_limit": 5, "track_current_data": False, "parent_module": {},
        "activity_badge": "Disabled", "$field_states": [], "business_card_fields": [],
        "per_page": 10, "$properties": ["$currency_symbol", "$approval", "$approved"],
        "$on_demand_properties": [], "search_layout_fields": [], "kanban_view_supported": True,
        "lookup_field_properties": {"fields": []}, "kanban_view": False, "related_lists": [],
        "filter_status": True, "related_list_properties": {
            "sort_by": {"api_name": "Modified_Time", "id": cat.field_id(api, "Modified_Time")},
            "fields": [name_field], "sort_order": "desc"},
        "display_field": {"api_name": name_field, "id": cat.field_id(api, name_field)},
        "layouts": [], "fields": [], "zia_view": False, "default_mapping_fields": [],
        "layout_associations": [], "profiles": [admin, {"name": "Standard",
                                                        "id": "5725767000000099101"}],
    }
    if module_status_key(version):
        del meta["visible"]
        meta["status"], meta["sub_menu_available"] = "visible", True
    if not module_capability_flags(version):
        for key in CAPABILITY_FLAGS:
            meta.pop(key, None)
    if detail:
        meta["fields"] = [field_meta(cat, api, f, version) for f in crm.active_fields(api)]
        default = next(v for v in crm.views[api] if v["default"])
        meta["custom_view"] = render(crm, api, default)
        meta["layouts"] = [{"name": "Standard", "id": f"57257670000000{n:02d}091",
                            "api_name": "Standard"}]
    return meta


def _views_info(crm, module: str, per_page: int, page: int, more: bool, count: int = 1) -> dict:
    default = next(v for v in crm.views[module] if v["default"])
    return {"per_page": per_page, "default": default["id"], "count": count, "page": page,
            "more_records": more,
            "translation": {"public_views": "Public Views",
                            "other_users_views": "Other Users' Views",
                            "shared_with_me": "Views shared with me",
                            "created_by_me": "Created by me"}}


def _users_routes(router: APIRouter, crm) -> None:
    emu = crm.emu
    types = {
        "AllUsers": lambda u: True,
        "ActiveUsers": lambda u: u["status"] == "active",
        "DeactiveUsers": lambda u: u["status"] == "disabled",
        "DeletedUsers": lambda u: u["status"] == "deleted",
        "AdminUsers": lambda u: u["profile"]["name"] == "Administrator",
        "ActiveConfirmedAdmins": lambda u: u["status"] == "active"
        and u["profile"]["name"] == "Administrator",
        "ConfirmedUsers": lambda u: u["confirm"],
        "NotConfirmedUsers": lambda u: not u["confirm"],
        "CurrentUser": lambda u: u["id"] == crm.directory.current_user_id,
    }

    @router.get(PREFIX + "/users")
    async def users(version: str, request: Request):
        """GET /users?type=: users of the org."""
        check_version(version)
        emu.authorize(request, "crm", "ZohoCRM.users.READ")
        kind = request.query_params.get("type", "AllUsers")
        if kind not in types:
            raise crm_error("INVALID_DATA", "invalid data",
                            {"param_name": "type", "supported_values": list(types)})
        page = int_param(request, "page", 1, 1, None)
        per_page = int_param(request, "per_page", 200, 1, 200)
        since = if_modified_since(request)
        found = [u for u in crm.directory.users.values() if types[kind](u)
                 and (since is None or u["Modified_Time"] >= since)]
        window = found[(page - 1) * per_page: page * per_page]
        if not window:
            return empty_response(304 if since and not found else 204)
        return json_response({"users": [dict(u) for u in window], "info": {
            "per_page": per_page, "count": len(window), "page": page,
            "more_records": page * per_page < len(found)}})

    @router.get(PREFIX + "/users/{user_id}")
    async def user(version: str, user_id: str, request: Request):
        """GET /users/{id}: one user."""
        check_version(version)
        emu.authorize(request, "crm", "ZohoCRM.users.READ")
        found = crm.directory.users.get(user_id)
        if found is None:
            raise crm_error("INVALID_DATA", "the id given seems to be invalid",
                            {"resource_path_index": 1})
        return json_response({"users": [dict(found)]})


def _watch_routes(router: APIRouter, crm) -> None:
    emu = crm.emu
    notifier = crm.notifier

    def channel_details(ch: dict) -> dict:
        """The `details.events[]` entry describing a channel."""
        module = ch["events"][0].split(".")[0]
        return {"channel_expiry": ch["channel_expiry"],
                "resource_uri": f"{emu.base_url}/crm/v8/{module}",
                "resource_id": crm.catalogue.module_id(module), "resource_name": module,
                "channel_id": ch["channel_id"]}

    def parse_channel(item, i: int, existing: dict | None) -> dict:
        """Validate one `watch[]` item (merged over `existing` for PATCH)."""
        path = f"$.watch[{i}]"
        if not isinstance(item, dict):
            raise _item_error("INVALID_DATA", path, "watch")
        ch = dict(existing or {})
        ch.update({k: v for k, v in item.items() if k in (
            "channel_id", "events", "channel_expiry", "token", "notify_url",
            "return_affected_field_values", "notify_on_related_action")})
        for key in ("channel_id", "events", "notify_url"):
            if ch.get(key) in (None, "", []):
                raise _item_error("MANDATORY_NOT_FOUND", f"{path}.{key}", key)
        ch["channel_id"] = str(ch["channel_id"])
        if not ch["channel_id"].isdigit():
            raise _item_error("INVALID_DATA", f"{path}.channel_id", "channel_id")
        events = ch["events"]
        if not isinstance(events, list) or not all(_valid_event(crm, e) for e in events):
            raise _item_error("INVALID_DATA", f"{path}.events", "events")
        token = ch.get("token")
        if token is not None and (not isinstance(token, str) or len(token) > 50):
            raise _item_error("INVALID_DATA", f"{path}.token", "token")
        if not isinstance(ch["notify_url"], str) or not ch["notify_url"].startswith(
                ("http://", "https://")):
            raise _item_error("INVALID_DATA", f"{path}.notify_url", "notify_url")
        expiry = _expiry(ch.get("channel_expiry"), emu.now(), f"{path}.channel_expiry")
        ch["channel_expiry"], ch["expiry_epoch"] = iso(expiry), expiry.timestamp()
        return ch

    async def subscribe(version: str, request: Request, merge: bool):
        """Enable (POST), replace (PUT) or patch (PATCH) notification channels."""
        check_version(version)
        op = "CREATE" if request.method == "POST" else "UPDATE"
        emu.authorize(request, "crm", f"ZohoCRM.notifications.{op}")
        body = await read_body(request)
        items = body.get("watch")
        if not isinstance(items, list) or not items:
            raise crm_error("MANDATORY_NOT_FOUND", "required field not found",
                            {"api_name": "watch", "json_path": "$.watch"})
        results = []
        with emu.lock:
            for i, item in enumerate(items):
                try:
                    existing = None
                    if merge and isinstance(item, dict):
                        existing = notifier.channels.get(str(item.get("channel_id")))
                        if existing is None:  # PATCH only changes a channel that exists
                            raise _item_error("INVALID_DATA", f"$.watch[{i}].channel_id",
                                              "channel_id")
                    ch = parse_channel(item, i, existing)
                    notifier.channels[ch["channel_id"]] = ch
                    results.append({"code": "SUCCESS", "details": {
                        "events": [channel_details(ch)]},
                        "message": "Successfully subscribed for actions-watch of the given "
                                   "module", "status": "success"})
                except _WatchError as exc:
                    results.append(exc.body)
        ok = sum(r["status"] == "success" for r in results)
        status = 200 if ok == len(results) else (400 if ok == 0 else 207)
        return json_response({"watch": results}, status)

    @router.post(PREFIX + "/actions/watch")
    async def enable(version: str, request: Request):
        """POST /actions/watch: enable channels."""
        return await subscribe(version, request, merge=False)

    @router.put(PREFIX + "/actions/watch")
    async def replace(version: str, request: Request):
        """PUT /actions/watch: replace channels."""
        return await subscribe(version, request, merge=False)

    @router.patch(PREFIX + "/actions/watch")
    async def patch(version: str, request: Request):
        """PATCH /actions/watch: update parts of channels."""
        return await subscribe(version, request, merge=True)

    @router.get(PREFIX + "/actions/watch")
    async def details(version: str, request: Request):
        """GET /actions/watch: live channels."""
        check_version(version)
        emu.authorize(request, "crm", "ZohoCRM.notifications.READ")
        now = time.time()
        with emu.lock:
            live = [ch for ch in notifier.channels.values() if ch["expiry_epoch"] > now]
            wanted = request.query_params.get("channel_id")
            if wanted:
                live = [ch for ch in live if ch["channel_id"] == wanted]
            out = [{**channel_details(ch), "notify_url": ch["notify_url"],
                    "token": ch.get("token"), "events": ch["events"],
                    "return_affected_field_values": bool(ch.get("return_affected_field_values")),
                    "notify_on_related_action": bool(ch.get("notify_on_related_action")),
                    "fields": None, "notification_condition": None} for ch in live]
        if not out:
            return empty_response(204)
        return json_response({"watch": out, "info": {"per_page": 200, "count": len(out),
                                                     "page": 1, "more_records": False}})

    @router.delete(PREFIX + "/actions/watch")
    async def disable(version: str, request: Request):
        """DELETE /actions/watch?channel_ids=: disable channels."""
        check_version(version)
        emu.authorize(request, "crm", "ZohoCRM.notifications.DELETE")
        raw = request.query_params.get("channel_ids")
        if not raw:
            raise crm_error("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                            {"param_name": "channel_ids"})
        results = []
        with emu.lock:
            for cid in (c.strip() for c in raw.split(",") if c.strip()):
                ch = notifier.channels.pop(cid, None)
                if ch is None:
                    results.append({"code": "INVALID_DATA", "details": {"channel_id": cid},
                                    "message": "invalid data", "status": "error"})
                    continue
                results.append({"code": "SUCCESS", "details": channel_details(ch),
                                "message": "Successfully unsubscribed from actions-watch of "
                                           "the given module", "status": "success"})
        ok = sum(r["status"] == "success" for r in results)
        status = 200 if ok == len(results) else (400 if ok == 0 else 207)
        return json_response({"watch": results}, status)


class _WatchError(Exception):
    def __init__(self, body: dict):
        super().__init__(body["code"])
        self.body = body

    def __reduce__(self):
        # Exception pickles its args only, which are not this constructor's arguments.
        return (type(self), (self.body,))



def _item_error(code: str, path: str, name: str) -> _WatchError:
    message = "required field not found" if code == "MANDATORY_NOT_FOUND" else "invalid data"
    return _WatchError({"code": code, "details": {"api_name": name, "json_path": path},
                        "message": message, "status": "error"})


def _valid_event(crm, event) -> bool:
    if not isinstance(event, str) or "." not in event:
        return False
    module, _, op = event.rpartition(".")
    return module in crm.catalogue.modules and (op == "all" or op in OPERATIONS)


def _expiry(raw, now: datetime, path: str) -> datetime:
    """channel_expiry: one hour when not given (unverified); it must be in the future and at
    most a week ahead."""
    if raw is None:
        return now + timedelta(hours=1)
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise _item_error("INVALID_DATA", path, "channel_expiry") from None
    if when.tzinfo is None or when <= now or when > now + timedelta(days=7):
        raise _item_error("INVALID_DATA", path, "channel_expiry")
    return when
