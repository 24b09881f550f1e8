"""The API as an ASGI application factory, for running it under several worker processes.

``sentimon api`` serves from one process. For more, let uvicorn (or gunicorn with
uvicorn workers) start them, with Prometheus's multiprocess mode on so that ``/metrics``
adds up the workers' counts::

    export PROMETHEUS_MULTIPROC_DIR=/run/sentimon-metrics
    rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    uvicorn services.asgi:create_app_from_env --factory --workers 4 --host 0.0.0.0 --port 8000

Each worker builds its own app from the ``SENTIMON_*`` settings (like ``sentimon api``:
it reads the database; migrations are the prestart step's). Without
``PROMETHEUS_MULTIPROC_DIR`` a scrape gets the counts of whichever worker answers it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.alerts.runtime import attach_alerts
from services.alerts.settings import AlertSettings
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.api.state import process_state
from services.core.metrics import multiprocess_dir
from services.core.storage.db import make_engine
from services.runtime.process import freeze_startup_heap, steady_allocator


class MultiprocessDirMissingError(RuntimeError):
    """PROMETHEUS_MULTIPROC_DIR names a directory that does not exist."""


def create_app_from_env() -> FastAPI:
    """One worker's app, from the environment's settings.

    Raises ``MultiprocessDirMissingError`` when ``PROMETHEUS_MULTIPROC_DIR`` is set to a
    directory that does not exist (metrics would otherwise fail on the first request).
    """
    directory = multiprocess_dir()
    if directory is not None and not directory.is_dir():
        raise MultiprocessDirMissingError(
            f"PROMETHEUS_MULTIPROC_DIR={directory}: no such directory (create it, empty, "
            "before the workers start)"
        )
    settings = ApiSettings()
    alert_settings = AlertSettings()
    engine = make_engine(settings.resolved_database_url())
    state = process_state(settings, engine)
    app = create_app(state)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Every worker evaluates alert rules and delivers webhooks: the unique key per
        # rule and window and the outbox leases make that safe (one alert, one send).
        alerts = attach_alerts(state, alert_settings)
        steady_allocator()
        freeze_startup_heap()
        try:
            yield
        finally:
            await alerts.stop()
            engine.dispose()

    app.router.lifespan_context = lifespan
    return app
