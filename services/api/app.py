"""The FastAPI application factory."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from importlib.resources import files

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from services.api import errors, openapi
from services.api.brand_gauges import BrandWindowCollector
from services.api.routes import (
    admin,
    alert_rules,
    alerts,
    analytics,
    brands,
    channels,
    mentions,
    pages,
    reports,
    review,
    review_page,
    webhooks,
)
from services.api.routes import sources as source_routes
from services.api.state import AppState
from services.runtime.limits import BodyLimits, GuardedBodies
from services.runtime.probes import Probes, mount_probes

# Pages load only their own scripts and styles, and may not be framed (clickjacking).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def create_app(state: AppState) -> FastAPI:
    app = FastAPI(
        title="Sentimon",
        version="0.1.0",
        description="Social listening for B2B brands: mentions, sentiment, share of voice.",
        docs_url=None,  # served below from a local copy of Swagger UI: no CDN, works offline
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.sentimon = state
    # Business gauges (issue 8) are read from the database when /metrics is scraped. They
    # name the tracked brands with their volumes and sentiment: served only behind the
    # metrics token, or where the operator opted in to serving them openly.
    if state.settings.serves_business_gauges():
        state.metrics.add_collector("brand_gauges", BrandWindowCollector(state.engine, state.clock))
    errors.install(app)
    # The key is checked before any body is read, and bodies are capped as they stream.
    app.state.body_limits = BodyLimits(
        default=state.settings.max_request_bytes, open_paths=("/login", "/logout")
    )
    app.add_middleware(GuardedBodies, keys=state.keys, limits=app.state.body_limits)
    mount_probes(
        app,
        Probes(
            state.engine,
            state.metrics,
            state.readiness,
            metrics_token=state.settings.metrics_token,
        ),
    )
    for module in (mentions, brands, analytics, admin, pages):
        app.include_router(module.router)
    # The analysts' spot-check queue (issue 5): its API and its page.
    app.include_router(review.router)
    app.include_router(review_page.router)
    # Source connectors (issue 9): configuration and status.
    app.include_router(source_routes.router)
    # Executive reports (issue 7): the JSON report, its page and its download.
    app.include_router(reports.router)
    # Spike alerts and their webhooks (issue 6).
    for alert_module in (alert_rules, alerts, webhooks):
        app.include_router(alert_module.router)
    # Slack, Teams and email channels, on the webhooks' outbox (issue 17 §3).
    app.include_router(channels.router)
    # The OpenAPI document: the one error shape, each operation's error statuses.
    app.openapi = openapi.contract(app)  # type: ignore[method-assign]
    app.mount(
        "/static", StaticFiles(directory=str(files("services.api") / "static")), name="static"
    )
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Sentimon API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
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
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        if path != "/docs" and headers.get("content-type", "").startswith("text/html"):
            headers.setdefault("Content-Security-Policy", PAGE_CSP)
        return response

    return app
