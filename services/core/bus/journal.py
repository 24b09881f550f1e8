"""A ``MemoryBus`` made durable by an append-only journal on disk, replayed on start.

Embedded mode answers HTTP 202 for a mention once it is on the bus; this journal is what
keeps those mentions when the process is killed before they are stored.

Durability: ``send`` returns once the message's record was handed to the OS with
``os.write``, so killing the process (even with SIGKILL) loses nothing that ``send``
acknowledged. The files are fsynced by a background task every ``fsync_interval_s`` and
at ``close``: a power loss or an OS crash can lose up to the last ``fsync_interval_s``
of records, like a single Kafka broker with its default flush settings.

Layout: the directory holds a lock file and segments ``journal-<first record>.log``,
``<first record>`` being the sequence number of the segment's first record since the
journal began. Each record is framed as ``<u32 payload length><u32 CRC32 of payload>``
so that a record cut short by a crash is recognised; replay stops at the first record
that is incomplete or fails its checksum, truncates the segment there and reports it.
Records are messages of the journaled topics, the commits of consumer groups on those
topics, first subscriptions of groups to them, and partition end offsets; they are in
the order the changes happened. A segment starts with a snapshot of the journaled
topics' end offsets, subscriptions and commits, and a new one is started at each open
and once the current one is past ``segment_bytes``. A finished segment is deleted, at
the next fsync, once every message in it was dropped by the bus's retention (committed
by every group that ever subscribed, or pushed out by ``partition_capacity`` on a topic
no group subscribed to), so it holds nothing a replay needs.

Replay re-applies the records in order with the bus's own retention rules, so a
restarted bus holds the same messages at the same offsets, with the same committed
offsets and subscribed groups, as the one that stopped: a group resumes at its committed
offset, and new messages continue at the next offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import struct
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.core.bus.errors import BusClosedError, BusError, UnknownTopicError
from services.core.bus.memory import MemoryBus, MemoryConsumer, MemoryProducer
from services.core.bus.protocol import Message, TopicPartition, TopicSpec
from services.core.clock import Clock

log = logging.getLogger(__name__)

LOCK_FILE = "lock"
_SEGMENT_NAME = re.compile(r"journal-(\d{20})\.log")

# Frame: payload length, CRC32 of the payload.
_FRAME = struct.Struct("<II")
_BLANK_FRAME = bytes(_FRAME.size)
# kind, topic length, partition, offset, timestamp_ms, key length (-1: no key),
# value length, header count; then topic, key, value, and per header
# (name length, value length, name, value).
_MESSAGE = struct.Struct("<BHIqqiIH")
_HEADER = struct.Struct("<HI")
# kind, topic length, partition, committed offset, group length; then topic, group.
_COMMIT = struct.Struct("<BHIqH")
# kind, topic length, group length; then topic, group.
_SUBSCRIPTION = struct.Struct("<BHH")
# kind, topic length, partition, end offset; then topic.
_END = struct.Struct("<BHIq")

_KIND_MESSAGE = 1
_KIND_COMMIT = 2
_KIND_SUBSCRIPTION = 3
_KIND_END = 4


class JournalError(BusError):
    """The journal could not be written, read or opened."""


class JournalLockedError(JournalError):
    """Another bus (in this process or another one) has the journal directory open."""


@dataclass(frozen=True, slots=True)
class Replayed:
    """What opening a journal restored."""

    # Per journaled topic (and any other topic the journal held): the restored messages
    # the bus still holds, i.e. not yet committed by every group that subscribed.
    messages: Mapping[str, int]
    # Bytes dropped from segments that ended in an incomplete or corrupt record.
    truncated_bytes: int = 0

    @property
    def truncated(self) -> bool:
        return self.truncated_bytes > 0

    @property
    def total(self) -> int:
        return sum(self.messages.values())


class _CorruptRecord(Exception):
    pass


@dataclass(eq=False)
class _Segment:
    path: Path
    first_record: int
    size: int
    records: int
    # Open while it may hold writes not fsynced yet; only ``_Journal.sync`` closes it,
    # so no fd is closed while a thread fsyncs it.
    fd: int | None = None
    # For each partition with messages in this segment, the offset after its last one:
    # the segment is obsolete once the bus dropped everything below it. ``None`` while
    # the segment is written to.
    spans: dict[TopicPartition, int] | None = None
    # End offsets when the segment began, to tell which partitions it has messages of.
    starts: dict[TopicPartition, int] = field(default_factory=dict)


def _segment_path(directory: Path, first_record: int) -> Path:
    return directory / f"journal-{first_record:020d}.log"


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_all(fds: Sequence[int]) -> None:
    for fd in fds:
        os.fsync(fd)


class _Journal:
    """Writes the records of one journal directory; the ``BusJournal`` of a ``MemoryBus``."""

    def __init__(
        self,
        directory: Path,
        bus: MemoryBus,
        journaled: Collection[str],
        segments: list[_Segment],
        segment_bytes: int,
    ) -> None:
        self._directory = directory
        self._bus = bus
        self._journaled = journaled
        self._segments = segments
        self._segment_bytes = segment_bytes
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._records = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._scheduled = False
        self._unsynced = False
        self._failure: JournalError | None = None
        self._sync_lock = asyncio.Lock()
        self._topic_bytes: dict[str, bytes] = {}
        self._dir_fd = os.open(directory, os.O_RDONLY)
        # Replay left out empty segments, so this name is new.
        first = segments[-1].first_record + segments[-1].records if segments else 0
        try:
            self._start_segment(first)
        except BaseException:
            os.close(self._dir_fd)
            raise

    # The BusJournal hooks.

    def keeps(self, topic: str) -> bool:
        return topic in self._journaled

    def appended(self, message: Message) -> asyncio.Future[None] | None:
        if message.topic not in self._journaled:
            return None
        if self._failure is not None:
            raise self._failed()
        self._encode(message)
        self._records += 1
        return self._written()

    def appended_many(self, messages: Sequence[Message]) -> asyncio.Future[None] | None:
        kept = [m for m in messages if m.topic in self._journaled]
        if not kept:
            return None
        if self._failure is not None:
            raise self._failed()
        for message in kept:
            self._encode(message)
        self._records += len(kept)
        return self._written()

    def _encode(self, message: Message) -> None:
        topic = self._topic_bytes.get(message.topic)
        if topic is None:
            topic = self._topic_bytes[message.topic] = message.topic.encode()
        key = message.key
        value = message.value
        headers = message.headers
        buffer = self._buffer
        start = len(buffer)
        buffer += _BLANK_FRAME
        buffer += _MESSAGE.pack(
            _KIND_MESSAGE,
            len(topic),
            message.partition,
            message.offset,
            message.timestamp_ms,
            -1 if key is None else len(key),
            len(value),
            len(headers),
        )
        buffer += topic
        if key:
            buffer += key
        buffer += value
        for name, data in headers:
            encoded = name.encode()
            buffer += _HEADER.pack(len(encoded), len(data))
            buffer += encoded
            buffer += data
        end = len(buffer)
        _FRAME.pack_into(
            buffer,
            start,
            end - start - _FRAME.size,
            zlib.crc32(memoryview(buffer)[start + _FRAME.size :]),
        )

    def _written(self) -> asyncio.Future[None]:
        # One future per sender (a ``send`` or a ``send_many``): a shared one would be
        # cancelled for all of them when one sender is cancelled.
        written = self._loop.create_future()
        self._waiters.append(written)
        self._schedule_write()
        return written

    def committed(self, group_id: str, tp: TopicPartition, offset: int) -> None:
        if tp.topic in self._journaled and self._failure is None:
            self._buffer += _commit_record(group_id, tp, offset)
            self._records += 1
            self._schedule_write()

    def subscribed(self, group_id: str, topic: str) -> None:
        if topic in self._journaled and self._failure is None:
            self._buffer += _subscription_record(group_id, topic)
            self._records += 1
            self._schedule_write()

    # Writing.

    def _schedule_write(self) -> None:
        # Everything appended until the loop gets to this callback (a ``send_many``, a
        # whole ``asyncio.gather`` of sends) goes out in one ``os.write``.
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._write_pending)

    def _write_pending(self) -> None:
        self._scheduled = False
        if not self._buffer:
            return
        data, self._buffer = self._buffer, bytearray()
        waiters, self._waiters = self._waiters, []
        records, self._records = self._records, 0
        active = self._segments[-1]
        assert active.fd is not None
        try:
            _write_all(active.fd, data)
        except OSError as error:
            self._fail(JournalError(f"writing the journal {active.path} failed: {error}"), error)
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(self._failed())
            return
        active.size += len(data)
        active.records += records
        self._unsynced = True
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if active.size >= self._segment_bytes:
            self._roll()

    def _fail(self, failure: JournalError, cause: OSError) -> None:
        # A write cut short leaves a torn record: anything written after it would be
        # lost at replay, so the journal stops taking records altogether.
        if self._failure is None:
            log.error("%s; the bus no longer accepts messages of journaled topics", failure)
            failure.__cause__ = cause
            self._failure = failure

    def _failed(self) -> JournalError:
        # A new exception each time: raising one instance again and again would grow
        # its traceback with every raise.
        assert self._failure is not None
        failure = JournalError(*self._failure.args)
        failure.__cause__ = self._failure.__cause__
        return failure

    def _roll(self) -> None:
        active = self._segments[-1]
        ends = self._journaled_ends()
        active.spans = {tp: end for tp, end in ends.items() if end > active.starts.get(tp, 0)}
        try:
            self._start_segment(active.first_record + active.records)
        except OSError as error:
            self._fail(JournalError(f"starting a journal segment failed: {error}"), error)

    def _journaled_ends(self) -> dict[TopicPartition, int]:
        return {
            TopicPartition(state.name, partition): end
            for state in self._bus.topic_states()
            if state.name in self._journaled
            for partition, (_, end) in enumerate(state.bounds)
        }

    def _start_segment(self, first_record: int) -> None:
        snapshot = bytearray()
        records = 0
        starts: dict[TopicPartition, int] = {}
        for state in self._bus.topic_states():
            if state.name not in self._journaled:
                continue
            for partition, (_, end) in enumerate(state.bounds):
                tp = TopicPartition(state.name, partition)
                starts[tp] = end
                snapshot += _end_record(tp, end)
            for group_id in sorted(state.groups):
                snapshot += _subscription_record(group_id, state.name)
            for group_id, partition, offset in state.committed:
                snapshot += _commit_record(group_id, TopicPartition(state.name, partition), offset)
            records += len(state.bounds) + len(state.groups) + len(state.committed)
        path = _segment_path(self._directory, first_record)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            _write_all(fd, snapshot)
        except OSError:
            os.close(fd)
            raise
        self._segments.append(
            _Segment(path, first_record, len(snapshot), records, fd=fd, starts=starts)
        )
        self._unsynced = True

    # Syncing and deleting.

    async def sync(self) -> None:
        """Write what is pending, fsync it, and delete the segments no longer needed."""
        async with self._sync_lock:
            self._write_pending()
            if self._failure is not None:
                raise self._failed()
            if not self._unsynced:
                return
            self._unsynced = False
            # Judged after the commits that make them obsolete were written, and deleted
            # only once those are fsynced too.
            floors = {
                TopicPartition(state.name, partition): base
                for state in self._bus.topic_states()
                for partition, (base, _) in enumerate(state.bounds)
            }
            obsolete = [s for s in self._segments[:-1] if _obsolete(s, floors)]
            finished = [s for s in self._segments[:-1] if s.fd is not None]
            fds = [s.fd for s in finished if s.fd is not None]
            active_fd = self._segments[-1].fd
            assert active_fd is not None
            try:
                await asyncio.to_thread(_fsync_all, [*fds, active_fd, self._dir_fd])
            except OSError as error:
                self._fail(JournalError(f"fsync of the journal failed: {error}"), error)
                raise self._failed() from error
            for segment in finished:
                assert segment.fd is not None
                os.close(segment.fd)
                segment.fd = None
            for segment in obsolete:
                if segment.fd is None:
                    try:
                        segment.path.unlink(missing_ok=True)
                    except OSError as error:
                        # Only disk space is at stake: the next sync tries again.
                        log.warning("could not delete journal segment %s: %s", segment.path, error)
                        self._unsynced = True
                        continue
                    self._segments.remove(segment)

    def close_files(self) -> None:
        """Close every file; pending records are dropped (``sync`` first to keep them)."""
        for segment in self._segments:
            if segment.fd is not None:
                os.close(segment.fd)
                segment.fd = None
        os.close(self._dir_fd)


def _obsolete(segment: _Segment, floors: Mapping[TopicPartition, int]) -> bool:
    """Whether the bus dropped every message in ``segment`` (``floors``: its oldest held)."""
    assert segment.spans is not None
    return all(floors.get(tp, end) >= end for tp, end in segment.spans.items())


def _commit_record(group_id: str, tp: TopicPartition, offset: int) -> bytes:
    topic = tp.topic.encode()
    group = group_id.encode()
    payload = (
        _COMMIT.pack(_KIND_COMMIT, len(topic), tp.partition, offset, len(group)) + topic + group
    )
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _subscription_record(group_id: str, topic_name: str) -> bytes:
    topic = topic_name.encode()
    group = group_id.encode()
    payload = _SUBSCRIPTION.pack(_KIND_SUBSCRIPTION, len(topic), len(group)) + topic + group
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _end_record(tp: TopicPartition, offset: int) -> bytes:
    topic = tp.topic.encode()
    payload = _END.pack(_KIND_END, len(topic), tp.partition, offset) + topic
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


# Reading.


@dataclass(frozen=True, slots=True)
class _Commit:
    group_id: str
    tp: TopicPartition
    offset: int


@dataclass(frozen=True, slots=True)
class _Subscription:
    group_id: str
    topic: str


@dataclass(frozen=True, slots=True)
class _End:
    tp: TopicPartition
    offset: int


def _records(data: bytes) -> Iterator[tuple[int, Message | _Commit | _Subscription | _End]]:
    """Yield (position after it, record) for each record; stop at a torn or corrupt one."""
    view = memoryview(data)
    position = 0
    while position + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, position)
        start = position + _FRAME.size
        end = start + length
        if end > len(data) or zlib.crc32(view[start:end]) != crc:
            return
        try:
            record = _decode(data, start, end)
        except (_CorruptRecord, struct.error, UnicodeDecodeError):
            return
        position = end
        yield position, record


def _decode(data: bytes, start: int, end: int) -> Message | _Commit | _Subscription | _End:
    kind = data[start] if start < end else 0
    if kind == _KIND_MESSAGE:
        _, topic_len, partition, offset, timestamp_ms, key_len, value_len, header_count = (
            _MESSAGE.unpack_from(data, start)
        )
        at = start + _MESSAGE.size
        topic = data[at : at + topic_len].decode()
        at += topic_len
        key = None
        if key_len >= 0:
            key = data[at : at + key_len]
            at += key_len
        value = data[at : at + value_len]
        at += value_len
        headers = []
        for _ in range(header_count):
            name_len, data_len = _HEADER.unpack_from(data, at)
            at += _HEADER.size
            name = data[at : at + name_len].decode()
            at += name_len
            headers.append((name, data[at : at + data_len]))
            at += data_len
        if at != end:
            raise _CorruptRecord
        return Message(topic, partition, offset, key, value, tuple(headers), timestamp_ms)
    if kind == _KIND_COMMIT:
        _, topic_len, partition, offset, group_len = _COMMIT.unpack_from(data, start)
        at = start + _COMMIT.size
        if at + topic_len + group_len != end:
            raise _CorruptRecord
        topic = data[at : at + topic_len].decode()
        group_id = data[at + topic_len : end].decode()
        return _Commit(group_id, TopicPartition(topic, partition), offset)
    if kind == _KIND_SUBSCRIPTION:
        _, topic_len, group_len = _SUBSCRIPTION.unpack_from(data, start)
        at = start + _SUBSCRIPTION.size
        if at + topic_len + group_len != end:
            raise _CorruptRecord
        return _Subscription(
            data[at + topic_len : end].decode(), data[at : at + topic_len].decode()
        )
    if kind == _KIND_END:
        _, topic_len, partition, offset = _END.unpack_from(data, start)
        at = start + _END.size
        if at + topic_len != end:
            raise _CorruptRecord
        return _End(TopicPartition(data[at:end].decode(), partition), offset)
    raise _CorruptRecord


def _segment_files(directory: Path) -> list[tuple[int, Path]]:
    """The segments in ``directory`` with their first record numbers, oldest first."""
    return sorted(
        (int(match.group(1)), path)
        for path in directory.iterdir()
        if (match := _SEGMENT_NAME.fullmatch(path.name)) is not None
    )


async def _replay(directory: Path, bus: MemoryBus) -> tuple[list[_Segment], int]:
    """Restore every segment into ``bus``; return them and the bytes truncated."""
    segments: list[_Segment] = []
    truncated = 0
    for first_record, path in await asyncio.to_thread(_segment_files, directory):
        data = await asyncio.to_thread(path.read_bytes)
        size = 0
        count = 0
        spans: dict[TopicPartition, int] = {}
        for position, record in _records(data):
            size = position
            count += 1
            try:
                if isinstance(record, Message):
                    bus.restore_message(record)
                    spans[record.topic_partition] = record.offset + 1
                elif isinstance(record, _Commit):
                    bus.restore_commit(record.group_id, record.tp, record.offset)
                elif isinstance(record, _Subscription):
                    bus.restore_subscription(record.group_id, record.topic)
                else:
                    bus.restore_end_offset(record.tp, record.offset)
            except UnknownTopicError as error:
                raise JournalError(
                    f"the journal {path} holds records of a topic the bus does not have: "
                    f"{error}; open it with that topic, or move the directory aside"
                ) from error
            except ValueError as error:
                raise JournalError(f"the journal {path} is inconsistent: {error}") from error
        if size < len(data):
            log.warning(
                "journal %s ends in an incomplete or corrupt record: truncated %d bytes at %d",
                path,
                len(data) - size,
                size,
            )
            truncated += len(data) - size
            await asyncio.to_thread(os.truncate, path, size)
        if count == 0:
            # Nothing to keep, and its name would be the next segment's.
            await asyncio.to_thread(path.unlink)
            continue
        segments.append(_Segment(path, first_record, size, count, spans=spans))
    return segments, truncated


class JournaledBus:
    """A ``Bus``: a ``MemoryBus`` whose journaled topics survive the process being killed.

    Use ``await JournaledBus.open(...)``. Everything but durability is the ``MemoryBus``'s
    behaviour (partitioning, groups, capacity and retention), and restarting restores its
    state for the journaled topics; the other topics start empty, as in a ``MemoryBus``.

    ``send`` to a journaled topic returns once its record is written to the OS (see the
    module docstring for what a power loss can lose). If writing fails (a full disk),
    that ``send`` and every later one to a journaled topic raise ``JournalError``,
    although the message that failed stays readable on the bus; so does ``close``.
    """

    def __init__(
        self,
        memory: MemoryBus,
        journal: _Journal,
        lock_fd: int,
        replayed: Replayed,
        fsync_interval_s: float,
    ) -> None:
        self._memory = memory
        self._journal = journal
        self._lock_fd = lock_fd
        self.replayed = replayed
        self._fsync_interval_s = fsync_interval_s
        self._stopping = asyncio.Event()
        self._syncer = asyncio.create_task(self._sync_periodically(), name="journal-fsync")
        self._closed = False

    @classmethod
    async def open(
        cls,
        directory: Path,
        topics: Sequence[TopicSpec],
        *,
        journaled: Collection[str],
        partition_capacity: int = 10_000,
        max_message_bytes: int = 1_048_576,
        segment_bytes: int = 64 * 2**20,
        fsync_interval_s: float = 1.0,
        clock: Clock | None = None,
    ) -> JournaledBus:
        """Create ``directory`` if needed, lock it, create ``topics`` and replay the journal.

        Only the topics named in ``journaled`` are written to the journal. Raises
        ``JournalLockedError`` if another bus holds the directory, and ``JournalError``
        if the journal holds records of a topic or partition not in ``topics``, or
        cannot be read. A journal ending in a torn record (the process was killed
        during a write) is truncated there and reported in ``replayed``.
        """
        if segment_bytes < 1:
            raise ValueError(f"segment_bytes must be at least 1, got {segment_bytes}")
        if fsync_interval_s <= 0:
            raise ValueError(f"fsync_interval_s must be positive, got {fsync_interval_s}")
        memory = MemoryBus(partition_capacity, max_message_bytes, clock=clock)
        try:
            lock_fd = await asyncio.to_thread(_lock, directory)
        except OSError as error:
            raise JournalError(f"cannot open the bus journal in {directory}: {error}") from error
        try:
            await memory.create_topics(topics)
            segments, truncated = await _replay(directory, memory)
            journal = _Journal(directory, memory, journaled, segments, segment_bytes)
        except OSError as error:
            os.close(lock_fd)
            raise JournalError(f"cannot open the bus journal in {directory}: {error}") from error
        except BaseException:
            os.close(lock_fd)
            raise
        held = {
            state.name: sum(end - base for base, end in state.bounds)
            for state in memory.topic_states()
            if state.name in journaled or any(base or end for base, end in state.bounds)
        }
        memory.attach_journal(journal)
        return cls(memory, journal, lock_fd, Replayed(held, truncated), fsync_interval_s)

    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        await self._memory.create_topics(specs)

    async def producer(self) -> MemoryProducer:
        return await self._memory.producer()

    async def consumer(self, group_id: str, topics: Sequence[str]) -> MemoryConsumer:
        return await self._memory.consumer(group_id, topics)

    async def committed(self, group_id: str, tp: TopicPartition) -> int | None:
        return await self._memory.committed(group_id, tp)

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return await self._memory.end_offsets(tps)

    async def sync(self) -> None:
        """Write and fsync every record so far, then delete the segments no longer needed.

        Done every ``fsync_interval_s`` in the background and by ``close``. Raises
        ``JournalError`` if the journal failed and ``BusClosedError`` after ``close``.
        """
        if self._closed:
            raise BusClosedError("the bus was closed")
        await self._journal.sync()

    async def close(self) -> None:
        """Close the memory bus, write and fsync the journal, and unlock the directory."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        with contextlib.suppress(JournalError):
            await self._syncer
        await self._memory.close()
        try:
            await self._journal.sync()
        finally:
            self._journal.close_files()
            os.close(self._lock_fd)

    async def _sync_periodically(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._fsync_interval_s)
                return
            await self._journal.sync()


def _lock(directory: Path) -> int:
    """Create ``directory`` if needed and lock it for this bus; return the lock's fd."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = path.read_text().strip() or "unknown"
        raise JournalLockedError(
            f"the bus journal in {directory} is in use by another bus (process {holder}); "
            "two instances on one data directory would corrupt it"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd
