"""``sentimon ingest``: sources and the HTTP push endpoint, producing to Kafka.

The same accept path and sources as embedded mode, over a Kafka producer (idempotent,
``acks=all``: a push is answered only once its mentions are durable on the broker).
HTTP: ``POST /api/v1/mentions`` (``services/ingest/http.py``), ``/healthz``,
``/readyz``, ``/metrics``.

Sources: the demo, a file replay, and the platform connectors configured in
``SENTIMON_SOURCES_FILE`` or stored through the API's ``/api/v1/sources``; the store is
watched, so a source added, changed or removed through the API is picked up within
``SENTIMON_SOURCES_REFRESH_S`` without a restart.

SIGTERM: stop accepting requests and let those in progress finish, stop the sources,
flush the producer, leave.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.core.clock import SystemClock
from services.core.metrics import Metrics
from services.core.storage.alerts import AlertRuleStore
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine
from services.ingest.flow import build_ingest, demo_source, file_source
from services.ingest.http import PushEndpoint, mount_push
from services.ingest.seed import seed_brands, seed_demo_rules
from services.ingest.settings import IngestProcessSettings
from services.runtime.bus import close_bus, connect_bus
from services.runtime.keycache import GraceKeyStore
from services.runtime.probes import Probes, probe_app
from services.runtime.process import bind_socket, serve_http, stop_on_signals

log = logging.getLogger(__name__)


def create_ingest_app(probes: Probes, endpoint: PushEndpoint) -> FastAPI:
    """Only what an ingest process serves: the push endpoint, health and metrics."""
    app = probe_app(probes, "Sentimon ingest")
    mount_push(app, endpoint)
    return app


async def run_ingest(
    settings: IngestProcessSettings,
    *,
    replay: Path | None = None,
    replay_rate: float | None = None,
) -> None:
    """Serve pushes and run the sources until SIGTERM/SIGINT, then flush and stop.

    Raises ``PortInUseError`` before anything starts if the address cannot be bound.
    """
    sock = bind_socket(settings.ingest_host, settings.ingest_port)
    engine = make_engine(settings.resolved_database_url())
    clock, metrics = SystemClock(), Metrics(CollectorRegistry())
    brands = BrandStore(engine, clock)
    bus = await connect_bus(settings, metrics, "sentimon-ingest")
    producer = await bus.producer()
    ingest = build_ingest(
        settings,
        producer=producer,
        engine=engine,
        clock=clock,
        metrics=metrics,
        brands=brands,
        # Kafka can take pushes while PostgreSQL is away: keys verified in the last five
        # minutes still authenticate then (revocation is immediate while it answers).
        keys=GraceKeyStore(engine, clock, grace_s=300),
        bus_problem=bus.broker_problem,
        push_timeout_s=settings.push_timeout_s,
    )
    await ingest.start()
    if settings.demo:
        await asyncio.to_thread(seed_brands, brands, (), demo=True)
        await asyncio.to_thread(seed_demo_rules, AlertRuleStore(engine, clock), brands)
        ingest.add_source(demo_source(settings, clock))
    if replay is not None:
        ingest.add_source(file_source(replay, replay_rate))
    probes = Probes(
        engine,
        metrics,
        [bus.broker_problem, ingest.problem],
        metrics_token=settings.metrics_token,
    )
    stop = asyncio.Event()
    base = f"http://{settings.ingest_host}:{settings.ingest_port}"
    print(f"Sentimon ingest at {base}/api/v1/mentions", flush=True)
    with stop_on_signals(stop):
        try:
            await serve_http(
                create_ingest_app(probes, ingest.push),
                sock,
                log_level=settings.log_level,
                stop=stop,
                timeout_s=settings.shutdown_timeout_s,
            )
        finally:
            await ingest.close()
            try:
                await close_bus(bus, producer)
            finally:
                engine.dispose()
            log.info("ingest stopped")
