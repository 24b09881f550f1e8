"""The message bus contract shared by the in-memory bus and Kafka.

Semantics follow Kafka where they matter to correctness:

* a topic has a fixed number of partitions; a message with a key always lands in the
  partition chosen by hashing the key, so per-key order is kept;
* consumers join a *consumer group*; each partition of a subscribed topic is read by
  exactly one member of the group at a time, and membership changes rebalance them;
* a consumer's position is only durable once *committed*; offsets are committed
  explicitly (``commit``), never automatically, and only after the work they cover
  succeeded. A consumer that stops without committing leaves its messages to be
  delivered again to whichever member owns the partition next;
* memory is bounded: when a partition holds as many uncommitted messages as its
  capacity, ``Producer.send`` waits (backpressure) instead of growing without limit;
* ``Producer.send_many`` appends a batch of one topic's messages as if each were sent
  alone, in order, with one wait for the whole batch instead of one per message.

A Kafka implementation therefore runs its consumers with ``enable_auto_commit=False``
and ``auto_offset_reset="earliest"``. After a rebalance a member may see again
messages it had read but not committed, on any partition: handlers are idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True, order=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int = 1


@dataclass(frozen=True, slots=True)
class Message:
    """One record read from the bus; ``offset + 1`` is what a consumer commits after it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default=())
    timestamp_ms: int = 0

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    topic: str
    partition: int
    offset: int


# One message of a ``send_many`` batch: (key, value).
KeyedValue = tuple[bytes | None, bytes]

# What became of each message of a ``send_many`` batch, in order: where it was stored,
# or why it was not.
SendResults = list[RecordMetadata | Exception]


@runtime_checkable
class Producer(Protocol):
    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> RecordMetadata:
        """Append one message and return where it was stored once it is durable.

        Waits while the target partition is full (backpressure). Raises
        ``UnknownTopicError`` for a topic that was never created and
        ``BusClosedError`` after ``close``.
        """
        ...

    async def send_many(self, topic: str, records: Sequence[KeyedValue]) -> SendResults:
        """Append each ``(key, value)`` of ``records`` as ``send`` would, in order, and
        return once every one is durable or failed: its metadata, or its exception.

        Partitioning and per-key order are those of sending them one by one. A failure
        of one message (too large, a journal that failed) is returned in its place and
        the others are still sent; what fails the call as a whole before anything is
        sent (``UnknownTopicError``, ``BusClosedError``) is raised. If the call is
        cancelled, some of the messages may have been stored.

        The default sends each message with ``send``, all at once; an implementation
        that can append a batch at a time does so.
        """
        return await send_each(self, topic, records)

    async def flush(self) -> None:
        """Return once every message passed to ``send`` or ``send_many`` so far is durable."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Consumer(Protocol):
    async def getmany(self, *, max_records: int, timeout_s: float) -> list[Message]:
        """Return up to ``max_records`` messages from the assigned partitions.

        Waits at most ``timeout_s`` for the first message and returns ``[]`` if none
        came. Messages of one partition are returned in offset order. After a
        rebalance, reading of a newly assigned partition resumes at its committed
        offset.
        """
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Durably store, per partition, the offset of the next message to read.

        Raises ``CommitFailedError`` if this consumer no longer owns a partition (it
        was rebalanced away); the new owner will read those messages again.
        """
        ...

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this member currently reads."""
        ...

    async def close(self) -> None:
        """Leave the group without committing; uncommitted messages are redelivered."""
        ...


RevokeHook = Callable[[frozenset[TopicPartition]], Awaitable[None]]


@runtime_checkable
class RevocationAware(Protocol):
    """A consumer that says which partitions a rebalance is about to take away, and waits.

    Kafka's consumers do (``KafkaConsumer``); the in-memory bus hands partitions over at
    the next ``getmany`` instead, where the old owner's late commit simply fails.
    """

    def on_revoke(self, hook: RevokeHook | None) -> None:
        """Await ``hook(partitions)`` before ``partitions`` are revoked in a rebalance.

        While the hook runs the consumer still owns them, so it may finish the work in
        hand and ``commit`` it; the group waits for it (up to the rebalance timeout). An
        exception in the hook is logged and the rebalance goes on. ``None`` removes it.
        """
        ...


@runtime_checkable
class Bus(Protocol):
    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet; existing ones are left alone."""
        ...

    async def producer(self) -> Producer: ...

    async def consumer(self, group_id: str, topics: Sequence[str]) -> Consumer:
        """Join ``group_id`` subscribed to ``topics`` and return once it has its assignment."""
        ...

    async def committed(self, group_id: str, tp: TopicPartition) -> int | None:
        """The group's committed offset for a partition, or ``None`` if it never committed."""
        ...

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset the next message appended to each partition will get."""
        ...

    async def close(self) -> None: ...


async def send_each(producer: Producer, topic: str, records: Sequence[KeyedValue]) -> SendResults:
    """``send_many`` done with one ``send`` per message, all in flight together."""
    if not records:
        return []
    settled = await asyncio.gather(
        *(producer.send(topic, value, key=key) for key, value in records),
        return_exceptions=True,
    )
    results: SendResults = []
    for result in settled:
        if not isinstance(result, (RecordMetadata, Exception)):
            raise result  # a send cancelled on its own: the batch is cancelled too
        results.append(result)
    return results


def all_sent(results: SendResults) -> list[RecordMetadata]:
    """The metadata of a ``send_many`` whose every message was stored; raises the first
    failure otherwise."""
    sent: list[RecordMetadata] = []
    for result in results:
        if isinstance(result, Exception):
            raise result
        sent.append(result)
    return sent
