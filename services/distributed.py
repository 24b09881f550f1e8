"""Distributed mode's process shell: what ``sentimon ingest``, ``scorer`` and ``api`` share.

Each service is its own process over Kafka and PostgreSQL; the services' pieces are the
ones embedded mode wires over the in-memory bus (``services.embedded``). This module
holds only the shell around them: the topics, the bus connection, the stop signal, a
small HTTP server, and the prestart wait for the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from services.api.settings import ApiSettings
from services.api.state import AppState
from services.core.bus.protocol import Bus, Producer, TopicSpec
from services.core.clock import SystemClock
from services.core.metrics import Metrics
from services.core.settings import KafkaSettings
from services.core.topics import DLQ, RAW, SCORED

log = logging.getLogger(__name__)


def distributed_topics(partitions: int) -> tuple[TopicSpec, ...]:
    """The topics with ``partitions`` each (the dead-letter topic keeps one: it is small
    and its order is the order things went wrong)."""
    return (
        TopicSpec(RAW, partitions=partitions),
        TopicSpec(SCORED, partitions=partitions),
        TopicSpec(DLQ, partitions=1),
    )


async def connect_bus(settings: KafkaSettings, metrics: Metrics, client_id: str) -> Bus:
    """The Kafka bus named by the settings, with the topics created if missing.

    Waits (with backoff, saying so in the log and in
    ``sentimon_bus_broker_unavailable_total``) until the broker answers.
    """
    from services.core.bus.kafka import KafkaBus

    bus = await KafkaBus.connect(settings.kafka_bootstrap, metrics=metrics, client_id=client_id)
    await bus.create_topics(distributed_topics(settings.kafka_partitions))
    return bus


async def close_bus(bus: Bus, producer: Producer) -> None:
    """Flush what was produced, then close the producer and the bus."""
    try:
        await producer.flush()
    finally:
        await producer.close()
        await bus.close()


def process_state(api: ApiSettings, engine: Engine) -> AppState:
    """What a process's HTTP routes need (keys for auth, the engine for ``/readyz``,
    its own metrics registry for ``/metrics``)."""
    from prometheus_client import CollectorRegistry

    from services.core.storage.brands import BrandStore
    from services.core.storage.keys import KeyStore

    clock = SystemClock()
    return AppState(
        settings=api,
        engine=engine,
        clock=clock,
        metrics=Metrics(CollectorRegistry()),
        keys=KeyStore(engine, clock),
        brands=BrandStore(engine, clock),
    )


def probe_app(state: AppState, title: str) -> FastAPI:
    """An app with ``/healthz``, ``/readyz`` (database reachable and migrated, and every
    check in ``state.readiness``) and ``/metrics``: the API's own health routes."""
    from services.api import errors
    from services.api.routes import health

    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sentimon = state
    errors.install(app)
    app.add_exception_handler(OperationalError, database_unavailable)
    app.include_router(health.router)
    return app


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with ``Retry-After`` rather than a bare 500 while the database is away (a
    client of at-least-once ingest retries; nothing was produced for it)."""
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
    message = "unavailable, try again shortly"
    return JSONResponse(
        {"detail": f"database: {message}", "errors": [{"field": "database", "message": message}]},
        status_code=503,
        headers={"Retry-After": "5"},
    )


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM or SIGINT while inside the block (a second one still waits
    for the graceful stop: a process manager that means it sends SIGKILL)."""
    loop = asyncio.get_running_loop()

    def _on_signal(sig: signal.Signals) -> None:
        log.info("%s: stopping gracefully", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the process's stop event owns the signals


async def serve_http(
    app: Any, sock: socket.socket, *, log_level: str, stop: asyncio.Event, timeout_s: float
) -> None:
    """Serve ``app`` on ``sock`` until ``stop`` is set; requests in progress then get up to
    ``timeout_s`` to finish."""
    config = uvicorn.Config(
        app,
        log_level=log_level.lower(),
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=int(max(1, timeout_s)),
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="http")
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    server.should_exit = True
    await serving


def wait_for_database(
    engine: Engine,
    timeout_s: float,
    *,
    interval_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """Return once the database answers ``SELECT 1`` (the number of attempts it took).

    Raises ``TimeoutError`` with the last connection error after ``timeout_s``. Used
    by the prestart step (``sentimon migrate --wait``): in a container the database
    may start after the service.
    """
    deadline = monotonic() + timeout_s
    attempts = 0
    while True:
        attempts += 1
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return attempts
        except DBAPIError as e:
            if monotonic() >= deadline:
                raise TimeoutError(
                    f"database not reachable after {timeout_s:g} s ({attempts} attempts): "
                    f"{type(e).__name__}: {e}"
                ) from e
            if attempts % 10 == 1:  # said at once, then now and then: not every half second
                log.warning("waiting for the database: %s: %s", type(e).__name__, e)
        sleep(min(interval_s, max(0.0, deadline - monotonic())))
