"""Accepting mentions: the one path every way in takes (HTTP push, file replay, the
demo, the platform connectors).

A batch of source items is counted received, each invalid record counted rejected
(and logged with where it came from), each mention deduplicated and produced to the
raw topic. The ``source`` label of every ingest metric means one thing: the platform a
mention is from (its ``source`` field); a record too broken to say is counted under the
``channel`` it came through (``http``, ``file``, ``demo`` or a connector's platform), a
name from the same list. So received = accepted + rejected, per label.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from services.core.bus.protocol import Producer
from services.core.metrics import Metrics
from services.core.models import Mention
from services.core.topics import RAW, mention_key
from services.ingest.dedupe import RecentKeys
from services.ingest.sources.protocol import InvalidRecord, SourceItem

log = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class Accepted:
    """What became of a batch: produced, duplicates, and the invalid records (in order)."""

    accepted: int
    duplicates: int
    invalid: tuple[tuple[int, InvalidRecord], ...]


async def accept(
    items: Sequence[SourceItem], *, channel: str, publisher: MentionPublisher, metrics: Metrics
) -> Accepted:
    """Produce the batch's valid mentions (deduplicated) and count everything by ``channel``.

    Returns once every accepted mention is durable on the bus (the caller may then answer
    202 or store a checkpoint). Produced together: on Kafka each send waits for the
    broker's acknowledgement, and one at a time would cap a batch at one round trip per
    mention; each is deduplicated when it starts, in order, so a repeat within the batch
    is still a duplicate. Raises what the bus raises; nothing after a failure counts.
    """
    invalid: list[tuple[int, InvalidRecord]] = []
    publishing = []
    received: dict[str, int] = {}
    for i, item in enumerate(items):
        if isinstance(item, InvalidRecord):
            invalid.append((i, item))
            log.warning("%s: %s rejected: %s", channel, item.position, item.error)
        else:
            received[item.source] = received.get(item.source, 0) + 1
            publishing.append(publisher.publish(item, item.source))
    if invalid:
        received[channel] = received.get(channel, 0) + len(invalid)
        metrics.mentions_rejected.labels(channel, "invalid").inc(len(invalid))
    for source, n in received.items():
        metrics.mentions_received.labels(source).inc(n)
    if len(publishing) == 1:  # one at a time (a replay): no task to gather
        produced = [await publishing[0]]
    else:
        produced = list(await asyncio.gather(*publishing))
    accepted = sum(produced)
    return Accepted(accepted, len(produced) - accepted, tuple(invalid))
