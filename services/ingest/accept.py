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
from services.core.stream.trusted import TrustedMessages
from services.core.topics import RAW, mention_key
from services.ingest.dedupe import RecentKeys
from services.ingest.sources.protocol import InvalidRecord, SourceItem

log = logging.getLogger(__name__)


class _Tally:
    """Mentions produced and duplicates dropped, per source label: counted as they happen,
    added to the metrics once per batch (a counter's ``inc`` takes a lock)."""

    __slots__ = ("accepted", "duplicates")

    def __init__(self) -> None:
        self.accepted: dict[str, int] = {}
        self.duplicates: dict[str, int] = {}


class MentionPublisher:
    """Dedupes and produces mentions; shared by the source workers and the HTTP push.

    With ``trusted`` (embedded mode: the scorer consumes in this process), each message
    sent is registered there with its validated mention, so the scorer need not parse it.
    """

    def __init__(
        self,
        producer: Producer,
        dedupe: RecentKeys,
        metrics: Metrics,
        trusted: TrustedMessages[Mention] | None = None,
    ) -> None:
        self._producer = producer
        self._dedupe = dedupe
        self._metrics = metrics
        self._trusted = trusted
        self._produced = metrics.messages_produced.labels(RAW)
        # Labelled children cached per source: ``labels()`` is a dict lookup plus a lock.
        self._accepted: dict[str, Counter] = {}
        self._duplicate: dict[str, Counter] = {}

    async def publish(self, mention: Mention, source_label: str) -> bool:
        """Produce ``mention`` unless it was seen recently; True if produced."""
        tally = _Tally()
        try:
            return await self._publish(mention, source_label, tally)
        finally:
            self._count(tally)

    async def _publish(self, mention: Mention, source_label: str, tally: _Tally) -> bool:
        key = mention.key
        if self._dedupe.seen(key):
            tally.duplicates[source_label] = tally.duplicates.get(source_label, 0) + 1
            return False
        value = mention.model_dump_json().encode()
        if self._trusted is not None:
            self._trusted.register(value, mention)
        try:
            await self._producer.send(RAW, value, key=mention_key(*key))
        except BaseException:
            self._dedupe.forget(key)
            if self._trusted is not None:
                self._trusted.discard(value)
            raise
        tally.accepted[source_label] = tally.accepted.get(source_label, 0) + 1
        return True

    def _count(self, tally: _Tally) -> None:
        for label, n in tally.duplicates.items():
            dup = self._duplicate.get(label)
            if dup is None:
                dup = self._duplicate[label] = self._metrics.mentions_rejected.labels(
                    label, "duplicate"
                )
            dup.inc(n)
        produced = 0
        for label, n in tally.accepted.items():
            acc = self._accepted.get(label)
            if acc is None:
                acc = self._accepted[label] = self._metrics.mentions_accepted.labels(label)
            acc.inc(n)
            produced += n
        if produced:
            self._produced.inc(produced)


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
    is still a duplicate. Raises what the bus raised, once every send of the batch has
    settled; the mentions produced count as accepted, once per batch.
    """
    invalid: list[tuple[int, InvalidRecord]] = []
    mentions: list[Mention] = []
    received: dict[str, int] = {}
    for i, item in enumerate(items):
        if isinstance(item, InvalidRecord):
            invalid.append((i, item))
            log.warning("%s: %s rejected: %s", channel, item.position, item.error)
        else:
            received[item.source] = received.get(item.source, 0) + 1
            mentions.append(item)
    if invalid:
        received[channel] = received.get(channel, 0) + len(invalid)
        metrics.mentions_rejected.labels(channel, "invalid").inc(len(invalid))
    for source, n in received.items():
        metrics.mentions_received.labels(source).inc(n)
    tally = _Tally()
    try:
        if len(mentions) == 1:  # one at a time (a paced replay): no task to gather
            produced = [await publisher._publish(mentions[0], mentions[0].source, tally)]
        else:
            # Every send settles before a failure is raised, so that what was produced
            # is counted (and the caller does not return while sends still run).
            results = await asyncio.gather(
                *(publisher._publish(m, m.source, tally) for m in mentions),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            produced = [r for r in results if not isinstance(r, BaseException)]
    finally:
        publisher._count(tally)
    accepted = sum(produced)
    return Accepted(accepted, len(produced) - accepted, tuple(invalid))
