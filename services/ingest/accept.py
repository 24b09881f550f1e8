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

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from services.core.bus.protocol import KeyedValue, Producer
from services.core.metrics import Metrics
from services.core.models import Mention
from services.core.stream.trusted import TrustedMessages
from services.core.topics import RAW, mention_key
from services.ingest.dedupe import RecentKeys
from services.ingest.sources.protocol import InvalidRecord, SourceItem

log = logging.getLogger(__name__)


def mention_bytes(mention: Mention) -> bytes:
    """``mention.model_dump_json().encode()``: the same bytes, straight from the serializer
    (``model_dump_json`` decodes its bytes to a ``str``, which was then encoded back)."""
    return mention.__pydantic_serializer__.to_json(mention)


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
        value = mention_bytes(mention)
        if self._trusted is not None:
            self._trusted.register(value, mention)
        try:
            await self._producer.send(RAW, value, key=mention_key(*key))
        except BaseException:
            self._unpublish(key, value)
            raise
        tally.accepted[source_label] = tally.accepted.get(source_label, 0) + 1
        return True

    async def _publish_many(self, mentions: Sequence[Mention], tally: _Tally) -> list[bool]:
        """``_publish`` of each mention (under its ``source``), in one ``send_many``.

        Each is deduplicated in order, so a repeat within the batch is a duplicate. Raises
        the first failure once the batch has settled; a mention that was not stored is
        forgotten by the deduplication, so that a retry produces it.
        """
        dedupe = self._dedupe
        trusted = self._trusted
        produced: list[bool] = []
        sending: list[tuple[Mention, bytes]] = []
        records: list[KeyedValue] = []
        duplicates = tally.duplicates
        for mention in mentions:
            key = mention.key
            if dedupe.seen(key):
                duplicates[mention.source] = duplicates.get(mention.source, 0) + 1
                produced.append(False)
                continue
            value = mention_bytes(mention)
            if trusted is not None:
                trusted.register(value, mention)
            sending.append((mention, value))
            records.append((mention_key(*key), value))
            produced.append(True)
        if not records:
            return produced
        try:
            results = await self._producer.send_many(RAW, records)
        except BaseException:
            for mention, value in sending:
                self._unpublish(mention.key, value)
            raise
        failure: Exception | None = None
        accepted = tally.accepted
        for (mention, value), result in zip(sending, results, strict=True):
            if isinstance(result, Exception):
                self._unpublish(mention.key, value)
                failure = failure or result
            else:
                accepted[mention.source] = accepted.get(mention.source, 0) + 1
        if failure is not None:
            raise failure
        return produced

    def _unpublish(self, key: tuple[str, str], value: bytes) -> None:
        self._dedupe.forget(key)
        if self._trusted is not None:
            self._trusted.discard(value)

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
    202 or store a checkpoint). Produced together, in one ``send_many``: on Kafka each
    send waits for the broker's acknowledgement, and one at a time would cap a batch at
    one round trip per mention; in memory the batch is appended and journaled at once,
    with no task or future per mention. Each is deduplicated in order, so a repeat
    within the batch is still a duplicate. Raises what the bus raised, once every send
    of the batch has settled; the mentions produced count as accepted, once per batch.
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
        produced = await publisher._publish_many(mentions, tally)
    finally:
        publisher._count(tally)
    accepted = sum(produced)
    return Accepted(accepted, len(produced) - accepted, tuple(invalid))
