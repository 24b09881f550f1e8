"""The ingest worker: a source's mentions, deduplicated, onto the raw topic.

The pure parts (validation in ``normalise``, ``RecentKeys``) are separate; this is the
async shell that moves items and counts what happened to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.core.metrics import Metrics
from services.ingest.accept import MentionPublisher, accept
from services.ingest.sources.protocol import Source

__all__ = ["IngestStats", "MentionPublisher", "run_source"]


@dataclass(slots=True)
class IngestStats:
    received: int = 0
    accepted: int = 0
    invalid: int = 0
    duplicates: int = 0


async def run_source(
    source: Source,
    publisher: MentionPublisher,
    metrics: Metrics,
    *,
    on_item: Callable[[IngestStats], None] | None = None,
) -> IngestStats:
    """Drain ``source`` into the raw topic; returns when the source ends (or is cancelled).

    Each item takes the one accept path (``services.ingest.accept``): invalid records
    are logged with their position and counted, never produced.
    """
    stats = IngestStats()
    async for item in source.items():
        stats.received += 1
        outcome = await accept([item], channel=source.name, publisher=publisher, metrics=metrics)
        stats.accepted += outcome.accepted
        stats.duplicates += outcome.duplicates
        stats.invalid += len(outcome.invalid)
        if on_item is not None:
            on_item(stats)
    return stats
