"""An in-process bus with Kafka's semantics, for tests and single-process deployments."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.core.bus.errors import (
    BusClosedError,
    CommitFailedError,
    MessageTooLargeError,
    UnknownTopicError,
)
from services.core.bus.protocol import (
    KeyedValue,
    Message,
    RecordMetadata,
    SendResults,
    TopicPartition,
    TopicSpec,
)
from services.core.clock import Clock, SystemClock

_MASK32 = 0xFFFFFFFF


@functools.lru_cache(maxsize=256)
def _words(count: int) -> Callable[[bytes], tuple[int, ...]]:
    """Reads ``count`` little-endian 32-bit words (the format compiled once per count)."""
    return struct.Struct(f"<{count}I").unpack_from


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: a signed 32-bit hash, bit-for-bit like the Java client's."""
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & _MASK32
    whole = length & ~3
    # The 4-byte words read at once (a key is hashed once per mention produced); the
    # products masked once after the xor, which is the same as masking each.
    for k in _words(whole >> 2)(data):
        k = (k * m) & _MASK32
        k ^= k >> 24
        h = ((h * m) ^ (k * m)) & _MASK32
    tail = length - whole
    # The Java switch falls through from case 3 to case 1.
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * m) & _MASK32
    h ^= h >> 13
    h = (h * m) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


@functools.lru_cache(maxsize=65_536)
def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a keyed record.

    Cached: a mention's key is hashed when it is produced raw and again when scored.
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _slot_setters(
    cls: type, names: tuple[str, ...]
) -> tuple[Callable[[object, object], None], ...]:
    """The slot descriptors' setters of ``cls``'s fields, in ``names`` order; raises
    ``TypeError`` if ``names`` are not exactly its dataclass fields in order."""
    if tuple(f.name for f in dataclasses.fields(cls)) != names:
        raise TypeError(f"{cls.__name__}'s fields are not {names}")
    return tuple(getattr(cls, name).__set__ for name in names)


# A bus builds a ``Message`` and a ``RecordMetadata`` for every message it takes. Both are
# frozen slotted dataclasses, whose ``__init__`` sets each field through
# ``object.__setattr__``; setting the slots directly builds the same object (equal, same
# hash, same type) in about half the time.
_MESSAGE_SLOTS = _slot_setters(
    Message, ("topic", "partition", "offset", "key", "value", "headers", "timestamp_ms")
)
_METADATA_SLOTS = _slot_setters(RecordMetadata, ("topic", "partition", "offset"))
_new = object.__new__


def _message(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes,
    headers: tuple[tuple[str, bytes], ...],
    timestamp_ms: int,
) -> Message:
    """``Message(topic, partition, offset, key, value, headers, timestamp_ms)``, faster."""
    message: Message = _new(Message)
    set_topic, set_partition, set_offset, set_key, set_value, set_headers, set_time = _MESSAGE_SLOTS
    set_topic(message, topic)
    set_partition(message, partition)
    set_offset(message, offset)
    set_key(message, key)
    set_value(message, value)
    set_headers(message, headers)
    set_time(message, timestamp_ms)
    return message


def _metadata(topic: str, partition: int, offset: int) -> RecordMetadata:
    """``RecordMetadata(topic, partition, offset)``, faster."""
    metadata: RecordMetadata = _new(RecordMetadata)
    set_topic, set_partition, set_offset = _METADATA_SLOTS
    set_topic(metadata, topic)
    set_partition(metadata, partition)
    set_offset(metadata, offset)
    return metadata


def _record_size(key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> int:
    size = len(value) + (len(key) if key is not None else 0)
    if not headers:
        return size
    return size + sum(len(name.encode()) + len(data) for name, data in headers)


class BusJournal(Protocol):
    """Told by a ``MemoryBus`` of every change a restart must restore, as it happens.

    Calls come in the order the changes happen, from the bus's event loop, right after
    the bus state changed; the journal must record them in that order.
    """

    def keeps(self, topic: str) -> bool:
        """Whether messages of ``topic`` are recorded (``appended`` returns ``None`` for
        the others). The bus builds a ``Message`` when it appends only for these."""
        ...

    def appended(self, message: Message) -> Awaitable[None] | None:
        """Record ``message``; ``send`` returns only once the returned awaitable is done.

        ``None`` means there is nothing to wait for (a topic the journal does not keep).
        Cancelling the wait must not cancel the write. An exception, raised here or by the
        awaitable, makes ``send`` raise it although the message stays in the bus.
        """
        ...

    def appended_many(self, messages: Sequence[Message]) -> Awaitable[None] | None:
        """Record ``messages``, in order, like ``appended`` each, with one awaitable for all.

        ``send_many`` fails every one of them with an exception raised here or by the
        awaitable (they stay in the bus).
        """
        ...

    def committed(self, group_id: str, tp: TopicPartition, offset: int) -> None:
        """Record a group's commit; nobody waits for it (a lost commit means redelivery)."""
        ...

    def subscribed(self, group_id: str, topic: str) -> None:
        """Record that a group subscribed to ``topic`` for the first time."""
        ...


@dataclass(frozen=True, slots=True)
class TopicState:
    """A topic's retention state: what a journal snapshots to restore it later."""

    name: str
    # Per partition: (offset of the oldest message held, offset of the next message).
    bounds: tuple[tuple[int, int], ...]
    # The groups that ever subscribed, which pin retention until they commit.
    groups: frozenset[str]
    # (group, partition, committed offset).
    committed: tuple[tuple[str, int, int], ...]


# What a partition holds for one message: the ``Message`` where the journal keeps its
# topic (the journal was handed that very object), otherwise (key, value, headers,
# timestamp_ms), made a ``Message`` only when a consumer reads it. A tuple of bytes and
# ints is untracked by the garbage collector once it has been seen, so a topic nobody
# reads (``mentions.scored`` in embedded mode, ``partition_capacity`` messages a
# partition) costs neither a ``Message`` a send nor collector time.
_Unread = tuple[bytes | None, bytes, tuple[tuple[str, bytes], ...], int]
_Held = Message | _Unread


@dataclass(eq=False)
class _Partition:
    tp: TopicPartition
    records: list[_Held] = field(default_factory=list)
    # Offset of ``records[0]``; everything below it was trimmed.
    base_offset: int = 0
    # Room handed to queued senders that have not appended yet, so a newcomer cannot
    # take it from them.
    reserved: int = 0
    send_waiters: deque[asyncio.Future[None]] = field(default_factory=deque)

    @property
    def end_offset(self) -> int:
        return self.base_offset + len(self.records)


@dataclass(eq=False)
class _Topic:
    name: str
    partitions: list[_Partition]
    # Groups that ever subscribed; they pin retention until they commit, even when
    # they have no live member, exactly like the group offsets Kafka keeps.
    groups: set[str] = field(default_factory=set)
    subscribers: set[MemoryConsumer] = field(default_factory=set)
    next_unkeyed: int = 0


@dataclass(eq=False)
class _Group:
    group_id: str
    members: list[MemoryConsumer] = field(default_factory=list)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    generation: int = 0
    targets: dict[MemoryConsumer, frozenset[TopicPartition]] = field(default_factory=dict)
    # The generation in which each member was last handed each partition it owns: a
    # member that has not seen that generation yet must not commit the partition.
    granted_at: dict[MemoryConsumer, dict[TopicPartition, int]] = field(default_factory=dict)


class MemoryBus:
    """A ``Bus`` held in memory, in one asyncio event loop, with Kafka's semantics.

    Partitioning: a keyed message goes to ``murmur2(key) & 0x7fffffff % partitions``,
    as with Kafka's default partitioner; unkeyed messages go round-robin per topic.

    Groups: partitions are split among the live members of a group with Kafka's range
    assignor (per topic, contiguous ranges in join order). A join or a close rebalances
    the group; the joining member gets its assignment before ``consumer`` returns, the
    others switch at their next ``getmany``. A partition a member keeps keeps its read
    position; a newly assigned one is read from the group's committed offset, or from
    the earliest retained message if the group never committed it. A member can commit
    a partition only while the group assigns it to that member and the member has
    switched to that assignment (by calling ``getmany``), so the previous owner's late
    commit fails with ``CommitFailedError``. ``commit`` is all or nothing.

    Memory is bounded per partition by ``partition_capacity``:

    * once any group has subscribed to a topic, a message stays until every group that
      ever subscribed has committed past it, and is dropped then. While a partition
      holds ``partition_capacity`` such messages, ``send`` waits (first come, first
      served) until a commit frees room. A group that subscribed once and went away
      therefore holds producers back until it commits or the bus is recreated;
    * a topic no group ever subscribed to (a dead-letter topic nobody reads yet) keeps
      its most recent ``partition_capacity`` messages per partition and drops the
      oldest, like Kafka's retention, so producers never block on it.

    A group that starts reading after messages were dropped starts at the earliest
    retained one (``auto.offset.reset=earliest``); so does a read position whose
    committed offset points at dropped messages.

    A message is larger than ``max_message_bytes`` when its key, value, header names
    (UTF-8) and header values add up to more than that. ``close`` on the bus closes
    every producer and consumer made from it; a ``send`` still waiting for room when
    its producer or the bus closes raises ``BusClosedError`` and was not appended.
    """

    def __init__(
        self,
        partition_capacity: int = 10_000,
        max_message_bytes: int = 1_048_576,
        *,
        clock: Clock | None = None,
    ) -> None:
        if partition_capacity < 1:
            raise ValueError(f"partition_capacity must be at least 1, got {partition_capacity}")
        if max_message_bytes < 1:
            raise ValueError(f"max_message_bytes must be at least 1, got {max_message_bytes}")
        self._capacity = partition_capacity
        self._max_message_bytes = max_message_bytes
        self._clock: Clock = clock if clock is not None else SystemClock()
        # The system clock read directly (a send's timestamp): ``now()`` builds a datetime.
        self._system_clock = type(self._clock) is SystemClock
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        self._producers: set[MemoryProducer] = set()
        self._consumers: set[MemoryConsumer] = set()
        self._member_ids = itertools.count()
        self._closed = False
        self._journal: BusJournal | None = None

    def attach_journal(self, journal: BusJournal) -> None:
        """Report every later append, commit and first subscription to ``journal``."""
        self._journal = journal

    def topic_states(self) -> list[TopicState]:
        """The retention state of every topic, in creation order."""
        return [
            TopicState(
                name=topic.name,
                bounds=tuple((p.base_offset, p.end_offset) for p in topic.partitions),
                groups=frozenset(topic.groups),
                committed=tuple(
                    (group_id, tp.partition, offset)
                    for group_id in sorted(topic.groups)
                    for tp, offset in sorted(self._groups[group_id].committed.items())
                    if tp.topic == topic.name
                ),
            )
            for topic in self._topics.values()
        ]

    # Restoring a journal: each call replays one recorded change, in recorded order,
    # applying the same retention rules as when it happened. None of them is journaled.

    def restore_message(self, message: Message) -> None:
        """Put back a message at its recorded offset.

        A gap before it means the messages in between were dropped (their journal was
        deleted once they were), so everything held before it is dropped too. Raises
        ``UnknownTopicError`` for a topic or partition that does not exist and
        ``ValueError`` for an offset below the partition's next one.
        """
        partition = self._partition(message.topic_partition)
        self._restore_end(partition, message.offset)
        if not self._topics[message.topic].groups and len(partition.records) >= self._capacity:
            self._trim(partition, partition.end_offset - self._capacity + 1)
        partition.records.append(message)

    def restore_end_offset(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the partition's next offset, dropping what it holds if that moves it.

        Raises like ``restore_message``.
        """
        self._restore_end(self._partition(tp), offset)

    def restore_subscription(self, group_id: str, topic: str) -> None:
        """Make ``group_id`` pin ``topic``'s messages again, as a group that subscribed."""
        self._topic(topic).groups.add(group_id)
        self._groups.setdefault(group_id, _Group(group_id))

    def restore_commit(self, group_id: str, tp: TopicPartition, offset: int) -> None:
        """Set a group's committed offset and drop what every group has now committed."""
        self._partition(tp)
        self._groups.setdefault(group_id, _Group(group_id)).committed[tp] = offset
        self._trim_committed(tp)

    def _restore_end(self, partition: _Partition, offset: int) -> None:
        if offset < partition.end_offset:
            raise ValueError(
                f"{partition.tp.topic}[{partition.tp.partition}] already holds offset {offset}"
            )
        if offset > partition.end_offset:
            partition.records.clear()
            partition.base_offset = offset

    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        self._check_open()
        for spec in specs:
            if spec.partitions < 1:
                raise ValueError(f"topic {spec.name!r} needs at least 1 partition")
        for spec in specs:
            if spec.name not in self._topics:
                self._topics[spec.name] = _Topic(
                    spec.name,
                    [_Partition(TopicPartition(spec.name, p)) for p in range(spec.partitions)],
                )

    async def producer(self) -> MemoryProducer:
        self._check_open()
        producer = MemoryProducer(self)
        self._producers.add(producer)
        return producer

    async def consumer(self, group_id: str, topics: Sequence[str]) -> MemoryConsumer:
        self._check_open()
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        subscribed = [self._topic(name) for name in dict.fromkeys(topics)]
        group = self._groups.setdefault(group_id, _Group(group_id))
        consumer = MemoryConsumer(self, group, subscribed, next(self._member_ids))
        self._consumers.add(consumer)
        for topic in subscribed:
            if group_id not in topic.groups:
                topic.groups.add(group_id)
                if self._journal is not None:
                    self._journal.subscribed(group_id, topic.name)
            topic.subscribers.add(consumer)
        group.members.append(consumer)
        self._rebalance(group)
        consumer._apply_assignment()
        return consumer

    async def committed(self, group_id: str, tp: TopicPartition) -> int | None:
        self._check_open()
        self._partition(tp)
        group = self._groups.get(group_id)
        return None if group is None else group.committed.get(tp)

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        self._check_open()
        return {tp: self._partition(tp).end_offset for tp in tps}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for producer in list(self._producers):
            await producer.close()
        for consumer in list(self._consumers):
            await consumer.close()
        for topic in self._topics.values():
            for partition in topic.partitions:
                while partition.send_waiters:
                    waiter = partition.send_waiters.popleft()
                    if not waiter.done():
                        waiter.set_exception(BusClosedError("the bus was closed"))

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError("the bus was closed")

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise UnknownTopicError(f"topic {name!r} does not exist")
        return topic

    def _partition(self, tp: TopicPartition) -> _Partition:
        partitions = self._topic(tp.topic).partitions
        if not 0 <= tp.partition < len(partitions):
            raise UnknownTopicError(
                f"topic {tp.topic!r} has {len(partitions)} partitions, not {tp.partition}"
            )
        return partitions[tp.partition]

    async def _append(
        self,
        producer: MemoryProducer,
        topic_name: str,
        value: bytes,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> RecordMetadata:
        topic = self._topic(topic_name)
        size = _record_size(key, value, headers)
        if size > self._max_message_bytes:
            raise MessageTooLargeError(
                f"message of {size} bytes for topic {topic_name!r} is larger than "
                f"max_message_bytes={self._max_message_bytes}"
            )
        if key is not None:
            index = partition_for_key(key, len(topic.partitions))
        else:
            index = topic.next_unkeyed % len(topic.partitions)
            topic.next_unkeyed += 1
        partition = topic.partitions[index]
        # Waiting only when room is short or others wait first (``_wait_for_room`` would
        # return at once otherwise; not calling it saves a coroutine per send).
        if topic.groups and (
            partition.send_waiters or len(partition.records) + partition.reserved >= self._capacity
        ):
            await self._wait_for_room(producer, partition)
        elif len(partition.records) >= self._capacity:
            self._trim(partition, partition.end_offset - self._capacity + 1)

        offset = partition.end_offset
        timestamp_ms = self._now_ms()
        journal = self._journal
        message: Message | None = None
        if journal is not None and journal.keeps(topic_name):
            message = _message(topic_name, index, offset, key, value, tuple(headers), timestamp_ms)
            partition.records.append(message)
        else:
            partition.records.append((key, value, tuple(headers), timestamp_ms))
        for consumer in topic.subscribers:
            if partition.tp in consumer._assignment:
                consumer._wakeup.set()
        if journal is not None and message is not None:
            written = journal.appended(message)
            if written is not None:
                await written
        return _metadata(topic_name, index, offset)

    async def _append_many(
        self, producer: MemoryProducer, topic_name: str, records: Sequence[KeyedValue]
    ) -> SendResults:
        """``_append`` of each record, in order, with the bookkeeping done once per batch:
        one timestamp, one wakeup per partition, one journal write to wait for."""
        topic = self._topic(topic_name)
        partitions = topic.partitions
        count = len(partitions)
        capacity = self._capacity
        max_bytes = self._max_message_bytes
        results: SendResults = []
        journal = self._journal
        keeps = journal is not None and journal.keeps(topic_name)
        # The messages appended since the last hand-over to the journal (only where it
        # keeps the topic), with their places in ``results``; and the journal writes to
        # wait for, with theirs.
        appended: list[Message] = []
        places: list[int] = []
        writes: list[tuple[Awaitable[None], list[int]]] = []
        touched: set[_Partition] = set()
        timestamp_ms = self._now_ms()
        # Set when the producer or the bus closed while the batch waited for room: the
        # rest of the batch fails as a ``send`` started after the close would.
        closed: BusClosedError | None = None
        for key, value in records:
            if closed is not None:
                results.append(BusClosedError(*closed.args))
                continue
            size = len(value) + (len(key) if key is not None else 0)
            if size > max_bytes:
                results.append(
                    MessageTooLargeError(
                        f"message of {size} bytes for topic {topic_name!r} is larger than "
                        f"max_message_bytes={max_bytes}"
                    )
                )
                continue
            if key is not None:
                index = partition_for_key(key, count)
            else:
                index = topic.next_unkeyed % count
                topic.next_unkeyed += 1
            partition = partitions[index]
            if topic.groups and (
                partition.send_waiters or len(partition.records) + partition.reserved >= capacity
            ):
                # What was appended so far is told to its consumers and the journal before
                # waiting: a commit made meanwhile must be journaled after those messages.
                self._hand_over(topic, touched, appended, places, results, writes)
                appended, places, touched = [], [], set()
                try:
                    await self._wait_for_room(producer, partition)
                except BusClosedError as error:
                    closed = error
                    results.append(error)
                    continue
                timestamp_ms = self._now_ms()
            elif len(partition.records) >= capacity:
                self._trim(partition, partition.end_offset - capacity + 1)
            offset = partition.end_offset
            if keeps:
                message = _message(topic_name, index, offset, key, value, (), timestamp_ms)
                partition.records.append(message)
                appended.append(message)
            else:
                partition.records.append((key, value, (), timestamp_ms))
            touched.add(partition)
            places.append(len(results))
            results.append(_metadata(topic_name, index, offset))
        self._hand_over(topic, touched, appended, places, results, writes)
        for written, written_places in writes:
            try:
                await written
            except Exception as error:
                for place in written_places:
                    results[place] = error
        return results

    def _hand_over(
        self,
        topic: _Topic,
        touched: set[_Partition],
        appended: list[Message],
        places: list[int],
        results: SendResults,
        writes: list[tuple[Awaitable[None], list[int]]],
    ) -> None:
        """Wake the consumers of the ``touched`` partitions and give ``appended`` to the
        journal; a journal that refuses them fails their ``results``."""
        if not places:
            return
        for consumer in topic.subscribers:
            assignment = consumer._assignment
            if any(partition.tp in assignment for partition in touched):
                consumer._wakeup.set()
        if self._journal is None or not appended:
            return
        try:
            written = self._journal.appended_many(appended)
        except Exception as error:
            for place in places:
                results[place] = error
            return
        if written is not None:
            writes.append((written, places))

    def _now_ms(self) -> int:
        return int((time.time() if self._system_clock else self._clock.now().timestamp()) * 1000)

    async def _wait_for_room(self, producer: MemoryProducer, partition: _Partition) -> None:
        self._grant_room(partition)
        if len(partition.records) + partition.reserved < self._capacity:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        partition.send_waiters.append(waiter)
        producer._waiting.add(waiter)
        try:
            await waiter
        except BaseException:
            # Cancelled after room was granted: pass the room on to the next sender.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                partition.reserved -= 1
                self._grant_room(partition)
            raise
        finally:
            producer._waiting.discard(waiter)
            if waiter in partition.send_waiters:
                partition.send_waiters.remove(waiter)
        partition.reserved -= 1

    def _grant_room(self, partition: _Partition) -> None:
        while partition.send_waiters and (
            len(partition.records) + partition.reserved < self._capacity
        ):
            waiter = partition.send_waiters.popleft()
            if not waiter.done():
                partition.reserved += 1
                waiter.set_result(None)

    def _trim(self, partition: _Partition, below: int) -> None:
        drop = min(below, partition.end_offset) - partition.base_offset
        if drop > 0:
            del partition.records[:drop]
            partition.base_offset += drop
            self._grant_room(partition)

    def _trim_committed(self, tp: TopicPartition) -> None:
        topic = self._topics[tp.topic]
        floor: int | None = None
        for group_id in topic.groups:
            committed = self._groups[group_id].committed.get(tp)
            if committed is None:
                return
            floor = committed if floor is None else min(floor, committed)
        if floor is not None:
            self._trim(topic.partitions[tp.partition], floor)

    def _rebalance(self, group: _Group) -> None:
        group.generation += 1
        assigned: dict[MemoryConsumer, set[TopicPartition]] = {m: set() for m in group.members}
        topic_names = sorted({t.name for m in group.members for t in m._topics})
        for name in topic_names:
            partitions = self._topics[name].partitions
            readers = [m for m in group.members if any(t.name == name for t in m._topics)]
            share, extra = divmod(len(partitions), len(readers))
            start = 0
            for position, member in enumerate(readers):
                count = share + (1 if position < extra else 0)
                assigned[member].update(p.tp for p in partitions[start : start + count])
                start += count
        previous = group.targets
        group.targets = {m: frozenset(tps) for m, tps in assigned.items()}
        granted: dict[MemoryConsumer, dict[TopicPartition, int]] = {}
        for member, tps in group.targets.items():
            before = group.granted_at.get(member, {})
            kept = previous.get(member, frozenset())
            granted[member] = {tp: before[tp] if tp in kept else group.generation for tp in tps}
        group.granted_at = granted
        for member in group.members:
            member._wakeup.set()

    def _leave(self, consumer: MemoryConsumer) -> None:
        self._consumers.discard(consumer)
        for topic in consumer._topics:
            topic.subscribers.discard(consumer)
        group = consumer._group
        group.members.remove(consumer)
        self._rebalance(group)


class MemoryProducer:
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._waiting: set[asyncio.Future[None]] = set()
        self._closed = False

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> RecordMetadata:
        self._check_open()
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._bus._append(self, topic, value, key, headers)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def send_many(self, topic: str, records: Sequence[KeyedValue]) -> SendResults:
        self._check_open()
        if not records:
            self._bus._topic(topic)
            return []
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._bus._append_many(self, topic, records)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def flush(self) -> None:
        self._check_open()
        # A message is durable once ``send`` returned; only sends waiting for room remain.
        await self._idle.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._producers.discard(self)
        for waiter in list(self._waiting):
            if not waiter.done():
                waiter.set_exception(BusClosedError("the producer was closed"))

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError("the producer was closed")
        self._bus._check_open()


class MemoryConsumer:
    def __init__(
        self, bus: MemoryBus, group: _Group, topics: Sequence[_Topic], member_id: int
    ) -> None:
        self._bus = bus
        self._group = group
        self._topics = tuple(topics)
        self._member_id = member_id
        self._assignment: frozenset[TopicPartition] = frozenset()
        self._generation = 0
        self._positions: dict[TopicPartition, int] = {}
        # Set whenever there may be something new for ``getmany`` to look at: a message
        # on an assigned partition, a rebalance, or close.
        self._wakeup = asyncio.Event()
        self._rotation = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<MemoryConsumer group={self._group.group_id!r} member={self._member_id}>"

    async def getmany(self, *, max_records: int, timeout_s: float) -> list[Message]:
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, got {max_records}")
        if timeout_s < 0:
            raise ValueError(f"timeout_s must not be negative, got {timeout_s}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            self._check_open()
            self._apply_assignment()
            messages = self._take(max_records)
            if messages:
                return messages
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            # Cleared only after looking, with no await in between, so no wakeup is lost.
            self._wakeup.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
            except TimeoutError:
                self._check_open()
                return []

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._check_open()
        group = self._group
        lost = sorted(tp for tp in offsets if not self._owns(tp))
        if lost:
            raise CommitFailedError(
                f"group {group.group_id!r} rebalanced: this member no longer owns "
                f"{', '.join(f'{tp.topic}[{tp.partition}]' for tp in lost)}"
            )
        for tp, offset in offsets.items():
            end = self._bus._partition(tp).end_offset
            if not 0 <= offset <= end:
                raise ValueError(
                    f"offset {offset} for {tp.topic}[{tp.partition}] is outside [0, {end}]"
                )
        journal = self._bus._journal
        for tp, offset in offsets.items():
            group.committed[tp] = offset
            if journal is not None:
                journal.committed(group.group_id, tp, offset)
            self._bus._trim_committed(tp)

    def assignment(self) -> frozenset[TopicPartition]:
        return self._assignment

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._assignment = frozenset()
        self._positions.clear()
        self._bus._leave(self)
        self._wakeup.set()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError("the consumer was closed")
        self._bus._check_open()

    def _owns(self, tp: TopicPartition) -> bool:
        # Owned in the group's current assignment, and handed over in a generation this
        # member has already switched to (so it has read the partition as its owner).
        granted_at = self._group.granted_at.get(self, {}).get(tp)
        return granted_at is not None and granted_at <= self._generation

    def _apply_assignment(self) -> None:
        group = self._group
        if self._generation == group.generation:
            return
        target = group.targets[self]
        positions: dict[TopicPartition, int] = {}
        for tp in target:
            if tp in self._assignment and tp in self._positions:
                positions[tp] = self._positions[tp]
            else:
                committed = group.committed.get(tp)
                positions[tp] = committed if committed is not None else 0
        self._positions = positions
        self._assignment = target
        self._generation = group.generation

    def _take(self, max_records: int) -> list[Message]:
        ready: list[tuple[_Partition, int]] = []
        for tp in sorted(self._assignment):
            partition = self._bus._topics[tp.topic].partitions[tp.partition]
            # A position on dropped messages resets to the earliest retained one.
            position = max(self._positions[tp], partition.base_offset)
            self._positions[tp] = position
            if position < partition.end_offset:
                ready.append((partition, position))
        if not ready:
            return []
        # Start at a different partition on each call so none is starved.
        self._rotation = (self._rotation + 1) % len(ready)
        ready = ready[self._rotation :] + ready[: self._rotation]
        # Split max_records evenly; a partition with less than its share passes the rest on.
        quotas = [0] * len(ready)
        left = max_records
        by_backlog = sorted(range(len(ready)), key=lambda i: ready[i][0].end_offset - ready[i][1])
        for rank, i in enumerate(by_backlog):
            partition, position = ready[i]
            quotas[i] = min(partition.end_offset - position, left // (len(ready) - rank))
            left -= quotas[i]
        messages: list[Message] = []
        for (partition, position), quota in zip(ready, quotas, strict=True):
            if quota == 0:
                continue
            start = position - partition.base_offset
            topic, index = partition.tp.topic, partition.tp.partition
            for offset, held in enumerate(partition.records[start : start + quota], position):
                if isinstance(held, Message):
                    messages.append(held)
                else:
                    key, value, headers, timestamp_ms = held
                    messages.append(
                        _message(topic, index, offset, key, value, headers, timestamp_ms)
                    )
            self._positions[partition.tp] = position + quota
        return messages
