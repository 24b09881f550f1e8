"""``sentimon api``: the API and pages as a process of their own (distributed mode).

It reads the database the scorers write; it does not ingest (push mentions to
``sentimon ingest``). Migrations are the prestart step's (``sentimon migrate --wait``):
until the schema is current, ``/readyz`` says so and answers 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from services.api.settings import ApiSettings
from services.api.state import AppState, process_state
from services.core.storage.db import make_engine
from services.runtime.process import bind_socket, serve_http, stop_on_signals

log = logging.getLogger(__name__)


class Companion(Protocol):
    """Something that runs beside the API's routes in its process (the alerts service)."""

    async def stop(self) -> None: ...


async def run_api(
    settings: ApiSettings,
    *,
    companions: Sequence[Callable[[AppState], Companion]] = (),
    shutdown_timeout_s: float = 30.0,
) -> None:
    """Serve until SIGTERM/SIGINT, then let requests in progress finish; each of
    ``companions`` is started on the process's state first and stopped at the end (the
    launcher composes them: ``sentimon api`` runs the alerts service beside the routes).

    Raises ``PortInUseError`` before anything starts if the address cannot be bound.
    """
    from services.api.app import create_app

    sock = bind_socket(settings.host, settings.port)
    engine = make_engine(settings.resolved_database_url())
    stop = asyncio.Event()
    base = f"http://{settings.host}:{settings.port}"
    print(f"Sentimon API at {base}  (API docs: {base}/docs)", flush=True)
    state = process_state(settings, engine)
    running = [start(state) for start in companions]
    try:
        with stop_on_signals(stop):
            await serve_http(
                create_app(state),
                sock,
                log_level=settings.log_level,
                stop=stop,
                timeout_s=shutdown_timeout_s,
            )
    finally:
        for companion in running:
            await companion.stop()
        engine.dispose()
        log.info("api stopped")
