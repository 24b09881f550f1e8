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
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine
from services.core.storage.keys import KeyStore
from services.core.storage.sources import SourceStore
from services.ingest.accept import MentionPublisher
from services.ingest.dedupe import RecentKeys
from services.ingest.http import PushEndpoint, mount_push
from services.ingest.seed import demo_backfill, seed_brands
from services.ingest.settings import IngestProcessSettings
from services.ingest.sources.protocol import Source
from services.ingest.sources.runner import build_supervisor, start_configured_sources
from services.ingest.worker import IngestStats, run_source
from services.runtime.bus import close_bus, connect_bus
from services.runtime.probes import Probes, probe_app
from services.runtime.process import bind_socket, log_failure, serve_http, stop_on_signals

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
    probes = Probes(engine, metrics)
    bus = await connect_bus(settings, metrics, "sentimon-ingest")
    producer = await bus.producer()
    publisher = MentionPublisher(producer, RecentKeys(settings.dedupe_capacity), metrics)
    # Platform connectors (RSS, Mastodon, …): those of SENTIMON_SOURCES_FILE and those
    # stored through /api/v1/sources, as of this start; checkpoints resume them.
    supervisor = build_supervisor(
        settings,
        publisher=publisher,
        engine=engine,
        clock=clock,
        metrics=metrics,
        brands=brands,
    )
    await start_configured_sources(supervisor, SourceStore(engine, clock), settings.sources_file)
    sources: list[Source] = []
    if settings.demo:
        from services.ingest.sources.demo import DemoSource

        await asyncio.to_thread(seed_brands, brands, (), demo=True)
        sources.append(
            DemoSource(
                clock,
                seed=settings.demo_seed,
                backfill=demo_backfill(settings),
                rate_per_s=settings.demo_rate_per_s,
            )
        )
    if replay is not None:
        from services.ingest.sources.file import FileSource

        sources.append(FileSource(replay, rate_per_s=replay_rate))
    tasks: list[asyncio.Task[IngestStats]] = []
    for source in sources:
        task = asyncio.create_task(run_source(source, publisher, metrics), name=source.name)
        task.add_done_callback(log_failure)
        task.add_done_callback(_report_done)
        tasks.append(task)
    probes.readiness.append(lambda: _failed_source(tasks))
    endpoint = PushEndpoint(
        publisher=publisher,
        keys=KeyStore(engine, clock),
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        max_items=settings.max_items_per_request,
    )
    stop = asyncio.Event()
    base = f"http://{settings.ingest_host}:{settings.ingest_port}"
    print(f"Sentimon ingest at {base}/api/v1/mentions", flush=True)
    with stop_on_signals(stop):
        try:
            await serve_http(
                create_ingest_app(probes, endpoint),
                sock,
                log_level=settings.log_level,
                stop=stop,
                timeout_s=settings.shutdown_timeout_s,
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await supervisor.close()
            try:
                await close_bus(bus, producer)
            finally:
                engine.dispose()
            log.info("ingest stopped")


def _report_done(task: asyncio.Task[IngestStats]) -> None:
    if not task.cancelled() and task.exception() is None:
        s = task.result()
        log.info(
            "source %s ended: %d read, %d accepted, %d invalid, %d duplicate",
            task.get_name(),
            s.received,
            s.accepted,
            s.invalid,
            s.duplicates,
        )


def _failed_source(tasks: list[asyncio.Task[IngestStats]]) -> str | None:
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            return f"ingest: source {task.get_name()} failed: {task.exception()!r}"[:300]
    return None
