"""The journaled bus: what a restart restores, a kill keeps, and the journal on disk."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from services.core.bus import Bus, Consumer, Message, TopicPartition, TopicSpec, all_sent
from services.core.bus import journal as journal_module
from services.core.bus.journal import JournaledBus, JournalError, JournalLockedError
from services.core.clock import FrozenClock

T = TypeVar("T")

BOUND_S = 10.0
RAW = "mentions.raw"
SCORED = "mentions.scored"
TOPICS = (TopicSpec(RAW, partitions=2), TopicSpec(SCORED, partitions=2))
REPO_ROOT = Path(__file__).resolve().parents[3]

Opener = Callable[..., Coroutine[Any, Any, JournaledBus]]


@pytest.fixture
async def open_bus() -> AsyncIterator[Opener]:
    """Opens journaled buses (journaling ``RAW`` unless told); closes them after the test."""
    opened: list[JournaledBus] = []

    async def open_bus(directory: Path, **options: Any) -> JournaledBus:
        options.setdefault("journaled", {RAW})
        bus = await JournaledBus.open(directory, options.pop("topics", TOPICS), **options)
        opened.append(bus)
        return bus

    yield open_bus
    # A second close of a bus the test closed does nothing.
    for bus in opened:
        await bus.close()


async def read(consumer: Consumer, count: int) -> list[Message]:
    """Read exactly ``count`` messages, failing if they do not come within ``BOUND_S``."""
    messages: list[Message] = []
    async with asyncio.timeout(BOUND_S):
        while len(messages) < count:
            messages += await consumer.getmany(max_records=count - len(messages), timeout_s=BOUND_S)
    return messages


async def nothing_more(consumer: Consumer) -> bool:
    # The in-memory bus has every message at hand: a zero timeout looks at all of them.
    return await consumer.getmany(max_records=1000, timeout_s=0) == []


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("journal-*.log"))


def next_offsets(messages: list[Message]) -> dict[TopicPartition, int]:
    offsets: dict[TopicPartition, int] = {}
    for m in messages:
        offsets[m.topic_partition] = max(offsets.get(m.topic_partition, 0), m.offset + 1)
    return offsets


async def running(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Start ``coro`` in a task and return once it is suspended at its first wait."""
    started = asyncio.Event()

    async def run() -> T:
        started.set()
        return await coro

    task = asyncio.create_task(run())
    await started.wait()
    return task


def test_journaled_bus_implements_the_protocol() -> None:
    assert issubclass(JournaledBus, Bus)


async def test_reopened_bus_delivers_exactly_the_uncommitted_messages_at_their_offsets(
    tmp_path: Path, open_bus: Opener
) -> None:
    clock = FrozenClock(datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    bus = await open_bus(tmp_path, clock=clock)
    consumer = await bus.consumer("scorer", [RAW])
    producer = await bus.producer()
    for i in range(10):
        clock.advance(timedelta(seconds=1))
        await producer.send(
            RAW, f"mention {i}".encode(), key=f"k{i}".encode(), headers=[("n", bytes([i]))]
        )
    sent = await read(consumer, 10)
    # Each partition's first two messages were stored; the rest were not.
    committed = [m for m in sent if m.offset < 2]
    await consumer.commit(next_offsets(committed))
    tps = [TopicPartition(RAW, p) for p in range(2)]
    ends = await bus.end_offsets(tps)
    await bus.close()

    bus = await open_bus(tmp_path, clock=clock)
    assert bus.replayed.messages == {RAW: 10 - len(committed)}
    assert not bus.replayed.truncated
    assert await bus.end_offsets(tps) == ends
    for tp in tps:
        assert await bus.committed("scorer", tp) == 2
    consumer = await bus.consumer("scorer", [RAW])
    redelivered = await read(consumer, 10 - len(committed))
    assert await nothing_more(consumer)
    uncommitted = [m for m in sent if m.offset >= 2]
    assert sorted(redelivered, key=lambda m: (m.partition, m.offset)) == sorted(
        uncommitted, key=lambda m: (m.partition, m.offset)
    )

    producer = await bus.producer()
    more = await producer.send(RAW, b"after the restart", key=b"k0")
    assert more.offset == ends[TopicPartition(RAW, more.partition)]
    [message] = await read(consumer, 1)
    assert (message.partition, message.offset, message.value) == (
        more.partition,
        more.offset,
        b"after the restart",
    )


async def test_acknowledged_sends_are_on_disk_without_close(
    tmp_path: Path, open_bus: Opener
) -> None:
    bus = await open_bus(tmp_path / "live")
    producer = await bus.producer()
    acked = await asyncio.gather(
        *(producer.send(RAW, f"mention {i}".encode(), key=f"k{i}".encode()) for i in range(49))
    )
    # Alone, a send never yields to the event loop: nothing else could write it after.
    acked.append(await producer.send(RAW, b"mention 49", key=b"k49"))
    # What the files hold right now is what a killed process leaves: no close, no fsync.
    shutil.copytree(tmp_path / "live", tmp_path / "after-kill")

    survivor = await open_bus(tmp_path / "after-kill")
    assert survivor.replayed.messages == {RAW: 50}
    consumer = await survivor.consumer("scorer", [RAW])
    found = {(m.partition, m.offset): m.value for m in await read(consumer, 50)}
    assert found == {
        (sent.partition, sent.offset): f"mention {i}".encode() for i, sent in enumerate(acked)
    }


# Sends mentions as fast as it can, 100 at a time, and prints "<index> <partition> <offset>"
# for each once its ``send`` returned.
SENDER = """
import asyncio, sys
from pathlib import Path
from services.core.bus import TopicSpec
from services.core.bus.journal import JournaledBus

async def main() -> None:
    bus = await JournaledBus.open(
        Path(sys.argv[1]), [TopicSpec("raw", 4)], journaled={"raw"},
        partition_capacity=1_000_000,
    )
    producer = await bus.producer()

    async def send(i: int) -> None:
        sent = await producer.send("raw", b"mention-%d" % i, key=b"%d" % i)
        print(i, sent.partition, sent.offset, flush=True)

    for start in range(0, 1_000_000, 100):
        await asyncio.gather(*(send(i) for i in range(start, start + 100)))

asyncio.run(main())
"""


# In the middle of a batch: some of its sends are acknowledged, the others still pending.
KILL_AFTER_ACKS = 3_050


async def test_sigkill_mid_stream_loses_no_acknowledged_mention(
    tmp_path: Path, open_bus: Opener
) -> None:
    directory = tmp_path / "journal"
    sender = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SENDER,
        str(directory),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert sender.stdout is not None
    stdout = sender.stdout
    acked: dict[int, tuple[int, int]] = {}
    enough = asyncio.Event()

    async def collect() -> None:
        # Read all along, so that the sender never waits on a full pipe: it is killed
        # in the middle of its sends, not while it idles.
        async for line in stdout:
            if line.endswith(b"\n"):
                index, partition, offset = map(int, line.split())
                acked[index] = (partition, offset)
            if len(acked) >= KILL_AFTER_ACKS:
                enough.set()
        enough.set()

    collector = asyncio.create_task(collect())
    try:
        async with asyncio.timeout(BOUND_S * 3):
            await enough.wait()
    finally:
        sender.send_signal(signal.SIGKILL)
    # Killed, not ended on its own before the test got to it.
    assert await sender.wait() == -signal.SIGKILL
    await collector
    assert len(acked) >= KILL_AFTER_ACKS

    bus = await open_bus(
        directory,
        topics=[TopicSpec("raw", 4)],
        journaled={"raw"},
        partition_capacity=1_000_000,
    )
    tps = [TopicPartition("raw", p) for p in range(4)]
    stored = sum((await bus.end_offsets(tps)).values())
    assert bus.replayed.messages == {"raw": stored}
    assert stored >= len(acked)
    consumer = await bus.consumer("check", ["raw"])
    found = {(m.partition, m.offset): m.value for m in await read(consumer, stored)}
    for index, position in acked.items():
        assert found.get(position) == b"mention-%d" % index
    assert max(Counter(found.values()).values()) == 1


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"\x2a\x00\x00", id="frame-cut-short"),
        pytest.param(journal_module._FRAME.pack(100, 0) + b"0123456789", id="record-cut-short"),
        pytest.param(journal_module._FRAME.pack(4, 12345) + b"abcd", id="bad-checksum"),
    ],
)
async def test_torn_tail_is_truncated_and_everything_before_it_kept(
    tmp_path: Path, open_bus: Opener, tail: bytes
) -> None:
    bus = await open_bus(tmp_path)
    producer = await bus.producer()
    for i in range(10):
        await producer.send(RAW, f"mention {i}".encode(), key=b"k")
    await bus.close()
    last = segments(tmp_path)[-1]
    size = last.stat().st_size
    with last.open("ab") as file:
        file.write(tail)

    bus = await open_bus(tmp_path)

    assert bus.replayed.truncated
    assert bus.replayed.truncated_bytes == len(tail)
    assert last.stat().st_size == size
    consumer = await bus.consumer("scorer", [RAW])
    messages = await read(consumer, 10)
    assert [m.value for m in messages] == [f"mention {i}".encode() for i in range(10)]
    producer = await bus.producer()
    assert (await producer.send(RAW, b"next", key=b"k")).offset == 10
    await bus.close()
    assert not (await open_bus(tmp_path)).replayed.truncated


async def test_segments_roll_over_and_are_deleted_once_committed(
    tmp_path: Path, open_bus: Opener
) -> None:
    topics = [TopicSpec(RAW, partitions=1)]
    bus = await open_bus(tmp_path, topics=topics, segment_bytes=2_000)
    consumer = await bus.consumer("scorer", [RAW])
    producer = await bus.producer()
    for i in range(100):
        await producer.send(RAW, b"%03d" % i + b"." * 100)
    await bus.sync()
    rolled = segments(tmp_path)
    assert len(rolled) > 5

    await consumer.commit({TopicPartition(RAW, 0): 60})
    await bus.sync()
    kept = segments(tmp_path)
    assert 1 < len(kept) < len(rolled)
    assert kept == rolled[-len(kept) :]
    await bus.close()

    bus = await open_bus(tmp_path, topics=topics, segment_bytes=2_000)
    assert bus.replayed.messages == {RAW: 40}
    consumer = await bus.consumer("scorer", [RAW])
    messages = await read(consumer, 40)
    assert [m.offset for m in messages] == list(range(60, 100))
    assert [m.value[:3] for m in messages] == [b"%03d" % i for i in range(60, 100)]
    assert await nothing_more(consumer)

    await consumer.commit({TopicPartition(RAW, 0): 100})
    await bus.sync()
    assert len(segments(tmp_path)) == 1
    await bus.close()
    bus = await open_bus(tmp_path, topics=topics)
    assert bus.replayed.messages == {RAW: 0}
    producer = await bus.producer()
    assert (await producer.send(RAW, b"next")).offset == 100


async def test_a_segment_pinned_by_one_message_does_not_keep_later_ones(
    tmp_path: Path, open_bus: Opener
) -> None:
    topics = [TopicSpec(RAW, partitions=1), TopicSpec(SCORED, partitions=1)]
    journaled = {RAW, SCORED}
    bus = await open_bus(tmp_path, topics=topics, journaled=journaled, segment_bytes=2_000)
    slow = await bus.consumer("slow", [SCORED])
    fast = await bus.consumer("fast", [RAW])
    producer = await bus.producer()
    await producer.send(SCORED, b"not stored yet")
    for i in range(100):
        await producer.send(RAW, b"%03d" % i + b"." * 100)
    await fast.commit({TopicPartition(RAW, 0): 100})
    await bus.sync()

    # The first segment (the uncommitted message) and the one written to are left.
    assert len(segments(tmp_path)) == 2
    await bus.close()

    bus = await open_bus(tmp_path, topics=topics, journaled=journaled)
    assert bus.replayed.messages == {RAW: 0, SCORED: 1}
    slow = await bus.consumer("slow", [SCORED])
    [message] = await read(slow, 1)
    assert (message.offset, message.value) == (0, b"not stored yet")
    fast = await bus.consumer("fast", [RAW])
    assert await nothing_more(fast)
    producer = await bus.producer()
    assert (await producer.send(RAW, b"next")).offset == 100


async def test_topics_not_journaled_are_not_written(tmp_path: Path, open_bus: Opener) -> None:
    bus = await open_bus(tmp_path)
    await bus.consumer("scored-reader", [SCORED])
    producer = await bus.producer()
    await producer.send(SCORED, b"SCORED-ONLY-IN-MEMORY", key=b"k")
    await producer.send(RAW, b"RAW-JOURNALED", key=b"k")
    await bus.close()

    journal = b"".join(path.read_bytes() for path in segments(tmp_path))
    assert b"RAW-JOURNALED" in journal
    assert b"SCORED-ONLY-IN-MEMORY" not in journal
    assert b"scored-reader" not in journal
    bus = await open_bus(tmp_path)
    assert bus.replayed.messages == {RAW: 1}
    tps = [TopicPartition(SCORED, p) for p in range(2)]
    assert await bus.end_offsets(tps) == {tp: 0 for tp in tps}


async def test_second_opener_of_a_directory_fails(tmp_path: Path, open_bus: Opener) -> None:
    bus = await open_bus(tmp_path)

    with pytest.raises(JournalLockedError, match=f"in use by another bus \\(process {os.getpid()}"):
        await open_bus(tmp_path)

    await bus.close()
    await open_bus(tmp_path)


async def test_group_that_never_committed_still_pins_its_messages_after_reopen(
    tmp_path: Path, open_bus: Opener
) -> None:
    topics = [TopicSpec(RAW, partitions=1)]
    bus = await open_bus(tmp_path, topics=topics, partition_capacity=5)
    await bus.consumer("never-commits", [RAW])
    other = await bus.consumer("commits", [RAW])
    producer = await bus.producer()
    for i in range(5):
        await producer.send(RAW, b"%d" % i)
    await other.commit(next_offsets(await read(other, 5)))
    await bus.close()

    bus = await open_bus(tmp_path, topics=topics, partition_capacity=5)
    assert bus.replayed.messages == {RAW: 5}
    producer = await bus.producer()
    # The partition is full of messages "never-commits" still holds: a send waits.
    blocked = await running(producer.send(RAW, b"5"))
    assert not blocked.done()
    tp = TopicPartition(RAW, 0)
    assert await bus.end_offsets([tp]) == {tp: 5}

    pinned = await bus.consumer("never-commits", [RAW])
    messages = await read(pinned, 5)
    assert [m.value for m in messages] == [b"%d" % i for i in range(5)]
    await pinned.commit({tp: 1})
    assert (await asyncio.wait_for(blocked, BOUND_S)).offset == 5


async def test_a_failed_write_fails_the_send_and_every_later_one(
    tmp_path: Path, open_bus: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = await open_bus(tmp_path)
    producer = await bus.producer()
    await producer.send(RAW, b"kept", key=b"k")

    def disk_full(fd: int, data: bytes | bytearray) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module, "_write_all", disk_full)
    with pytest.raises(JournalError, match="No space left"):
        await producer.send(RAW, b"lost", key=b"k")
    with pytest.raises(JournalError, match="No space left"):
        await producer.send(RAW, b"refused", key=b"k")
    with pytest.raises(JournalError):
        await bus.close()
    monkeypatch.undo()

    bus = await open_bus(tmp_path)
    consumer = await bus.consumer("scorer", [RAW])
    assert [m.value for m in await read(consumer, 1)] == [b"kept"]
    assert await nothing_more(consumer)


async def test_a_journal_that_recorded_nothing_opens_again(
    tmp_path: Path, open_bus: Opener
) -> None:
    for _ in range(3):
        bus = await open_bus(tmp_path, topics=[])
        assert bus.replayed.messages == {}
        await bus.close()
    bus = await open_bus(tmp_path, topics=[])
    await bus.create_topics([TopicSpec(RAW, partitions=1)])
    producer = await bus.producer()
    await producer.send(RAW, b"kept")
    await bus.close()

    bus = await open_bus(tmp_path, topics=[TopicSpec(RAW, partitions=1)])
    consumer = await bus.consumer("scorer", [RAW])
    assert [m.value for m in await read(consumer, 1)] == [b"kept"]


async def test_send_many_is_on_disk_when_it_returns(tmp_path: Path, open_bus: Opener) -> None:
    bus = await open_bus(tmp_path / "live")
    producer = await bus.producer()
    records = [(f"k{i}".encode(), f"mention {i}".encode()) for i in range(50)]

    results = await producer.send_many(RAW, records)
    # What the files hold right now is what a killed process leaves: no close, no fsync.
    shutil.copytree(tmp_path / "live", tmp_path / "after-kill")

    survivor = await open_bus(tmp_path / "after-kill")
    assert survivor.replayed.messages == {RAW: 50}
    consumer = await survivor.consumer("scorer", [RAW])
    found = {(m.partition, m.offset): (m.key, m.value) for m in await read(consumer, 50)}
    assert found == {
        (sent.partition, sent.offset): record
        for sent, record in zip(all_sent(results), records, strict=True)
    }


async def test_a_failed_write_fails_every_message_of_the_batch(
    tmp_path: Path, open_bus: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = await open_bus(tmp_path)
    producer = await bus.producer()
    assert all_sent(await producer.send_many(RAW, [(b"k", b"kept")]))

    def disk_full(fd: int, data: bytes | bytearray) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module, "_write_all", disk_full)
    lost = await producer.send_many(RAW, [(b"k", b"lost"), (b"j", b"lost too")])
    refused = await producer.send_many(RAW, [(b"k", b"refused")])
    assert all(isinstance(r, JournalError) for r in [*lost, *refused])
    with pytest.raises(JournalError):
        await bus.close()
    monkeypatch.undo()

    bus = await open_bus(tmp_path)
    consumer = await bus.consumer("scorer", [RAW])
    assert [m.value for m in await read(consumer, 1)] == [b"kept"]
    assert await nothing_more(consumer)


async def test_send_many_waits_for_room_with_what_it_appended_readable_and_journaled(
    tmp_path: Path, open_bus: Opener
) -> None:
    topics = [TopicSpec(RAW, partitions=1)]
    bus = await open_bus(tmp_path, topics=topics, partition_capacity=2)
    consumer = await bus.consumer("scorer", [RAW])
    producer = await bus.producer()
    tp = TopicPartition(RAW, 0)

    blocked = await running(producer.send_many(RAW, [(None, b"%d" % i) for i in range(4)]))
    first = await read(consumer, 2)
    assert [m.value for m in first] == [b"0", b"1"]
    assert not blocked.done()
    # The commit that makes room is journaled after the messages it covers.
    await consumer.commit(next_offsets(first))
    results = all_sent(await asyncio.wait_for(blocked, BOUND_S))
    assert [r.offset for r in results] == [0, 1, 2, 3]
    assert [m.value for m in await read(consumer, 2)] == [b"2", b"3"]
    await bus.close()

    bus = await open_bus(tmp_path, topics=topics, partition_capacity=2)
    assert bus.replayed.messages == {RAW: 2}
    assert await bus.committed("scorer", tp) == 2
    consumer = await bus.consumer("scorer", [RAW])
    assert [(m.offset, m.value) for m in await read(consumer, 2)] == [(2, b"2"), (3, b"3")]
