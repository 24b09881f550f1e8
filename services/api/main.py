"""``sentimon api``: the API and pages as a process of their own (distributed mode).

It reads the database the scorers write; it does not ingest (push mentions to
``sentimon ingest``). Migrations are the prestart step's (``sentimon migrate --wait``):
until the schema is current, ``/readyz`` says so and answers 503.
"""

from __future__ import annotations

import asyncio
import logging

from services.alerts.runtime import attach_alerts
from services.api.settings import ApiSettings
from services.api.state import process_state
from services.core.storage.db import make_engine
from services.runtime.process import bind_socket, serve_http, stop_on_signals

log = logging.getLogger(__name__)


async def run_api(settings: ApiSettings, *, shutdown_timeout_s: float = 30.0) -> None:
    """Serve until SIGTERM/SIGINT, then let requests in progress finish.

    Raises ``PortInUseError`` before anything starts if the address cannot be bound.
    """
    from services.api.app import create_app

    sock = bind_socket(settings.host, settings.port)
    engine = make_engine(settings.resolved_database_url())
    stop = asyncio.Event()
    base = f"http://{settings.host}:{settings.port}"
    print(f"Sentimon API at {base}  (API docs: {base}/docs)", flush=True)
    state = process_state(settings, engine)
    # Spike alerts (issue 6): each API process evaluates and delivers; the unique key per
    # rule and window and the outbox's claim leases keep that to one alert, one send.
    alerts = attach_alerts(state)
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
        await alerts.stop()
        engine.dispose()
        log.info("api stopped")
