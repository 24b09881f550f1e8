"""Liveness, readiness and Prometheus metrics: the only routes open without a key."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from services.api.deps import State
from services.core.storage.db import check_schema_current

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The process can serve: database reachable and migrated")
def readyz(state: State) -> JSONResponse:
    problems: list[str] = []
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        check_schema_current(state.engine)
    except Exception as e:  # any failure here means "not ready", reported, not raised
        problems.append(f"database: {type(e).__name__}: {e}"[:300])
    for check in state.readiness:
        if (problem := check()) is not None:
            problems.append(problem)
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(state: State) -> Response:
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
