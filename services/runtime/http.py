"""One error shape for every HTTP answer of every process: a message naming the field,
and the fields.

``{"detail": "created_at: naive datetime …", "errors": [{"field": "created_at", "message": "…"}]}``
The input is never echoed back (it may be large, hostile, or hold a secret).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services.core.validation import field_path

log = logging.getLogger(__name__)

# Status codes by number: their names changed across Starlette versions.
UNPROCESSABLE = 422
TOO_LARGE = 413
METHOD_NOT_ALLOWED = 405
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class FieldError(BaseModel):
    field: str = Field(
        description="The field that is wrong (``query.limit``, ``body.url``, …); "
        "empty when the problem is not one field's"
    )
    message: str


class ErrorBody(BaseModel):
    """Every error answer (4xx and 5xx) of every process, as the OpenAPI document says."""

    detail: str = Field(description="The errors in one line: ``field: message; …``")
    errors: list[FieldError]


def _split(message: str) -> dict[str, str]:
    field, sep, rest = message.partition(": ")
    if sep and field and " " not in field.strip():
        return {"field": field, "message": rest}
    return {"field": "", "message": message}


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = str(exc.detail)
    headers = exc.headers
    if exc.status_code == METHOD_NOT_ALLOWED:
        # Starlette names the methods of the first route whose path matched; a path served
        # by several routes (GET and POST on one collection) allows all of theirs.
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return JSONResponse(
        {"detail": detail, "errors": [_split(detail)]},
        status_code=exc.status_code,
        headers=headers,
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at the request's path (each asked of
    the app's routes, included routers too, as the router would match it)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for e in exc.errors()[:20]:
        loc = tuple(e.get("loc", ()))
        # FastAPI prefixes "body"/"query"/"path"; keep "query.from" style for clarity.
        field = field_path(loc) or "body"
        msg = str(e.get("msg", "invalid"))
        if e.get("type") == "timezone_aware":
            msg = "naive datetime: give an RFC 3339 time with an offset, e.g. 2026-01-31T09:30:00Z"
        errors.append({"field": field, "message": msg})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse({"detail": detail, "errors": errors}, status_code=422)


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with ``Retry-After`` rather than a bare 500 while the database is away (a
    client of at-least-once ingest retries; nothing was produced for it)."""
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
    message = "unavailable, try again shortly"
    return JSONResponse(
        {"detail": f"database: {message}", "errors": [{"field": "database", "message": message}]},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def install(app: FastAPI) -> None:
    """Answer every HTTP and validation error in the one shape."""
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
