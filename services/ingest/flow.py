"""The ingest service's flow, assembled in one place: ``build_ingest``.

    sources (connectors from the store, the demo, a file) ─┐
    HTTP push (POST /api/v1/mentions) ────────────────────┴─► accept: validate → dedupe
                                                               → produce mentions.raw

Every way in takes the one accept path (``accept.py``); the connectors' supervisor keeps
the running connectors in step with the store. ``sentimon ingest`` and the embedded
launcher both build it here and differ only in the bus they hand it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from services.core.bus.protocol import Producer
from services.core.clock import Clock
from services.core.metrics import Metrics
from services.core.models import Mention
from services.core.storage.brands import BrandStore
from services.core.storage.keys import KeyStore
from services.core.storage.sources import SourceStore
from services.core.stream.trusted import TrustedMessages
from services.ingest.accept import MentionPublisher
from services.ingest.dedupe import RecentKeys
from services.ingest.http import PushEndpoint
from services.ingest.seed import demo_backfill
from services.ingest.settings import IngestSettings
from services.ingest.sources.protocol import Source
from services.ingest.sources.supervisor import SourceSupervisor
from services.ingest.sources.wiring import build_supervisor, start_configured_sources
from services.ingest.worker import IngestStats, run_source
from services.runtime.process import log_failure

log = logging.getLogger(__name__)


@dataclass
class Ingest:
    """A built ingest: ``start`` its connectors, ``add_source`` more, ``close`` at the end."""

    settings: IngestSettings
    publisher: MentionPublisher
    push: PushEndpoint
    connectors: SourceSupervisor
    store: SourceStore
    metrics: Metrics
    tasks: list[asyncio.Task[IngestStats]] = field(default_factory=list)

    async def start(self) -> None:
        """Apply the sources file, start every stored source, and watch the store."""
        await start_configured_sources(
            self.connectors,
            self.store,
            self.settings.sources_file,
            self.settings.source_url_policy(),
        )

    def add_source(
        self, source: Source, on_item: Callable[[IngestStats], None] | None = None
    ) -> asyncio.Task[IngestStats]:
        """Drain ``source`` (the demo, a file) through the accept path, in the background."""
        task = asyncio.create_task(
            run_source(source, self.publisher, self.metrics, on_item=on_item),
            name=f"source:{source.name}",
        )
        task.add_done_callback(log_failure)
        task.add_done_callback(_report_done)
        self.tasks.append(task)
        return task

    def problem(self) -> str | None:
        """The first source that failed, for readiness."""
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                return f"ingest: {task.get_name()} failed: {task.exception()!r}"[:300]
        return None

    async def close(self) -> None:
        """Stop the connectors and the sources (what they produced is on the bus)."""
        await self.connectors.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def build_ingest(
    settings: IngestSettings,
    *,
    producer: Producer,
    engine: Engine,
    clock: Clock,
    metrics: Metrics,
    brands: BrandStore,
    keys: KeyStore,
    bus_problem: Callable[[], str | None] | None = None,
    push_timeout_s: float | None = None,
    trusted: TrustedMessages[Mention] | None = None,
) -> Ingest:
    """Chain the ingest: sources and the push endpoint → accept (validate, dedupe) →
    produce to ``mentions.raw`` on ``producer``. Nothing runs until ``start``.

    A push is answered 503 at once while ``bus_problem()`` names one, and when the bus has
    not taken it within ``push_timeout_s`` (``None``: no bound). ``trusted``: where each
    message sent is registered with its validated mention, for a scorer in this process
    (``TrustedMessages``)."""
    publisher = MentionPublisher(producer, RecentKeys(settings.dedupe_capacity), metrics, trusted)
    push = PushEndpoint(
        publisher=publisher,
        keys=keys,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        max_items=settings.max_items_per_request,
        bus_problem=bus_problem,
        timeout_s=push_timeout_s,
    )
    connectors = build_supervisor(
        settings, publisher=publisher, engine=engine, clock=clock, metrics=metrics, brands=brands
    )
    return Ingest(settings, publisher, push, connectors, SourceStore(engine, clock), metrics)


def demo_source(settings: IngestSettings, clock: Clock) -> Source:
    """The demo stream (fictional brands), with its backfill and its opening incident."""
    from services.ingest.sources.demo import OPENING_DELAY, DemoSource

    return DemoSource(
        clock,
        seed=settings.demo_seed,
        backfill=demo_backfill(settings),
        rate_per_s=settings.demo_rate_per_s,
        opening=OPENING_DELAY if settings.demo_opening_incident else None,
    )


def file_source(path: Path, rate: float | None) -> Source:
    """A JSON Lines file replayed at ``rate`` mentions a second (``None``: at once)."""
    from services.ingest.sources.file import FileSource

    return FileSource(path, rate_per_s=rate)


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
