"""Embedded mode: ingest, scorer and API in one process over the in-memory bus.

The same services as in distributed mode, wired to an in-memory bus instead of Kafka.
The raw and dead-letter topics are journaled to ``<data dir>/bus`` (``JournaledBus``):
a push is answered 202 only once its mentions are written there, and a start replays
what the last run accepted and did not store, so killing the process loses nothing it
answered 202 for (a power cut can lose the last second, as with one Kafka broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.alerts.runtime import AlertRuntime
from services.alerts.settings import AlertSettings
from services.api.settings import ApiSettings
from services.api.state import AppState
from services.core.auth import Role
from services.core.brandfile import BrandEntry
from services.core.bus.journal import JournaledBus
from services.core.bus.memory import MemoryBus
from services.core.bus.protocol import Bus, Producer, TopicPartition
from services.core.clock import Clock, SystemClock
from services.core.metrics import Metrics
from services.core.models import Mention
from services.core.storage.alerts import AlertRuleStore
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.storage.keys import KeyStore
from services.core.stream.trusted import TrustedMessages
from services.core.topics import DEFAULT_TOPICS, DLQ, RAW
from services.ingest.flow import Ingest, build_ingest, demo_source
from services.ingest.http import mount_push
from services.ingest.seed import seed_brands, seed_demo_rules
from services.ingest.settings import IngestSettings
from services.ingest.sources.protocol import Source
from services.ingest.worker import IngestStats, MentionPublisher
from services.runtime.process import (
    PortInUseError,
    bind_socket,
    freeze_startup_heap,
    log_failure,
    steady_allocator,
)
from services.scorer.pipeline import ScorerPipeline, build_pipeline
from services.scorer.settings import ScorerSettings

__all__ = ["Embedded", "PortInUseError", "replay_file", "run_embedded"]

log = logging.getLogger(__name__)

ALL_PARTITIONS = tuple(
    TopicPartition(spec.name, p) for spec in DEFAULT_TOPICS for p in range(spec.partitions)
)
# The mentions the ingest sent that the scorer has not yet read, kept with their
# validated form so that the scorer does not parse them again; beyond this many, the
# oldest are forgotten (and parsed as usual). A mention is about 2.5 KB here.
TRUSTED_CAPACITY = 32_768


@dataclass
class Embedded:
    """One Sentimon instance in this process. Use as ``async with Embedded(...) as e:``."""

    ingest: IngestSettings
    scorer: ScorerSettings
    api: ApiSettings
    clock: Clock = field(default_factory=SystemClock)
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry())
    alerts: AlertSettings = field(default_factory=AlertSettings)

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.registry)
        self.engine: Engine = make_engine(self.scorer.resolved_database_url())
        # Opened in ``start``: the journal is read from disk then.
        self.bus: Bus = MemoryBus()
        self.keys = KeyStore(self.engine, self.clock)
        self.brands = BrandStore(self.engine, self.clock)
        # Shared by the ingest (registers what it sends) and the scorer (takes it back).
        self.trusted = TrustedMessages[Mention](TRUSTED_CAPACITY)
        self._loop_tasks: list[asyncio.Task[None]] = []
        self._producer: Producer | None = None
        self.pipeline: ScorerPipeline | None = None
        self.flow: Ingest | None = None  # the ingest service (services/ingest/flow.py)
        # Spike alerts and their webhooks (issue 6): evaluator and delivery worker.
        self.alert_runtime = AlertRuntime(self.engine, self.alerts, self.clock, self.metrics)

    async def __aenter__(self) -> Embedded:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self.scorer.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(migrate, self.engine)
        if self.ingest.journal:
            journaled = await JournaledBus.open(
                self.scorer.data_dir / "bus", DEFAULT_TOPICS, journaled=(RAW, DLQ)
            )
            if journaled.replayed.total:
                log.warning(
                    "replaying %d mentions accepted before the last stop and not yet stored",
                    journaled.replayed.total,
                )
            self.bus = journaled
        else:
            await self.bus.create_topics(DEFAULT_TOPICS)
        self._producer = await self.bus.producer()
        self.flow = build_ingest(
            self.ingest,
            producer=self._producer,
            engine=self.engine,
            clock=self.clock,
            metrics=self.metrics,
            brands=self.brands,
            keys=self.keys,
            trusted=self.trusted,
        )
        # Sources added, changed or removed in the store (through the API) reach the
        # running connectors within sources_refresh_s.
        self.flow.connectors.start_watching()
        self.pipeline = build_pipeline(
            self.scorer,
            bus=self.bus,
            producer=self._producer,
            engine=self.engine,
            clock=self.clock,
            metrics=self.metrics,
            trusted=self.trusted,
        )
        await asyncio.to_thread(self.pipeline.matchers.reload, True)
        for loop in self.pipeline.loops:
            task = asyncio.create_task(loop.run(), name=f"loop:{loop.group}")
            task.add_done_callback(log_failure)
            self._loop_tasks.append(task)
        if self.alerts.alerts_enabled:
            self.alert_runtime.start()

    @property
    def publisher(self) -> MentionPublisher:
        assert self.flow is not None, "start() first"
        return self.flow.publisher

    def add_source(
        self, source: Source, on_item: Callable[[IngestStats], None] | None = None
    ) -> asyncio.Task[IngestStats]:
        assert self.flow is not None, "start() first"
        return self.flow.add_source(source, on_item)

    def app_state(self) -> AppState:
        state = AppState(
            settings=self.api,
            engine=self.engine,
            clock=self.clock,
            metrics=self.metrics,
            keys=self.keys,
            brands=self.brands,
            alerts=self.alerts,
            wake_delivery=self.alert_runtime.wake,
            backtest=self.alert_runtime.backtest,
        )
        state.readiness.append(self._pipeline_problem)
        return state

    def create_app(self) -> FastAPI:
        """The API's app with the ingest's push endpoint mounted: one process serves both."""
        from services.api.app import create_app

        assert self.flow is not None, "start() first"
        app = create_app(self.app_state())
        mount_push(app, self.flow.push)
        return app

    def _pipeline_problem(self) -> str | None:
        if self.pipeline is None:
            return "pipeline: not started"
        if (problem := self.pipeline.progress_problem()) is not None:
            return f"pipeline: {problem}"
        return None if self.flow is None else self.flow.problem()

    async def refresh_brands(self) -> None:
        """Make the scorer use the brands in the store now (instead of at its next check)."""
        assert self.pipeline is not None
        await asyncio.to_thread(self.pipeline.matchers.reload, True)

    async def drain(self, timeout_s: float = 60.0) -> None:
        """Wait until every source has ended and everything produced is stored."""
        assert self.pipeline is not None
        if self.flow is not None and self.flow.tasks:
            await asyncio.gather(*self.flow.tasks)
        for loop in self.pipeline.loops:
            await loop.wait_caught_up(
                [tp for tp in ALL_PARTITIONS if tp.topic in loop.topics], timeout_s
            )

    async def stop(self, drain_timeout_s: float = 10.0) -> None:
        await self.alert_runtime.stop()
        if self.flow is not None:
            await self.flow.close()
        if self.pipeline is not None:
            try:
                for loop in self.pipeline.loops:
                    await loop.wait_caught_up(
                        [tp for tp in ALL_PARTITIONS if tp.topic in loop.topics],
                        drain_timeout_s,
                    )
            except Exception as e:  # stopping regardless; say what is left and where
                where = (
                    "kept in the journal for the next start"
                    if isinstance(self.bus, JournaledBus)
                    else "LOST (the journal is off)"
                )
                log.warning("stopped before everything accepted was stored (%r): %s", e, where)
            for loop in self.pipeline.loops:
                loop.stop()
        await asyncio.gather(*self._loop_tasks, return_exceptions=True)
        if self.pipeline is not None:
            await self.pipeline.close()
        if self._producer is not None:
            await self._producer.close()
        await self.bus.close()
        self.engine.dispose()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # run_embedded owns the signals


def ensure_admin_key(keys: KeyStore) -> str | None:
    """On an instance's first start, create an admin key and return it (shown once)."""
    if keys.count_active(Role.ADMIN) > 0:
        return None
    key, _ = keys.create(Role.ADMIN, "first admin (created by sentimon run)")
    return key


async def run_embedded(
    *,
    api: ApiSettings,
    ingest: IngestSettings,
    scorer: ScorerSettings,
    brand_entries: Sequence[BrandEntry] = (),
) -> None:
    """``sentimon run``: serve until interrupted, then drain and stop.

    Raises ``PortInUseError`` before starting anything if the address cannot be bound.
    """
    sock = bind_socket(api.host, api.port)
    async with Embedded(ingest=ingest, scorer=scorer, api=api) as emb:
        await asyncio.to_thread(seed_brands, emb.brands, brand_entries, demo=ingest.demo)
        if ingest.demo:
            rules = AlertRuleStore(emb.engine, emb.clock)
            await asyncio.to_thread(seed_demo_rules, rules, emb.brands)
        await emb.refresh_brands()
        assert emb.flow is not None
        await emb.flow.start()
        admin_key = await asyncio.to_thread(ensure_admin_key, emb.keys)
        if ingest.demo:
            emb.add_source(demo_source(ingest, emb.clock))
        base = f"http://{api.host}:{api.port}"
        print(f"\nSentimon is running at {base}  (API docs: {base}/docs)", flush=True)
        if admin_key is not None:
            print(f"Admin API key (shown only this once, keep it): {admin_key}", flush=True)
            print(f"Open the dashboard, logged in: {base}/login#key={admin_key}\n", flush=True)
        else:
            print(
                f"Log in at {base}/login with an API key "
                "(new one: sentimon keys create --role admin)\n",
                flush=True,
            )
        config = uvicorn.Config(
            emb.create_app(),
            host=api.host,
            port=api.port,
            log_level=api.log_level.lower(),
            access_log=False,
            lifespan="off",
        )
        server = _Server(config)
        # SIGINT and SIGTERM stop the server and then drain; uvicorn's own handling would
        # re-raise SIGTERM after serving and kill the process before the drain.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.handle_exit, sig, None)
        steady_allocator()
        freeze_startup_heap()
        await server.serve(sockets=[sock])
        print("stopping: storing what is in flight…", flush=True)


async def replay_file(
    path: Path,
    *,
    rate: float | None,
    api: ApiSettings,
    ingest: IngestSettings,
    scorer: ScorerSettings,
    brand_entries: Sequence[BrandEntry] = (),
    progress: bool = True,
) -> IngestStats:
    """``sentimon replay``: push a JSON Lines file through the pipeline and wait until stored."""
    from tqdm import tqdm

    from services.ingest.sources.file import FileSource

    total = await asyncio.to_thread(_count_lines, path)
    async with Embedded(ingest=ingest, scorer=scorer, api=api) as emb:
        await asyncio.to_thread(seed_brands, emb.brands, brand_entries, demo=False)
        await emb.refresh_brands()
        with tqdm(total=total, unit=" mentions", disable=not progress, file=sys.stderr) as bar:

            def tick(_stats: IngestStats) -> None:
                bar.update(1)

            task = emb.add_source(FileSource(path, rate_per_s=rate), on_item=tick)
            await emb.drain(timeout_s=max(60.0, total / 100))
        return task.result()


def _count_lines(path: Path) -> int:
    n = 0
    last = b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")  # a last line without a newline counts too
