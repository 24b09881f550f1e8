"""The bus contract: what every implementation does, in-memory and Kafka alike.

These tests use only the protocol. A real broker delivers asynchronously, so they wait
for what they expect with a generous bound (``BOUND_S``) instead of assuming it is
there on the first ``getmany``; the in-memory bus meets every bound in milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from services.core.bus import (
    Bus,
    BusClosedError,
    CommitFailedError,
    Consumer,
    KeyedValue,
    Message,
    MessageTooLargeError,
    RecordMetadata,
    TopicPartition,
    TopicSpec,
    UnknownTopicError,
    all_sent,
)

NameFactory = Callable[[str], str]

BOUND_S = 10.0
# How long to listen to make sure nothing more comes: a missed extra is a weaker test
# on a slow broker, never a false failure.
QUIET_S = 0.05


async def read(consumer: Consumer, count: int) -> list[Message]:
    """Read exactly ``count`` messages, failing if they do not come within ``BOUND_S``."""
    messages: list[Message] = []
    try:
        async with asyncio.timeout(BOUND_S):
            while len(messages) < count:
                messages += await consumer.getmany(
                    max_records=count - len(messages), timeout_s=BOUND_S
                )
    except TimeoutError:
        pytest.fail(f"read {len(messages)} of {count} messages within {BOUND_S}s")
    return messages


async def read_from_members(members: Sequence[Consumer], count: int) -> list[list[Message]]:
    """Read with every member until they got ``count`` messages in all; one list each."""
    per_member: list[list[Message]] = [[] for _ in members]
    try:
        async with asyncio.timeout(BOUND_S):
            while sum(map(len, per_member)) < count:
                left = count - sum(map(len, per_member))
                batches = await asyncio.gather(
                    *(m.getmany(max_records=left, timeout_s=QUIET_S) for m in members)
                )
                for received, batch in zip(per_member, batches, strict=True):
                    received += batch
    except TimeoutError:
        pytest.fail(f"read {sum(map(len, per_member))} of {count} messages within {BOUND_S}s")
    return per_member


async def settle(
    members: Sequence[Consumer], partitions: frozenset[TopicPartition]
) -> list[list[Message]]:
    """Poll every member until each partition is owned by exactly one of them.

    Members switch to a new assignment while polling, so this returns what each read
    meanwhile.
    """
    per_member: list[list[Message]] = [[] for _ in members]
    try:
        async with asyncio.timeout(BOUND_S):
            while True:
                for member, received in zip(members, per_member, strict=True):
                    received += await member.getmany(max_records=1000, timeout_s=QUIET_S)
                owned = Counter(tp for m in members for tp in m.assignment())
                if set(owned) == partitions and set(owned.values()) == {1}:
                    return per_member
    except TimeoutError:
        assignments = [sorted(m.assignment()) for m in members]
        pytest.fail(f"partitions not split among members within {BOUND_S}s: {assignments}")


async def expect_nothing_more(consumer: Consumer) -> None:
    assert await consumer.getmany(max_records=100, timeout_s=QUIET_S) == []


def positions(messages: Sequence[Message]) -> list[tuple[int, int]]:
    return [(m.partition, m.offset) for m in messages]


def next_offsets(messages: Sequence[Message]) -> dict[TopicPartition, int]:
    """What a consumer commits after processing ``messages``: last offset + 1 per partition."""
    offsets: dict[TopicPartition, int] = {}
    for m in messages:
        offsets[m.topic_partition] = max(offsets.get(m.topic_partition, 0), m.offset + 1)
    return offsets


async def new_topic(bus: Bus, unique_name: NameFactory, partitions: int) -> str:
    topic = unique_name("topic")
    await bus.create_topics([TopicSpec(topic, partitions=partitions)])
    return topic


def all_partitions(topic: str, count: int) -> frozenset[TopicPartition]:
    return frozenset(TopicPartition(topic, p) for p in range(count))


async def test_round_trip_keeps_key_value_and_headers(bus: Bus, unique_name: NameFactory) -> None:
    topic = await new_topic(bus, unique_name, partitions=1)
    producer = await bus.producer()
    headers = [("source", b"demo"), ("attempt", b"\x00\x01"), ("source", b"again")]
    before_ms = time.time_ns() // 1_000_000

    metadata = await producer.send(topic, b"a mention", key=b"brand-1", headers=headers)
    after_ms = time.time_ns() // 1_000_000
    consumer = await bus.consumer(unique_name("group"), [topic])
    [message] = await read(consumer, 1)

    assert metadata == RecordMetadata(topic, 0, 0)
    assert (message.topic, message.partition, message.offset) == (topic, 0, 0)
    assert message.key == b"brand-1"
    assert message.value == b"a mention"
    assert message.headers == tuple(headers)
    # Wall-clock milliseconds; the slack is for a broker whose clock differs a little.
    assert before_ms - 60_000 <= message.timestamp_ms <= after_ms + 60_000


async def test_message_without_key_or_headers(bus: Bus, unique_name: NameFactory) -> None:
    topic = await new_topic(bus, unique_name, partitions=3)
    producer = await bus.producer()

    await producer.send(topic, b"")
    consumer = await bus.consumer(unique_name("group"), [topic])
    [message] = await read(consumer, 1)

    assert (message.key, message.value, message.headers) == (None, b"", ())


async def test_offsets_start_at_zero_and_grow_by_one_per_partition(
    bus: Bus, unique_name: NameFactory
) -> None:
    topic = await new_topic(bus, unique_name, partitions=3)
    producer = await bus.producer()

    sent = [await producer.send(topic, b"v", key=f"key-{i}".encode()) for i in range(30)]

    by_partition: dict[int, list[int]] = {}
    for metadata in sent:
        assert metadata.topic == topic
        by_partition.setdefault(metadata.partition, []).append(metadata.offset)
    for offsets in by_partition.values():
        assert offsets == list(range(len(offsets)))
    ends = await bus.end_offsets(sorted(all_partitions(topic, 3)))
    assert ends == {TopicPartition(topic, p): len(by_partition.get(p, [])) for p in range(3)}


async def test_same_key_same_partition_in_send_order(bus: Bus, unique_name: NameFactory) -> None:
    topic = await new_topic(bus, unique_name, partitions=4)
    producer = await bus.producer()
    keys = [f"brand-{k}".encode() for k in range(6)]

    partition_of: dict[bytes, set[int]] = {key: set() for key in keys}
    for i in range(10):
        for key in keys:
            metadata = await producer.send(topic, str(i).encode(), key=key)
            partition_of[key].add(metadata.partition)
    consumer = await bus.consumer(unique_name("group"), [topic])
    messages = await read(consumer, 60)

    assert all(len(partitions) == 1 for partitions in partition_of.values())
    for key in keys:
        of_key = [m for m in messages if m.key == key]
        assert {m.partition for m in of_key} == partition_of[key]
        assert [m.value for m in of_key] == [str(i).encode() for i in range(10)]


async def test_each_group_gets_every_message(bus: Bus, unique_name: NameFactory) -> None:
    topic = await new_topic(bus, unique_name, partitions=3)
    producer = await bus.producer()
    for i in range(12):
        await producer.send(topic, str(i).encode(), key=str(i).encode())

    scorer = await bus.consumer(unique_name("scorer"), [topic])
    archiver = await bus.consumer(unique_name("archiver"), [topic])
    scored = await read(scorer, 12)
    archived = await read(archiver, 12)

    everything = {str(i).encode() for i in range(12)}
    assert {m.value for m in scored} == everything
    assert {m.value for m in archived} == everything
    await expect_nothing_more(scorer)
    await expect_nothing_more(archiver)


async def test_members_split_partitions_and_see_each_message_once(
    bus: Bus, unique_name: NameFactory
) -> None:
    topic = await new_topic(bus, unique_name, partitions=4)
    group = unique_name("group")
    members = [await bus.consumer(group, [topic]), await bus.consumer(group, [topic])]
    before = await settle(members, all_partitions(topic, 4))
    assert before == [[], []]
    assert all(m.assignment() for m in members)

    producer = await bus.producer()
    for i in range(40):
        await producer.send(topic, str(i).encode(), key=f"mention-{i}".encode())
    per_member = await read_from_members(members, 40)
    for member, received in zip(members, per_member, strict=True):
        assert {m.topic_partition for m in received} <= member.assignment()
        await member.commit(next_offsets(received))

    received_all = [m for received in per_member for m in received]
    assert sorted(positions(received_all)) == sorted(set(positions(received_all)))
    assert {m.value for m in received_all} == {str(i).encode() for i in range(40)}
    ends = await bus.end_offsets(sorted(all_partitions(topic, 4)))
    for tp, end in ends.items():
        assert await bus.committed(group, tp) == (end if end else None)
    for member in members:
        await member.close()
    await expect_nothing_more(await bus.consumer(group, [topic]))


async def test_next_member_resumes_after_the_committed_offset(
    bus: Bus, unique_name: NameFactory
) -> None:
    topic = await new_topic(bus, unique_name, partitions=1)
    group = unique_name("group")
    producer = await bus.producer()
    for i in range(5):
        await producer.send(topic, str(i).encode())
    tp = TopicPartition(topic, 0)

    first = await bus.consumer(group, [topic])
    assert [m.offset for m in await read(first, 5)] == [0, 1, 2, 3, 4]
    # Only the first three were processed when it stopped.
    await first.commit({tp: 3})
    await first.close()
    second = await bus.consumer(group, [topic])

    assert await bus.committed(group, tp) == 3
    assert [m.offset for m in await read(second, 2)] == [3, 4]
    await expect_nothing_more(second)


async def test_close_without_commit_redelivers(bus: Bus, unique_name: NameFactory) -> None:
    topic = await new_topic(bus, unique_name, partitions=2)
    group = unique_name("group")
    producer = await bus.producer()
    for i in range(6):
        await producer.send(topic, str(i).encode(), key=str(i).encode())

    first = await bus.consumer(group, [topic])
    delivered = await read(first, 6)
    await first.close()
    second = await bus.consumer(group, [topic])
    redelivered = await read(second, 6)

    assert sorted(positions(redelivered)) == sorted(positions(delivered))
    for tp in all_partitions(topic, 2):
        assert await bus.committed(group, tp) is None


async def test_rebalance_on_join_loses_nothing_that_was_committed(
    bus: Bus, unique_name: NameFactory
) -> None:
    topic = await new_topic(bus, unique_name, partitions=4)
    group = unique_name("group")
    producer = await bus.producer()
    first = await bus.consumer(group, [topic])
    assert first.assignment() == all_partitions(topic, 4)
    for i in range(20):
        await producer.send(topic, f"before-{i}".encode(), key=f"m{i}".encode())
    await first.commit(next_offsets(await read(first, 20)))

    second = await bus.consumer(group, [topic])
    during = await settle([first, second], all_partitions(topic, 4))
    assert during == [[], []]
    assert first.assignment()
    assert second.assignment()
    for i in range(20):
        await producer.send(topic, f"after-{i}".encode(), key=f"m{i}".encode())
    per_member = await read_from_members([first, second], 20)

    for member, received in zip([first, second], per_member, strict=True):
        assert {m.topic_partition for m in received} <= member.assignment()
    received_all = [m for received in per_member for m in received]
    assert sorted(m.value for m in received_all) == sorted(f"after-{i}".encode() for i in range(20))


async def test_commit_of_a_partition_lost_in_a_rebalance_fails(
    bus: Bus, unique_name: NameFactory
) -> None:
    topic = await new_topic(bus, unique_name, partitions=4)
    group = unique_name("group")
    producer = await bus.producer()
    for i in range(20):
        await producer.send(topic, str(i).encode(), key=f"m{i}".encode())
    first = await bus.consumer(group, [topic])
    processed = next_offsets(await read(first, 20))

    second = await bus.consumer(group, [topic])
    read_while_settling = await settle([first, second], all_partitions(topic, 4))
    lost = {tp: offset for tp, offset in processed.items() if tp not in first.assignment()}
    kept = {tp: offset for tp, offset in processed.items() if tp in first.assignment()}
    assert lost, "the second member took no partition that had messages"

    with pytest.raises(CommitFailedError):
        await first.commit(lost)
    for tp in lost:
        assert await bus.committed(group, tp) is None
    # The new owner gets what the old one could not commit.
    to_redeliver = sum(lost.values())
    redelivered = read_while_settling[1]
    redelivered += await read(second, to_redeliver - len(redelivered))
    assert next_offsets(redelivered) == lost
    await first.commit(kept)
    for tp, offset in kept.items():
        assert await bus.committed(group, tp) == offset


async def test_getmany_returns_empty_after_the_timeout(bus: Bus, unique_name: NameFactory) -> None:
    topic = await new_topic(bus, unique_name, partitions=2)
    consumer = await bus.consumer(unique_name("group"), [topic])
    loop = asyncio.get_running_loop()

    started = loop.time()
    assert await consumer.getmany(max_records=10, timeout_s=0.05) == []

    assert loop.time() - started < BOUND_S


async def test_getmany_returns_as_soon_as_a_message_arrives(
    bus: Bus, unique_name: NameFactory
) -> None:
    topic = await new_topic(bus, unique_name, partitions=1)
    consumer = await bus.consumer(unique_name("group"), [topic])
    producer = await bus.producer()
    polling = asyncio.Event()

    async def poll() -> list[Message]:
        polling.set()
        # Far longer than the bound below: returning in time proves it woke on the message.
        return await consumer.getmany(max_records=10, timeout_s=10 * BOUND_S)

    task = asyncio.create_task(poll())
    await polling.wait()
    await producer.send(topic, b"hello")
    messages = await asyncio.wait_for(task, BOUND_S)

    assert [m.value for m in messages] == [b"hello"]


async def test_unknown_topic_is_an_error(bus: Bus, unique_name: NameFactory) -> None:
    missing = unique_name("never-created")
    producer = await bus.producer()

    with pytest.raises(UnknownTopicError):
        await producer.send(missing, b"v")
    with pytest.raises(UnknownTopicError):
        await bus.consumer(unique_name("group"), [missing])
    with pytest.raises(UnknownTopicError):
        await bus.end_offsets([TopicPartition(missing, 0)])


async def test_end_offsets_and_committed(bus: Bus, unique_name: NameFactory) -> None:
    topic = await new_topic(bus, unique_name, partitions=2)
    group = unique_name("group")
    tps = sorted(all_partitions(topic, 2))
    assert await bus.end_offsets(tps) == dict.fromkeys(tps, 0)
    assert await bus.committed(group, tps[0]) is None

    producer = await bus.producer()
    sent = [await producer.send(topic, b"v", key=f"k{i}".encode()) for i in range(7)]
    consumer = await bus.consumer(group, [topic])
    messages = await read(consumer, 7)
    await consumer.commit(next_offsets(messages))

    ends = await bus.end_offsets(tps)
    assert ends == {tp: sum(1 for m in sent if m.partition == tp.partition) for tp in tps}
    for tp in tps:
        assert await bus.committed(group, tp) == (ends[tp] or None)
    assert await bus.committed(unique_name("other-group"), tps[0]) is None


async def test_create_topics_is_idempotent(bus: Bus, unique_name: NameFactory) -> None:
    topic = unique_name("topic")
    await bus.create_topics([TopicSpec(topic, partitions=2)])
    producer = await bus.producer()
    metadata = await producer.send(topic, b"kept", key=b"k")

    await bus.create_topics([TopicSpec(topic, partitions=2)])
    await bus.create_topics([TopicSpec(topic, partitions=2), TopicSpec(topic, partitions=2)])

    tp = TopicPartition(topic, metadata.partition)
    assert (await bus.end_offsets([tp]))[tp] == 1
    consumer = await bus.consumer(unique_name("group"), [topic])
    assert [m.value for m in await read(consumer, 1)] == [b"kept"]


async def test_flush_returns_once_sent_messages_are_stored(
    bus: Bus, unique_name: NameFactory
) -> None:
    topic = await new_topic(bus, unique_name, partitions=1)
    producer = await bus.producer()
    for i in range(3):
        await producer.send(topic, str(i).encode())

    await asyncio.wait_for(producer.flush(), BOUND_S)

    tp = TopicPartition(topic, 0)
    assert await bus.end_offsets([tp]) == {tp: 3}


async def test_closed_producer_and_consumer_refuse_work(bus: Bus, unique_name: NameFactory) -> None:
    topic = await new_topic(bus, unique_name, partitions=1)
    producer = await bus.producer()
    consumer = await bus.consumer(unique_name("group"), [topic])

    await producer.close()
    await consumer.close()
    await producer.close()
    await consumer.close()

    with pytest.raises(BusClosedError):
        await producer.send(topic, b"v")
    with pytest.raises(BusClosedError):
        await consumer.getmany(max_records=1, timeout_s=0)
    with pytest.raises(BusClosedError):
        await consumer.commit({TopicPartition(topic, 0): 0})


async def test_send_many_partitions_like_single_sends_and_keeps_batch_order(
    bus: Bus, unique_name: NameFactory
) -> None:
    one_by_one = await new_topic(bus, unique_name, partitions=4)
    batched = await new_topic(bus, unique_name, partitions=4)
    producer = await bus.producer()
    records: list[KeyedValue] = [(f"brand-{i % 6}".encode(), f"v{i}".encode()) for i in range(30)]

    single = [await producer.send(one_by_one, value, key=key) for key, value in records]
    results = all_sent(await producer.send_many(batched, records))
    consumer = await bus.consumer(unique_name("group"), [batched])
    messages = await read(consumer, len(records))

    assert [r.topic for r in results] == [batched] * len(records)
    assert [r.partition for r in results] == [s.partition for s in single]
    for p in range(4):
        # Within a partition, in the order of the batch, at the offsets returned.
        sent = [
            (r.offset, value)
            for r, (_, value) in zip(results, records, strict=True)
            if r.partition == p
        ]
        read_back = sorted((m.offset, m.value) for m in messages if m.partition == p)
        assert read_back == sent
        assert [offset for offset, _ in sent] == list(range(len(sent)))
    assert {(m.key, m.value) for m in messages} == set(records)


async def test_send_many_fails_only_the_message_that_cannot_be_stored(
    bus: Bus, unique_name: NameFactory
) -> None:
    topic = await new_topic(bus, unique_name, partitions=2)
    producer = await bus.producer()
    too_large = b"x" * (2 * 1_048_576)
    records: list[KeyedValue] = [(b"a", b"first"), (b"b", too_large), (None, b"third")]

    results = await producer.send_many(topic, records)

    assert isinstance(results[0], RecordMetadata)
    assert isinstance(results[1], MessageTooLargeError)
    assert isinstance(results[2], RecordMetadata)
    with pytest.raises(MessageTooLargeError):
        all_sent(results)
    consumer = await bus.consumer(unique_name("group"), [topic])
    assert sorted(m.value for m in await read(consumer, 2)) == [b"first", b"third"]
    await asyncio.wait_for(producer.flush(), BOUND_S)


async def test_send_many_of_nothing_and_to_an_unknown_topic(
    bus: Bus, unique_name: NameFactory
) -> None:
    topic = await new_topic(bus, unique_name, partitions=1)
    producer = await bus.producer()

    assert await producer.send_many(topic, []) == []
    with pytest.raises(UnknownTopicError):
        await producer.send_many(unique_name("never-created"), [(b"k", b"v")])
    await producer.close()
    with pytest.raises(BusClosedError):
        await producer.send_many(topic, [(b"k", b"v")])
