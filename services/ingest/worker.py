"""The ingest worker: a source's mentions, deduplicated, onto the raw topic.

The pure parts (validation in ``normalise``, ``RecentKeys``) are separate; this is the
async shell that moves items and counts what happened to them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

from services.core.bus.protocol import Producer
from services.core.metrics import Metrics
from services.core.models import Mention
from services.core.topics import RAW, mention_key
from services.ingest.dedupe import RecentKeys
from services.ingest.sources.protocol import InvalidRecord, Source

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestStats:
    received: int = 0
    accepted: int = 0
    invalid: int = 0
    duplicates: int = 0


class MentionPublisher:
    """Dedupes and produces mentions; shared by the source workers and the HTTP push."""

    def __init__(self, producer: Producer, dedupe: RecentKeys, metrics: Metrics) -> None:
        self._producer = producer
        self._dedupe = dedupe
        self._metrics = metrics
        self._produced = metrics.messages_produced.labels(RAW)
        # Labelled children cached per source: ``labels()`` is a dict lookup plus a lock.
        self._accepted: dict[str, Counter] = {}
        self._duplicate: dict[str, Counter] = {}

    async def publish(self, mention: Mention, source_label: str) -> bool:
        """Produce ``mention`` unless it was seen recently; True if produced."""
        key = mention.key
        if self._dedupe.seen(key):
            dup = self._duplicate.get(source_label)
            if dup is None:
                dup = self._duplicate[source_label] = self._metrics.mentions_rejected.labels(
                    source_label, "duplicate"
                )
            dup.inc()
            return False
        try:
            await self._producer.send(
                RAW, mention.model_dump_json().encode(), key=mention_key(*key)
            )
        except BaseException:
            self._dedupe.forget(key)
            raise
        self._produced.inc()
        acc = self._accepted.get(source_label)
        if acc is None:
            acc = self._accepted[source_label] = self._metrics.mentions_accepted.labels(
                source_label
            )
        acc.inc()
        return True


async def run_source(
    source: Source,
    publisher: MentionPublisher,
    metrics: Metrics,
    *,
    on_item: Callable[[IngestStats], None] | None = None,
) -> IngestStats:
    """Drain ``source`` into the raw topic; returns when the source ends (or is cancelled).

    Invalid records are logged with their position and counted, never produced.
    """
    stats = IngestStats()
    received: dict[str, Counter] = {}
    async for item in source.items():
        stats.received += 1
        if isinstance(item, InvalidRecord):
            stats.invalid += 1
            metrics.mentions_received.labels(source.name).inc()
            metrics.mentions_rejected.labels(source.name, "invalid").inc()
            log.warning("source %s: %s rejected: %s", source.name, item.position, item.error)
        else:
            counter = received.get(item.source)
            if counter is None:
                counter = received[item.source] = metrics.mentions_received.labels(item.source)
            counter.inc()
            if await publisher.publish(item, item.source):
                stats.accepted += 1
            else:
                stats.duplicates += 1
        if on_item is not None:
            on_item(stats)
    return stats
