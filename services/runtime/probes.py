"""``/healthz``, ``/readyz`` and ``/metrics``: the only routes open without a key, served
by every process (the API, the ingest, each scorer).

``/metrics`` asks for a bearer token when the process has one (``SENTIMON_METRICS_TOKEN``;
Prometheus sends it with ``authorization`` in the scrape config); without one it is open,
and the API then leaves out the business gauges unless told to serve them
(``SENTIMON_METRICS_BUSINESS_GAUGES``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from hmac import compare_digest

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from services.core.metrics import Metrics
from services.core.storage.db import check_schema_current
from services.runtime.http import database_unavailable, install

ReadinessCheck = Callable[[], str | None]


@dataclass(slots=True)
class Probes:
    """What the probes look at: the database, the process's metrics, and the extra
    checks its parts register (each returns ``None`` when fine, else what is wrong);
    ``metrics_token``: the bearer token ``/metrics`` requires (``None``: open)."""

    engine: Engine
    metrics: Metrics
    readiness: list[ReadinessCheck] = field(default_factory=list)
    metrics_token: SecretStr | None = None

    def may_read_metrics(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value opens ``/metrics`` (any does
        without a token); the token is compared in constant time."""
        if self.metrics_token is None:
            return True
        scheme, _, given = (authorization or "").partition(" ")
        expected = self.metrics_token.get_secret_value().encode()
        # Compared even for a wrong scheme, so the answer takes the same time.
        matches = compare_digest(given.strip().encode(), expected)
        return scheme.lower() == "bearer" and matches

    def problems(self) -> list[str]:
        """Why this process cannot serve now; empty when it can."""
        problems: list[str] = []
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            check_schema_current(self.engine)
        except Exception as e:  # any failure here means "not ready", reported, not raised
            problems.append(f"database: {type(e).__name__}: {e}"[:300])
        for check in self.readiness:
            if (problem := check()) is not None:
                problems.append(problem)
        return problems


def _probes(request: Request) -> Probes:
    probes: Probes = request.app.state.probes
    return probes


router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The process can serve: database reachable and migrated")
def readyz(request: Request) -> JSONResponse:
    problems = _probes(request).problems()
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={401: {"description": "A metrics token is set and was not given"}},
)
def metrics(request: Request) -> Response:
    probes = _probes(request)
    if not probes.may_read_metrics(request.headers.get("authorization")):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "authorization: /metrics needs the metrics token (Bearer)",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return Response(probes.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def mount_probes(app: FastAPI, probes: Probes) -> None:
    """Serve the probes on ``app``."""
    app.state.probes = probes
    app.include_router(router)


def probe_app(probes: Probes, title: str) -> FastAPI:
    """An app with the probes only (a scorer's), or the base of a process's own app:
    errors in the one shape, 503 while the database is away."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    install(app)
    app.add_exception_handler(OperationalError, database_unavailable)
    mount_probes(app, probes)
    return app
