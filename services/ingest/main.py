"""``sentimon ingest``: sources and the HTTP push endpoint, producing to Kafka.

The same ``MentionPublisher`` and sources as embedded mode, over a Kafka producer
(idempotent, ``acks=all``: a push is answered only once its mentions are durable on
the broker). HTTP: ``POST /api/v1/mentions`` (the API's push route, same auth and
limits), ``/healthz``, ``/readyz``, ``/metrics``.

Sources: the demo, a file replay, and the platform connectors configured in
``SENTIMON_SOURCES_FILE`` or stored through the API's ``/api/v1/sources`` (read at start:
restart the ingest process after changing them).

SIGTERM: stop accepting requests and let those in progress finish, stop the sources,
flush the producer, leave.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import APIRouter, FastAPI, status

from services.api.routes import mentions
from services.api.settings import ApiSettings
from services.api.state import AppState
from services.core.storage.db import make_engine
from services.distributed import (
    close_bus,
    connect_bus,
    probe_app,
    process_state,
    serve_http,
    stop_on_signals,
)
from services.embedded import _log_failure, bind_socket, demo_backfill, seed_brands
from services.ingest.dedupe import RecentKeys
from services.ingest.settings import IngestProcessSettings
from services.ingest.sources.protocol import Source
from services.ingest.sources.runner import build_supervisor, start_configured_sources
from services.ingest.sources.store import SourceStore
from services.ingest.worker import IngestStats, MentionPublisher, run_source

log = logging.getLogger(__name__)


def create_ingest_app(state: AppState) -> FastAPI:
    """Only what an ingest process serves: the push route, health and metrics."""
    app = probe_app(state, "Sentimon ingest")
    push = APIRouter(prefix="/api/v1/mentions", tags=["mentions"])
    push.add_api_route(
        "",
        mentions.push_mentions,
        methods=["POST"],
        status_code=status.HTTP_202_ACCEPTED,
        response_model=mentions.IngestResponse,
    )
    app.include_router(push)
    return app


def api_settings_for(settings: IngestProcessSettings) -> ApiSettings:
    """The push route's limits (``SENTIMON_MAX_BODY_BYTES``, …) at the ingest's address."""
    return ApiSettings(
        host=settings.ingest_host,
        port=settings.ingest_port,
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        log_level=settings.log_level,
    )


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
    state = process_state(api_settings_for(settings), engine)
    clock, metrics = state.clock, state.metrics
    bus = await connect_bus(settings, metrics, "sentimon-ingest")
    producer = await bus.producer()
    publisher = MentionPublisher(producer, RecentKeys(settings.dedupe_capacity), metrics)
    state.publisher = publisher
    # Platform connectors (RSS, Mastodon, …): those of SENTIMON_SOURCES_FILE and those
    # stored through /api/v1/sources, as of this start; checkpoints resume them.
    supervisor = build_supervisor(
        settings,
        publisher=publisher,
        engine=engine,
        clock=clock,
        metrics=metrics,
        brands=state.brands,
    )
    state.sources = supervisor
    await start_configured_sources(supervisor, SourceStore(engine, clock), settings.sources_file)
    sources: list[Source] = []
    if settings.demo:
        from services.ingest.sources.demo import DemoSource

        await asyncio.to_thread(seed_brands, state.brands, (), demo=True)
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
        task.add_done_callback(_log_failure)
        task.add_done_callback(_report_done)
        tasks.append(task)
    state.readiness.append(lambda: _failed_source(tasks))
    stop = asyncio.Event()
    base = f"http://{settings.ingest_host}:{settings.ingest_port}"
    print(f"Sentimon ingest at {base}/api/v1/mentions", flush=True)
    with stop_on_signals(stop):
        try:
            await serve_http(
                create_ingest_app(state),
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
