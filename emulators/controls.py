"""Test controls under `/__emulator__/`, a prefix the real Zoho APIs do not have: counters and
the request log, faults, reset, limits, tokens, Books webhooks and document types. They are
not counted and not subject to faults or limits."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, replace

from fastapi import APIRouter, Request

from emulators.accounts import DEFAULT_SCOPES
from emulators.common.envelopes import CONTROL_PREFIX, ApiError, json_response
from emulators.common.faults import Faults


def control_router(emu) -> APIRouter:
    """The test-control routes of one emulator (an `emulators.app.Emulator`)."""
    router = APIRouter(prefix=CONTROL_PREFIX)

    @router.get("/stats")
    def stats():
        return json_response({**emu.stats.snapshot(), "books_org": emu.config.books_org_ids[0]})

    @router.post("/stats/clear")
    def clear_stats():
        emu.stats.clear()
        return json_response({"status": "success"})

    @router.get("/log")
    def log(limit: int = 100):
        with emu.stats.lock:
            entries = list(emu.stats.log)[-max(0, limit):]
        return json_response({"requests": entries})

    @router.post("/faults")
    async def faults(request: Request):
        raw = await _json_body(request)
        try:
            emu.set_faults(Faults.from_dict(raw))
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response({"faults": asdict(emu.faults)})

    @router.post("/reset")
    async def reset(request: Request):
        raw = await _json_body(request)
        seed = raw.pop("seed", None)
        try:
            sizes = replace(emu.config.sizes, **raw) if raw else None
        except TypeError as exc:
            return json_response({"error": f"unknown size: {exc}"}, status=400)
        emu.reset(seed=seed, sizes=sizes)
        emu.set_faults(Faults())
        return json_response({"seed": emu.config.seed, "sizes": asdict(emu.config.sizes)})

    @router.post("/limits")
    async def limits(request: Request):
        raw = await _json_body(request)
        allowed = {"books_rate_limit", "books_rate_window_s", "books_daily_limit",
                   "crm_concurrency", "token_refresh_limit_per_10min", "token_lifetime_s"}
        unknown = sorted(set(raw) - allowed)
        if unknown:
            return json_response({"error": f"unknown limit(s): {', '.join(unknown)}"}, 400)
        for key, value in raw.items():
            # A limit of zero, a negative one or text would make every request a 429 (or
            # the middleware fail): refused, and no limit changes.
            nullable = key == "token_refresh_limit_per_10min"
            if not (value is None and nullable) and (
                    isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
                return json_response(
                    {"error": f"{key} must be a positive number{' or null' if nullable else ''}"
                     f", not {value!r}"}, 400)
        for key, value in raw.items():
            setattr(emu.config, key, value)
        return json_response({k: getattr(emu.config, k) for k in sorted(allowed)})

    @router.post("/tokens")
    async def add_token(request: Request):
        raw = await _json_body(request)
        token = raw.get("refresh_token") or "1000." + secrets.token_hex(16)
        with emu.lock:
            emu.tokens.add_refresh_token(token, tuple(raw.get("scopes") or DEFAULT_SCOPES))
        return json_response({"refresh_token": token})

    @router.post("/tokens/revoke")
    async def revoke_token(request: Request):
        raw = await _json_body(request)
        with emu.lock:
            found = emu.tokens.revoke(raw.get("token", ""))
        return json_response({"revoked": found})

    @router.post("/tokens/expire")
    def expire_tokens():
        with emu.lock:
            emu.tokens.expire_all()
        return json_response({"status": "success"})

    @router.post("/webhooks")
    async def add_webhook(request: Request):
        """Books webhooks of one organization to `url` with `header: secret` (what an operator
        sets up in Books' UI; the event receiver registers itself here)."""
        raw = await _json_body(request)
        missing = [k for k in ("org_id", "url", "secret") if not raw.get(k)]
        if missing:
            return json_response({"error": f"missing: {', '.join(missing)}"}, 400)
        org_id = str(raw["org_id"])
        if org_id not in emu.books.orgs:
            return json_response({"error": f"unknown Books organization {org_id}"}, 404)
        emu.books.register_webhook(org_id, str(raw["url"]), str(raw["secret"]),
                                   str(raw.get("header") or "X-Webhook-Secret"))
        return json_response({"org_id": org_id, "url": raw["url"]})

    @router.delete("/webhooks/{org_id}")
    def remove_webhook(org_id: str):
        emu.books.unregister_webhook(org_id)
        return json_response({"status": "success"})

    @router.get("/document-types")
    def document_types():
        """The document types declared at run time (the built-in four are not listed)."""
        with emu.lock:
            declared = [doc.to_dict() for doc in emu.document_types]
        return json_response({"document_types": declared})

    @router.post("/document-types")
    async def add_document_type(request: Request):
        """Declare a document type (the JSON form of `DocumentType.from_dict`): a Books
        resource and its CRM module, served at once and kept across reset."""
        raw = await _json_body(request)
        try:
            doc = emu.add_document_type(raw)
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response({"document_type": doc.to_dict()}, status=201)

    @router.post("/custom-fields")
    async def add_custom_field(request: Request):
        """A custom field an administrator adds in the product's setup: on the CRM
        `{"product": "crm", "module", "api_name", "label", "data_type"[, "picklist"]}`, on
        Books `{"product": "books", "resource", "api_name", "label", "data_type"}`. Served at
        once (`/settings/fields`, records' `custom_fields[]`); a reset removes it."""
        raw = await _json_body(request)
        product = raw.get("product")
        try:
            with emu.lock:
                if product == "crm":
                    made = emu.crm.add_custom_field(
                        str(raw.get("module") or ""), str(raw.get("api_name") or ""),
                        str(raw.get("label") or ""), str(raw.get("data_type") or ""),
                        [str(v) for v in raw.get("picklist") or []])
                elif product == "books":
                    made = emu.books.add_custom_field(
                        str(raw.get("resource") or ""), str(raw.get("api_name") or ""),
                        str(raw.get("label") or ""), str(raw.get("data_type") or ""))
                else:
                    return json_response({"error": "product must be crm or books"}, 400)
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response({"custom_field": made}, status=201)

    return router


async def _json_body(request: Request) -> dict:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        raw = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, {"error": f"malformed JSON: {exc}"}) from exc
    if not isinstance(raw, dict):
        raise ApiError(400, {"error": "expected a JSON object"})
    return raw
