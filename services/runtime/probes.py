"""``/healthz``, ``/readyz`` and ``/metrics``: the only routes open without a key, served
by every process (the API, the ingest, each scorer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from services.core.metrics import Metrics
from services.core.storage.db import check_schema_current
from services.runtime.http import database_unavailable, install

ReadinessCheck = Callable[[], str | None]


@dataclass(slots=True)
class Probes:
    """What the probes look at: the database, the process's metrics, and the extra
    checks its parts register (each returns ``None`` when fine, else what is wrong)."""

    engine: Engine
    metrics: Metrics
    readiness: list[ReadinessCheck] = field(default_factory=list)

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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(_probes(request).metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


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
