"""What only the in-memory bus does: its partitioner, assignor, capacity and retention."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.bus import (
    Bus,
    BusClosedError,
    CommitFailedError,
    Consumer,
    KeyedValue,
    MemoryBus,
    Message,
    MessageTooLargeError,
    Producer,
    RecordMetadata,
    TopicPartition,
    TopicSpec,
    all_sent,
)
from services.core.bus.memory import _message, _metadata, _slot_setters, murmur2, partition_for_key
from services.core.clock import FrozenClock

T = TypeVar("T")

BOUND_S = 5.0
TOPIC = "mentions"
TP0 = TopicPartition(TOPIC, 0)


async def running(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Start ``coro`` in a task and return once it is suspended at its first wait.

    The bus runs in this loop only, so a task suspended in ``send`` or ``getmany`` stays
    there until the bus wakes it: asserting it is not done needs no waiting.
    """
    started = asyncio.Event()

    async def run() -> T:
        started.set()
        return await coro

    task = asyncio.create_task(run())
    await started.wait()
    return task


async def read(consumer: Consumer, count: int) -> list[Message]:
    messages: list[Message] = []
    async with asyncio.timeout(BOUND_S):
        while len(messages) < count:
            messages += await consumer.getmany(max_records=count - len(messages), timeout_s=BOUND_S)
    return messages


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus(partition_capacity=3)
    await bus.create_topics([TopicSpec(TOPIC, partitions=1)])
    yield bus
    await bus.close()


def test_memory_bus_implements_the_protocols() -> None:
    bus: Bus = MemoryBus()

    assert isinstance(bus, Bus)


async def test_producer_and_consumer_implement_the_protocols(bus: MemoryBus) -> None:
    producer: Producer = await bus.producer()
    consumer: Consumer = await bus.consumer("g", [TOPIC])

    assert isinstance(producer, Producer)
    assert isinstance(consumer, Consumer)


# From Kafka's UtilsTest.testMurmur2 (org.apache.kafka.common.utils).
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_kafka(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


# From kafka-python's test_partitioner, checked there against the Java partitioner.
@pytest.mark.parametrize(
    ("key", "expected"),
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_partition_for_key_matches_the_java_default_partitioner(key: bytes, expected: int) -> None:
    assert partition_for_key(key, 1000) == expected


@given(st.binary(max_size=80))
def test_murmur2_matches_the_kafka_clients_on_any_bytes(data: bytes) -> None:
    from aiokafka.partitioner import murmur2 as aiokafka_murmur2

    # aiokafka's returns the unsigned value; Kafka's (and ours) is signed.
    assert murmur2(data) & 0xFFFFFFFF == aiokafka_murmur2(data) & 0xFFFFFFFF


async def test_keyed_send_uses_the_default_partitioner() -> None:
    bus = MemoryBus()
    await bus.create_topics([TopicSpec("spread", partitions=7)])
    producer = await bus.producer()

    placed = {
        key: (await producer.send("spread", b"v", key=key)).partition
        for key in (f"mention-{i}".encode() for i in range(50))
    }

    assert placed == {key: partition_for_key(key, 7) for key in placed}
    assert len(set(placed.values())) == 7


async def test_unkeyed_sends_go_round_robin() -> None:
    bus = MemoryBus()
    await bus.create_topics([TopicSpec("spread", partitions=3)])
    producer = await bus.producer()

    partitions = [(await producer.send("spread", b"v")).partition for _ in range(6)]

    assert sorted(partitions) == [0, 0, 1, 1, 2, 2]


async def test_timestamps_come_from_the_clock() -> None:
    clock = FrozenClock(datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    bus = MemoryBus(clock=clock)
    await bus.create_topics([TopicSpec(TOPIC)])
    producer = await bus.producer()
    await producer.send(TOPIC, b"first")
    clock.advance(timedelta(milliseconds=1500))
    await producer.send(TOPIC, b"second")

    messages = await read(await bus.consumer("g", [TOPIC]), 2)

    start_ms = 1_714_564_800_000
    assert [m.timestamp_ms for m in messages] == [start_ms, start_ms + 1500]


async def test_range_assignment_in_join_order() -> None:
    bus = MemoryBus()
    await bus.create_topics([TopicSpec("a", partitions=5), TopicSpec("b", partitions=1)])

    first = await bus.consumer("g", ["a", "b"])
    second = await bus.consumer("g", ["a"])
    await first.getmany(max_records=1, timeout_s=0)

    assert first.assignment() == {TopicPartition("a", p) for p in (0, 1, 2)} | {
        TopicPartition("b", 0)
    }
    assert second.assignment() == {TopicPartition("a", p) for p in (3, 4)}


async def test_members_switch_assignment_at_their_next_getmany() -> None:
    bus = MemoryBus()
    await bus.create_topics([TopicSpec(TOPIC, partitions=2)])
    first = await bus.consumer("g", [TOPIC])

    second = await bus.consumer("g", [TOPIC])

    assert second.assignment() == {TopicPartition(TOPIC, 1)}
    assert first.assignment() == {TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)}
    assert await first.getmany(max_records=1, timeout_s=0) == []
    assert first.assignment() == {TopicPartition(TOPIC, 0)}


async def test_a_waiting_member_takes_over_when_the_owner_closes(bus: MemoryBus) -> None:
    producer = await bus.producer()
    for i in range(3):
        await producer.send(TOPIC, str(i).encode())
    owner = await bus.consumer("g", [TOPIC])
    idle = await bus.consumer("g", [TOPIC])
    assert await read(owner, 2)
    await owner.commit({TP0: 1})
    waiting = await running(idle.getmany(max_records=10, timeout_s=10 * BOUND_S))

    await owner.close()

    messages = await asyncio.wait_for(waiting, BOUND_S)
    assert [m.offset for m in messages] == [1, 2]


async def test_getmany_is_fair_across_partitions() -> None:
    bus = MemoryBus()
    await bus.create_topics([TopicSpec(TOPIC, partitions=3)])
    producer = await bus.producer()
    for i in range(30):
        await producer.send(TOPIC, b"v", key=f"k{i}".encode())
    backlog = await bus.end_offsets([TopicPartition(TOPIC, p) for p in range(3)])
    consumer = await bus.consumer("g", [TOPIC])

    first = await consumer.getmany(max_records=6, timeout_s=0)

    # Two from each partition, unless one has fewer: then the others make up for it.
    counts = {p: sum(1 for m in first if m.partition == p) for p in range(3)}
    assert sum(counts.values()) == 6
    assert all(counts[tp.partition] >= min(2, end) for tp, end in backlog.items())
    for p in range(3):
        offsets = [m.offset for m in first if m.partition == p]
        assert offsets == list(range(len(offsets)))


async def test_rebalance_does_not_reset_a_kept_partition(bus: MemoryBus) -> None:
    producer = await bus.producer()
    for i in range(3):
        await producer.send(TOPIC, str(i).encode())
    first = await bus.consumer("g", [TOPIC])
    assert [m.offset for m in await read(first, 2)] == [0, 1]

    second = await bus.consumer("g", [TOPIC])

    assert second.assignment() == frozenset()
    assert [m.offset for m in await first.getmany(max_records=10, timeout_s=0)] == [2]


async def test_a_new_owner_starts_at_the_committed_offset_while_older_messages_are_kept(
    bus: MemoryBus,
) -> None:
    producer = await bus.producer()
    for i in range(3):
        await producer.send(TOPIC, str(i).encode())
    # A group that never commits keeps every message retained, so the next owner can
    # only skip the committed ones by starting at the committed offset.
    await bus.consumer("audit", [TOPIC])
    first = await bus.consumer("g", [TOPIC])
    await read(first, 3)
    await first.commit({TP0: 2})
    await first.close()

    second = await bus.consumer("g", [TOPIC])

    assert [m.offset for m in await read(second, 1)] == [2]


async def test_commit_of_a_partition_never_owned_fails() -> None:
    bus = MemoryBus()
    await bus.create_topics([TopicSpec("a"), TopicSpec("b")])
    consumer = await bus.consumer("g", ["a"])

    with pytest.raises(CommitFailedError):
        await consumer.commit({TopicPartition("b", 0): 0})


async def test_commit_is_all_or_nothing() -> None:
    bus = MemoryBus()
    await bus.create_topics([TopicSpec(TOPIC, partitions=2)])
    producer = await bus.producer()
    await producer.send(TOPIC, b"v", key=b"x")
    await producer.send(TOPIC, b"v", key=b"y")
    first = await bus.consumer("g", [TOPIC])
    await bus.consumer("g", [TOPIC])
    kept, lost = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)

    with pytest.raises(CommitFailedError, match=r"\[1\]"):
        await first.commit({kept: 0, lost: 0})

    assert await bus.committed("g", kept) is None


async def test_a_regained_partition_cannot_be_committed_before_getmany() -> None:
    bus = MemoryBus()
    await bus.create_topics([TopicSpec(TOPIC, partitions=2)])
    first = await bus.consumer("g", [TOPIC])
    lost_and_regained = TopicPartition(TOPIC, 1)
    second = await bus.consumer("g", [TOPIC])
    await second.close()

    # Between the two rebalances the partition may have been read and committed by
    # the second member, so what the first member read before is stale.
    with pytest.raises(CommitFailedError):
        await first.commit({lost_and_regained: 0})
    await first.getmany(max_records=1, timeout_s=0)
    await first.commit({lost_and_regained: 0})


async def test_commit_outside_the_log_is_refused(bus: MemoryBus) -> None:
    producer = await bus.producer()
    await producer.send(TOPIC, b"v")
    consumer = await bus.consumer("g", [TOPIC])

    with pytest.raises(ValueError, match="outside"):
        await consumer.commit({TP0: 2})
    with pytest.raises(ValueError, match="outside"):
        await consumer.commit({TP0: -1})
    await consumer.commit({TP0: 1})


async def test_send_waits_while_the_partition_is_full(bus: MemoryBus) -> None:
    producer = await bus.producer()
    consumer = await bus.consumer("g", [TOPIC])
    for i in range(3):
        await producer.send(TOPIC, str(i).encode())

    blocked = await running(producer.send(TOPIC, b"3"))
    flushing = await running(producer.flush())

    assert not blocked.done()
    assert not flushing.done()
    assert await bus.end_offsets([TP0]) == {TP0: 3}
    messages = await read(consumer, 3)
    await consumer.commit({TP0: 1})
    metadata = await asyncio.wait_for(blocked, BOUND_S)
    await asyncio.wait_for(flushing, BOUND_S)
    assert metadata.offset == 3
    assert [m.offset for m in messages] == [0, 1, 2]


async def test_a_group_that_never_committed_holds_producers_back(bus: MemoryBus) -> None:
    producer = await bus.producer()
    consumer = await bus.consumer("g", [TOPIC])
    await consumer.close()
    for i in range(3):
        await producer.send(TOPIC, str(i).encode())

    blocked = await running(producer.send(TOPIC, b"3"))

    assert not blocked.done()
    reader = await bus.consumer("g", [TOPIC])
    await reader.commit({TP0: 3})
    assert (await asyncio.wait_for(blocked, BOUND_S)).offset == 3


async def test_blocked_sends_complete_in_order(bus: MemoryBus) -> None:
    producer = await bus.producer()
    consumer = await bus.consumer("g", [TOPIC])
    for i in range(3):
        await producer.send(TOPIC, str(i).encode())
    blocked = [await running(producer.send(TOPIC, str(i).encode())) for i in range(3, 6)]

    await read(consumer, 3)
    await consumer.commit({TP0: 3})

    done = await asyncio.wait_for(asyncio.gather(*blocked), BOUND_S)
    assert [m.offset for m in done] == [3, 4, 5]
    assert [m.value for m in await read(consumer, 3)] == [b"3", b"4", b"5"]


async def test_a_cancelled_send_gives_its_turn_to_the_next(bus: MemoryBus) -> None:
    producer = await bus.producer()
    consumer = await bus.consumer("g", [TOPIC])
    for i in range(3):
        await producer.send(TOPIC, str(i).encode())
    cancelled = await running(producer.send(TOPIC, b"cancelled"))
    waiting = await running(producer.send(TOPIC, b"waiting"))

    cancelled.cancel()
    await read(consumer, 3)
    await consumer.commit({TP0: 1})

    assert (await asyncio.wait_for(waiting, BOUND_S)).offset == 3
    assert cancelled.cancelled()
    assert [m.value for m in await read(consumer, 1)] == [b"waiting"]


async def test_a_send_cancelled_after_it_got_room_passes_the_room_on(bus: MemoryBus) -> None:
    producer = await bus.producer()
    consumer = await bus.consumer("g", [TOPIC])
    for i in range(3):
        await producer.send(TOPIC, str(i).encode())
    first = await running(producer.send(TOPIC, b"first"))
    second = await running(producer.send(TOPIC, b"second"))

    # The commit hands the freed slot to ``first`` without yielding to the loop, so
    # ``first`` is cancelled after it was granted room and before it could use it.
    await consumer.commit({TP0: 1})
    first.cancel()

    assert (await asyncio.wait_for(second, BOUND_S)).offset == 3
    assert first.cancelled()


async def test_many_producers_and_a_slow_consumer_lose_nothing(bus: MemoryBus) -> None:
    consumer = await bus.consumer("g", [TOPIC])

    async def produce(name: str) -> None:
        producer = await bus.producer()
        for i in range(40):
            await producer.send(TOPIC, f"{name}:{i}".encode(), key=name.encode())

    async def consume(count: int) -> list[bytes]:
        values: list[bytes] = []
        while len(values) < count:
            batch = await consumer.getmany(max_records=2, timeout_s=BOUND_S)
            if batch:
                values += [m.value for m in batch]
                await consumer.commit({TP0: batch[-1].offset + 1})
        return values

    names = [f"p{n}" for n in range(5)]
    async with asyncio.timeout(BOUND_S), asyncio.TaskGroup() as tasks:
        consuming = tasks.create_task(consume(200))
        for name in names:
            tasks.create_task(produce(name))
    values = consuming.result()

    for name in names:
        mine = [v for v in values if v.startswith(f"{name}:".encode())]
        assert mine == [f"{name}:{i}".encode() for i in range(40)]


async def test_committed_messages_are_dropped(bus: MemoryBus) -> None:
    producer = await bus.producer()
    fast = await bus.consumer("fast", [TOPIC])
    slow = await bus.consumer("slow", [TOPIC])
    for i in range(3):
        await producer.send(TOPIC, str(i).encode())
    await fast.commit({TP0: 3})
    await slow.commit({TP0: 1})

    late = await bus.consumer("late", [TOPIC])

    # The slowest group decides what is kept; a group joining later starts there.
    assert [m.offset for m in await read(late, 2)] == [1, 2]
    await producer.send(TOPIC, b"3")
    blocked = await running(producer.send(TOPIC, b"4"))
    assert not blocked.done()


async def test_an_unread_topic_keeps_only_the_latest_messages() -> None:
    bus = MemoryBus(partition_capacity=3)
    await bus.create_topics([TopicSpec("dead-letters")])
    producer = await bus.producer()

    async with asyncio.timeout(BOUND_S):
        for i in range(5):
            await producer.send("dead-letters", str(i).encode())
    consumer = await bus.consumer("inspector", ["dead-letters"])

    assert [m.offset for m in await read(consumer, 3)] == [2, 3, 4]
    assert await bus.end_offsets([TopicPartition("dead-letters", 0)]) == {
        TopicPartition("dead-letters", 0): 5
    }


async def test_a_message_larger_than_the_limit_is_refused() -> None:
    bus = MemoryBus(max_message_bytes=10)
    await bus.create_topics([TopicSpec(TOPIC)])
    producer = await bus.producer()

    await producer.send(TOPIC, b"0123456789")
    await producer.send(TOPIC, b"012345", key=b"k", headers=[("h", b"xy")])
    with pytest.raises(MessageTooLargeError):
        await producer.send(TOPIC, b"0123456789a")
    with pytest.raises(MessageTooLargeError):
        await producer.send(TOPIC, b"0123456", key=b"k", headers=[("h", b"xy")])
    assert await bus.end_offsets([TP0]) == {TP0: 2}


async def test_closing_the_bus_wakes_waiting_sends_and_reads(bus: MemoryBus) -> None:
    producer = await bus.producer()
    consumer = await bus.consumer("g", [TOPIC])
    for i in range(3):
        await producer.send(TOPIC, str(i).encode())
    await read(consumer, 3)
    blocked = await running(producer.send(TOPIC, b"3"))
    reading = await running(consumer.getmany(max_records=1, timeout_s=10 * BOUND_S))

    await bus.close()

    with pytest.raises(BusClosedError):
        await asyncio.wait_for(blocked, BOUND_S)
    with pytest.raises(BusClosedError):
        await asyncio.wait_for(reading, BOUND_S)
    with pytest.raises(BusClosedError):
        await bus.producer()
    with pytest.raises(BusClosedError):
        await bus.end_offsets([TP0])


async def test_closing_a_producer_fails_its_waiting_sends_only(bus: MemoryBus) -> None:
    closing = await bus.producer()
    other = await bus.producer()
    consumer = await bus.consumer("g", [TOPIC])
    for i in range(3):
        await closing.send(TOPIC, str(i).encode())
    failed = await running(closing.send(TOPIC, b"failed"))
    waiting = await running(other.send(TOPIC, b"waiting"))

    await closing.close()
    await consumer.commit({TP0: 1})

    with pytest.raises(BusClosedError):
        await asyncio.wait_for(failed, BOUND_S)
    assert (await asyncio.wait_for(waiting, BOUND_S)).offset == 3


async def test_closing_a_consumer_wakes_its_getmany(bus: MemoryBus) -> None:
    consumer = await bus.consumer("g", [TOPIC])
    reading = await running(consumer.getmany(max_records=1, timeout_s=10 * BOUND_S))

    await consumer.close()

    with pytest.raises(BusClosedError):
        await asyncio.wait_for(reading, BOUND_S)


async def test_send_many_waits_for_room_in_batch_order(bus: MemoryBus) -> None:
    producer = await bus.producer()
    consumer = await bus.consumer("g", [TOPIC])

    # The bus holds 3 uncommitted messages a partition: the fourth waits for a commit.
    blocked = await running(producer.send_many(TOPIC, [(None, b"%d" % i) for i in range(5)]))
    assert [m.value for m in await read(consumer, 3)] == [b"0", b"1", b"2"]
    assert not blocked.done()
    await consumer.commit({TP0: 3})

    results = await asyncio.wait_for(blocked, BOUND_S)
    assert [r.offset for r in all_sent(results)] == [0, 1, 2, 3, 4]
    assert [m.value for m in await read(consumer, 2)] == [b"3", b"4"]


async def test_closing_a_producer_fails_the_rest_of_its_waiting_batch(bus: MemoryBus) -> None:
    producer = await bus.producer()
    consumer = await bus.consumer("g", [TOPIC])
    records: list[KeyedValue] = [(None, b"%d" % i) for i in range(5)]

    blocked = await running(producer.send_many(TOPIC, records))
    await producer.close()
    await consumer.commit({TP0: 3})

    results = await asyncio.wait_for(blocked, BOUND_S)
    assert [r.offset for r in results if isinstance(r, RecordMetadata)] == [0, 1, 2]
    assert all(isinstance(r, BusClosedError) for r in results[3:])
    assert await bus.end_offsets([TP0]) == {TP0: 3}


async def test_a_message_of_an_unread_topic_is_built_when_read() -> None:
    clock = FrozenClock(datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC))
    bus = MemoryBus(clock=clock)
    await bus.create_topics([TopicSpec("scored", partitions=2)])
    producer = await bus.producer()
    value = b"first"
    one = await producer.send("scored", value, key=b"k", headers=[("trace", b"1")])
    many = await producer.send_many("scored", [(b"k", b"second"), (None, b"third")])
    first = many[0]
    assert isinstance(first, RecordMetadata)
    held = bus._partition(TopicPartition("scored", first.partition)).records[first.offset]
    # Held as a tuple of bytes and ints, which the collector stops tracking.
    gc.collect()
    assert not gc.is_tracked(held)

    consumer = await bus.consumer("late", ["scored"])
    got = sorted(await read(consumer, 3), key=lambda m: (m.partition, m.offset))

    ms = int(clock.now().timestamp() * 1000)
    expected = [
        Message("scored", one.partition, 0, b"k", b"first", (("trace", b"1"),), ms),
        *(
            Message("scored", r.partition, r.offset, k, v, (), ms)
            for r, (k, v) in zip(
                [r for r in many if isinstance(r, RecordMetadata)],
                [(b"k", b"second"), (None, b"third")],
                strict=True,
            )
        ),
    ]
    assert got == sorted(expected, key=lambda m: (m.partition, m.offset))
    # The value is the very object sent (the embedded ingest's trusted registry keys on it).
    assert next(m for m in got if m.value == b"first").value is value
    await bus.close()


@given(
    topic=st.text(max_size=5),
    partition=st.integers(0, 100),
    offset=st.integers(0, 2**40),
    key=st.none() | st.binary(max_size=8),
    value=st.binary(max_size=8),
    headers=st.lists(st.tuples(st.text(max_size=3), st.binary(max_size=3)), max_size=2),
    timestamp_ms=st.integers(0, 2**42),
)
def test_the_fast_builders_make_the_same_objects(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes,
    headers: list[tuple[str, bytes]],
    timestamp_ms: int,
) -> None:
    built = _message(topic, partition, offset, key, value, tuple(headers), timestamp_ms)
    expected = Message(topic, partition, offset, key, value, tuple(headers), timestamp_ms)
    assert type(built) is Message
    assert built == expected
    assert hash(built) == hash(expected)
    assert repr(built) == repr(expected)
    metadata = _metadata(topic, partition, offset)
    assert type(metadata) is RecordMetadata
    assert metadata == RecordMetadata(topic, partition, offset)
    assert hash(metadata) == hash(RecordMetadata(topic, partition, offset))


def test_the_fast_builders_refuse_a_class_whose_fields_changed() -> None:
    with pytest.raises(TypeError, match="fields"):
        _slot_setters(Message, ("topic", "partition", "offset", "key", "value", "headers"))
