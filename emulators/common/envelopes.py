"""Answers in each product's own shape: error envelopes, JSON and empty responses, and the
error handlers that keep every failure, ours or FastAPI's, in the envelope of the product whose
path was called."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
Product = Literal["crm", "books", "accounts", "control"]
# Test controls live under this prefix, which the real Zoho APIs do not have.
CONTROL_PREFIX = "/__emulator__"


class ApiError(Exception):
    """An API answer that is not a success; rendered with its status and headers."""

    def __init__(self, status: int, body: dict | None, headers: dict | None = None):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}

    def __reduce__(self):
        # Exception pickles its args only, which are not this constructor's arguments.
        return (type(self), (self.status, self.body, self.headers))



class DroppedConnection(Exception):
    """Raised after the response started, so the server closes the socket mid-answer."""


def crm_error(
    code: str, message: str, details: dict | None = None, status: int = 400
) -> ApiError:
    """A CRM error: {"code","details","message","status":"error"}, as every Zoho CRM API
    error is shaped."""
    return ApiError(
        status, {"code": code, "details": details or {}, "message": message, "status": "error"}
    )


def books_error(code: int, message: str, status: int = 400) -> ApiError:
    """A Books error: a non-zero numeric code and a message, without a status field."""
    return ApiError(status, {"code": code, "message": message})


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON answer with Zoho's content type; Decimals are written as JSON numbers."""
    text = json.dumps(body, default=_json_default, ensure_ascii=False)
    return Response(text, status_code=status, headers=headers, media_type=JSON_CONTENT_TYPE)


def empty_response(status: int) -> Response:
    """204 / 304: no body at all, as Zoho sends them."""
    return Response(status_code=status)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # A JSON number, never a string: Zoho returns amounts as numbers. Amounts carry at most
        # a few decimals and 16 digits, which a double holds exactly enough to round-trip.
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def product_of(path: str) -> Product:
    """Which emulated product a path belongs to."""
    if path.startswith("/crm/"):
        return "crm"
    if path.startswith(("/books/", "/api/")):
        return "books"
    if path.startswith("/oauth/"):
        return "accounts"
    return "control"


def internal_error(product: Product) -> ApiError:
    """A 500 in the product's envelope."""
    if product == "crm":
        return crm_error("INTERNAL_ERROR", "Internal Server Error", status=500)
    return books_error(1000, "Internal error", status=500)


def install_error_handlers(app: FastAPI) -> None:
    """Every error, ours or FastAPI's, in the envelope of the product whose path was called."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        if exc.body is None:
            return empty_response(exc.status)
        return json_response(exc.body, exc.status, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        if product_of(request.url.path) == "crm":
            error = crm_error("INVALID_DATA", "invalid data", {"param_name": where})
        else:
            error = books_error(2, f"Invalid value passed for {where}")
        return json_response(error.body, error.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        error = _unrouted(product_of(request.url.path), exc)
        return json_response(error.body, error.status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # A bug in an emulator must still answer in the product's envelope, never a traceback.
        logging.getLogger("emulators").exception("unexpected emulator error")
        error = internal_error(product_of(request.url.path))
        return json_response(error.body, error.status)


def _unrouted(product: Product, exc: StarletteHTTPException) -> ApiError:
    """An unknown path (404) or method (405) in the product's envelope."""
    if product == "crm":
        if exc.status_code == 405:
            return crm_error("INVALID_REQUEST_METHOD", "The http request method type is "
                             "not a valid one", status=405)
        return crm_error("INVALID_URL_PATTERN", "Please check if the URL trying to "
                         "access is a correct one", status=404)
    if product == "books":
        if exc.status_code == 405:
            return books_error(37, "The HTTP method is not allowed for the requested "
                               "resource", status=405)
        return books_error(5, "Invalid URL Passed", status=404)
    return ApiError(exc.status_code, {"error": str(exc.detail)})
