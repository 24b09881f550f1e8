"""The FastAPI application factory."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from services.api import errors
from services.api.routes import admin, analytics, brands, health, mentions, pages
from services.api.state import AppState


def create_app(state: AppState) -> FastAPI:
    app = FastAPI(
        title="Sentimon",
        version="0.1.0",
        description="Social listening for B2B brands: mentions, sentiment, share of voice.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.sentimon = state
    errors.install(app)
    for module in (health, mentions, brands, analytics, admin, pages):
        app.include_router(module.router)
    _add_mention_schema(app)
    app.mount(
        "/static", StaticFiles(directory=str(files("services.api") / "static")), name="static"
    )
    latency = state.metrics.api_request_latency

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        # The route template, never the raw path: label values must stay bounded.
        path = getattr(route, "path", "unmatched")
        latency.labels(path, request.method, str(response.status_code)).observe(
            time.perf_counter() - t0
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return app


def _add_mention_schema(app: FastAPI) -> None:
    """The POST /mentions body is read raw (to accept NDJSON and report items one by
    one), so the Mention schema is added to the OpenAPI document by hand."""
    from fastapi.openapi.utils import get_openapi

    from services.core.models import Mention

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            mention = Mention.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(mention.pop("$defs", {}))
            components["Mention"] = mention
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
