"""Wiring the connectors into a process: credentials from the ingest settings, the
brands from the store, configurations from ``sources.yaml`` and the database."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy import Engine

from services.core.brands import BrandDefinition
from services.core.clock import Clock
from services.core.metrics import Metrics
from services.core.storage.brands import BrandStore
from services.ingest.settings import IngestSettings
from services.ingest.sources.base import Credentials, Runtime, StoredBrands
from services.ingest.sources.config import SourceConfig, load_sources_file
from services.ingest.sources.store import SourceStore
from services.ingest.sources.supervisor import SourceSupervisor
from services.ingest.worker import MentionPublisher

log = logging.getLogger(__name__)


def credentials_from(settings: IngestSettings) -> Credentials:
    return Credentials(
        x_bearer_token=settings.x_bearer_token,
        reddit_client_id=settings.reddit_client_id,
        reddit_client_secret=settings.reddit_client_secret,
        reddit_user_agent=settings.reddit_user_agent,
        mastodon_tokens=dict(settings.mastodon_tokens),
    )


def build_supervisor(
    settings: IngestSettings,
    *,
    publisher: MentionPublisher,
    engine: Engine,
    clock: Clock,
    metrics: Metrics,
    brands: BrandStore,
) -> SourceSupervisor:
    def load() -> list[BrandDefinition]:
        return [b.definition for b in brands.list()]

    runtime = Runtime(
        clock=clock,
        credentials=credentials_from(settings),
        brands=StoredBrands(load, brands.version, clock),
    )
    return SourceSupervisor(publisher, SourceStore(engine, clock), metrics, runtime)


async def start_configured_sources(
    supervisor: SourceSupervisor, store: SourceStore, sources_file: Path | None
) -> list[SourceConfig]:
    """Add or update the sources of ``sources_file`` in the store, then start every
    stored source (those added through the API too). Raises ``SourceConfigError`` for a
    bad file, before anything starts."""
    if sources_file is not None:
        configs = await asyncio.to_thread(load_sources_file, sources_file)
        for config in configs:
            await asyncio.to_thread(store.upsert, config)
    stored = await asyncio.to_thread(store.list)
    await supervisor.start_all(stored)
    if stored:
        log.info("sources: %s", ", ".join(f"{c.name} ({c.kind})" for c in stored))
    return stored
