"""The CRM emulator's HTTP surface: every route under /crm/{version}/, on one router."""

from __future__ import annotations

from fastapi import APIRouter

from emulators.crm.meta_routes import add_meta_routes
from emulators.crm.record_routes import add_record_routes


def build_router(crm) -> APIRouter:
    """All CRM routes. Specific paths are registered before `/{module}/{id}`."""
    router = APIRouter()
    add_meta_routes(router, crm)
    add_record_routes(router, crm)
    return router
