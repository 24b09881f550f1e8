"""The OpenAPI document clients code against (``/openapi.json``), made to say what the
app does: every error answer in the one shape (``services.runtime.http.ErrorBody``), and
each operation's error statuses documented by the rules the app follows. A schemathesis
run checks it in CI (``tests/api/test_openapi_contract.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.core.models import Mention
from services.runtime.http import ErrorBody

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")

# Why each error status is answered; an operation documents the ones its traits allow.
ERROR_DESCRIPTIONS = {
    400: "The body cannot be read as JSON (not UTF-8, or no JSON at all)",
    401: "No API key, or one that is unknown or revoked",
    403: "The key's role may not do this",
    404: "Not found (the path names something that does not exist)",
    409: "Conflicts with the current state (a name taken, an item held by someone else)",
    413: "The body is larger than this route takes",
    422: "A field is invalid; `errors` names each field with what is wrong",
    503: "The database is unavailable; retry after `Retry-After` seconds",
}


def _error_statuses(operation: dict[str, Any]) -> set[int]:
    statuses: set[int] = set()
    if operation.get("security"):
        statuses |= {401, 403, 503}
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    params = operation.get("parameters", [])
    if params:
        statuses.add(422)
    if any(p.get("in") == "path" for p in params):
        statuses.add(404)
    return statuses


def document_errors(schema: dict[str, Any]) -> None:
    """Every 4xx/5xx answer as ``ErrorBody``, and the statuses each operation can answer
    with added: 401/403/503 where a key is needed, 400/413/422 with a body, 422 with
    parameters, 404 with a path parameter (409 and other 404s the routes declare)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error.pop("$defs", {}))
    components["ErrorBody"] = error
    # FastAPI's own validation error (a list under "detail") is never answered.
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path_item in schema.get("paths", {}).values():
        for method in _METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in _error_statuses(operation):
                responses.setdefault(str(status), {})
            for status, response in responses.items():
                if not status.isdigit() or int(status) < 400:
                    continue
                if int(status) in ERROR_DESCRIPTIONS and response.get("description") in (
                    None,
                    "Validation Error",
                ):
                    response["description"] = ERROR_DESCRIPTIONS[int(status)]
                response.setdefault("description", "Error")
                response["content"] = {"application/json": {"schema": _ERROR_REF}}


def add_mention_schema(schema: dict[str, Any]) -> None:
    """The POST /mentions body is read raw (to accept NDJSON and report items one by
    one), so the Mention schema is added to the OpenAPI document by hand."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    mention = Mention.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(mention.pop("$defs", {}))
    components["Mention"] = mention


def contract(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: the document, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            add_mention_schema(schema)
            document_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
