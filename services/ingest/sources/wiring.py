"""Wiring the connectors into a process: credentials from the ingest settings, the
brands from the store, configurations from ``sources.yaml`` and the database (watched:
sources changed through the API reach a running ingest within ``sources_refresh_s``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import Engine

from services.core.brands import BrandDefinition
from services.core.clock import Clock
from services.core.metrics import Metrics
from services.core.sources import SourceConfig, SourceUrlPolicy
from services.core.storage.brands import BrandStore
from services.core.storage.sources import SourceStore
from services.ingest.settings import IngestSettings
from services.ingest.sources.base import Credentials, Runtime, StoredBrands
from services.ingest.sources.config import load_sources_file
from services.ingest.sources.supervisor import SourceSupervisor
from services.ingest.worker import MentionPublisher


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
        urls=settings.source_url_policy(),
    )
    return SourceSupervisor(
        publisher,
        SourceStore(engine, clock),
        metrics,
        runtime,
        refresh_s=settings.sources_refresh_s,
    )


async def start_configured_sources(
    supervisor: SourceSupervisor,
    store: SourceStore,
    sources_file: Path | None,
    policy: SourceUrlPolicy,
) -> list[SourceConfig]:
    """Add or update the sources of ``sources_file`` in the store, start every stored
    source (those added through the API too), then keep them in step with the store
    until ``supervisor.close()`` (``start_watching``). Raises ``SourceConfigError`` for a
    bad file (a URL ``policy`` refuses included), before anything starts."""
    if sources_file is not None:
        configs = await asyncio.to_thread(load_sources_file, sources_file, policy)
        for config in configs:
            await asyncio.to_thread(store.upsert, config)
    await supervisor.reconcile()
    supervisor.start_watching()
    return await asyncio.to_thread(store.list)
