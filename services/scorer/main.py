"""``sentimon scorer``: one member of the scorer consumer group, over Kafka.

The same pipeline as embedded mode (``build_pipeline``: score → store with rollups →
produce ``mentions.scored`` → commit), reading ``mentions.raw`` from Kafka. Start more
processes to scale: the raw topic's partitions are shared among the group's members.

HTTP (for probes and Prometheus): ``/healthz``; ``/readyz`` (503 while the database or
the Kafka broker is unreachable, the database behind, or a consumer halted);
``/metrics`` (behind the scrape token when ``SENTIMON_METRICS_TOKEN`` is set: 401
without it).

SIGTERM: the batch in hand is stored, produced and committed, then the process leaves
the group (its partitions go to the other members at once). A consumer that halts
(a burst of poison messages) makes the process exit with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.core.bus.protocol import Producer
from services.core.clock import SystemClock
from services.core.metrics import Metrics
from services.core.settings import MetricsSettings
from services.core.storage.db import make_engine
from services.runtime.bus import close_bus, connect_bus
from services.runtime.probes import Probes, ReadinessCheck, probe_app
from services.runtime.process import bind_socket, log_failure, serve_http, stop_on_signals
from services.scorer.pipeline import ScorerPipeline, build_pipeline
from services.scorer.settings import ScorerProcessSettings

log = logging.getLogger(__name__)


class ScorerHalted(RuntimeError):
    """A consumer of this process stopped for good (its reason is in the message)."""


def pipeline_problem(pipeline: ScorerPipeline) -> str | None:
    for loop in pipeline.loops:
        if loop.halted is not None:
            return f"consumer group {loop.group} halted: {loop.halted}"
    return None


def create_probe_app(
    settings: MetricsSettings,
    engine: Engine,
    metrics: Metrics,
    pipeline: ScorerPipeline,
    checks: Sequence[ReadinessCheck] = (),
) -> FastAPI:
    """``/healthz``, ``/metrics`` and ``/readyz``: not ready while the database is
    unreachable or behind, once a consumer halted, while one makes no progress, or while
    one of ``checks`` names a problem (the broker's); ``/metrics`` requires the metrics
    token when the settings have one."""
    probes = Probes(
        engine,
        metrics,
        [*checks, pipeline.progress_problem],
        metrics_token=settings.metrics_token,
    )
    return probe_app(probes, "Sentimon scorer")


async def run_scorer(settings: ScorerProcessSettings) -> None:
    """Consume until SIGTERM/SIGINT, then finish and commit the batch in hand.

    Raises ``ScorerHalted`` if a consumer halts, ``PortInUseError`` before anything
    starts if the probe address cannot be bound.
    """
    sock = bind_socket(settings.scorer_host, settings.scorer_port)
    engine = make_engine(settings.resolved_database_url())
    metrics = Metrics(CollectorRegistry())
    bus = await connect_bus(settings, metrics, "sentimon-scorer")
    producer: Producer = await bus.producer()
    pipeline = build_pipeline(
        settings, bus=bus, producer=producer, engine=engine, clock=SystemClock(), metrics=metrics
    )
    await asyncio.to_thread(pipeline.matchers.reload, True)
    # The lexicon's workers loaded before the first batch (and before /readyz says ready):
    # started by the first chunk instead, they spent their seconds of start-up CPU while
    # the batch waited.
    await pipeline.runner.start()
    loops = [asyncio.create_task(loop.run(), name=f"loop:{loop.group}") for loop in pipeline.loops]
    for task in loops:
        task.add_done_callback(log_failure)
    stop = asyncio.Event()
    print(
        f"Sentimon scorer consuming from {settings.kafka_bootstrap} "
        f"(probes at http://{settings.scorer_host}:{settings.scorer_port})",
        flush=True,
    )
    http = asyncio.create_task(
        serve_http(
            create_probe_app(settings, engine, metrics, pipeline, [bus.broker_problem]),
            sock,
            log_level="WARNING",
            stop=stop,
            timeout_s=5.0,
        ),
        name="http",
    )
    # The handlers stay installed through the drain: a second SIGTERM does not cut it short.
    with stop_on_signals(stop):
        try:
            stopping = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({stopping, *loops}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        finally:
            stop.set()
            # Each loop finishes the batch in hand (stored, produced), commits it, and leaves.
            for loop in pipeline.loops:
                loop.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*loops, return_exceptions=True), settings.shutdown_timeout_s
                )
            await http
            await asyncio.to_thread(pipeline.runner.close)
            try:
                await close_bus(bus, producer)
            finally:
                engine.dispose()
            log.info("scorer stopped")
    if (problem := pipeline_problem(pipeline)) is not None:
        raise ScorerHalted(problem)
    for task in loops:
        if task in done and not task.cancelled() and (e := task.exception()) is not None:
            raise ScorerHalted(f"{task.get_name()} stopped: {e!r}") from e
