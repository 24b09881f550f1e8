"""The ``Bus`` over a real Apache Kafka cluster, with aiokafka.

Public interface (what the distributed processes and the tests use)::

    bus = KafkaBus("127.0.0.1:9092")                     # nothing connects yet
    bus = await KafkaBus.connect("127.0.0.1:9092")       # the same, once the broker answers
    await bus.create_topics([TopicSpec("mentions.raw", partitions=6), ...])
    producer = await bus.producer()                      # KafkaProducer (``Producer``)
    consumer = await bus.consumer(group, [topic])        # KafkaConsumer (``Consumer``,
                                                         # ``RevocationAware``)
    await bus.close()                                    # closes everything it made

Keyword arguments of both (all optional): ``metrics`` (``Metrics``; a private registry
otherwise), ``client_id``, ``heartbeat_interval_ms`` (how fast members notice a
rebalance), ``session_timeout_ms`` (how fast a dead member's partitions move),
``rebalance_timeout_ms`` (how long a rebalance waits for members to finish and commit
the work in hand; one slower than that is dropped from the group and its late commits
fail, so the next owner redoes its work),
``linger_ms``, ``request_timeout_ms``, ``replication_factor`` (of the topics it
creates; 1 for a single broker), ``retry_backoff_s`` / ``max_retry_backoff_s``
(the backoff while the broker is unavailable), ``probe_interval_s`` /
``probe_timeout_s`` (the broker watch below; an interval of 0 turns it off), ``sleep``
(injected for tests).

Semantics are the protocol's (``services.core.bus.protocol``), mapped onto Kafka:

* partitions: keyed records go through aiokafka's default partitioner, Kafka's murmur2
  (the same function as ``MemoryBus``), so one mention (keyed by ``mention_key``)
  always lands on one partition; ``create_topics`` creates each topic with its
  ``TopicSpec.partitions`` (distributed mode asks for 6 by default) and waits until every
  partition has a leader;
* producing: idempotent producer, ``acks=all``; ``send`` returns once the broker has the
  record durably. Backpressure is the producer's bounded buffer: ``send`` waits for room.
  Messages are retained by the broker's retention policy, not by consumer commits, so
  unlike ``MemoryBus`` a slow group never blocks producers;
* consuming: ``enable_auto_commit=False``, ``auto_offset_reset="earliest"``; ``commit``
  stores exactly the offsets given (``offset + 1`` of the last processed message). A
  partition this member does not own (rebalanced away, or never assigned) fails the whole
  commit with ``CommitFailedError``, as does a commit the group refuses because it moved
  to a new generation. A consumer that stops calling ``getmany`` stops fetching: at most
  one fetch per partition is buffered (``max_partition_fetch_bytes``), so not polling is
  how a busy consumer pauses;
* rebalances: every rebalance revokes the member's partitions first (eager protocol);
  a hook given to ``KafkaConsumer.on_revoke`` is awaited before that, while the member
  still owns them, so ``ConsumerLoop`` finishes and commits the work in hand;
* broker unavailable: every operation retries with exponential backoff
  (``retry_backoff_s`` doubling up to ``max_retry_backoff_s``), logs a warning and counts
  ``sentimon_bus_broker_unavailable_total{operation}``; it never gives up and never drops
  a message (a ``send`` retried after a timeout may store its record twice: duplicates on
  the bus are expected, consumers are idempotent). Only ``close`` ends the wait, with
  ``BusClosedError``;
* the broker watch: aiokafka reconnects by itself, and while the broker is away its
  sends and fetches wait rather than fail, so the retries above rarely see an outage.
  Once connected, the bus asks the broker for its metadata every ``probe_interval_s``;
  a probe that fails or gets no answer within ``probe_timeout_s`` marks the broker
  down (``broker_problem`` says so, for ``/readyz``; ``sentimon_bus_broker_up`` is 0;
  each failed probe counts ``sentimon_bus_broker_unavailable_total{operation="metadata"}``;
  one ERROR line), the next answered one up again (one WARNING line: for how long, and
  how many repeated aiokafka records ``kafka_logs.AIOKAFKA_REPEATS`` dropped meanwhile);
* errors: aiokafka's are translated here into ``services.core.bus.errors``
  (``UnknownTopicError``, ``MessageTooLargeError``, ``CommitFailedError``,
  ``BusClosedError``, and ``BusError`` for anything else).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError as KafkaCommitFailedError,
)
from aiokafka.errors import (
    ConsumerStoppedError,
    IllegalStateError,
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NoBrokersAvailable,
    NodeNotReadyError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    RecordTooLargeError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
    UnknownProducerId,
    UnknownTopicOrPartitionError,
    for_code,
)
from prometheus_client import CollectorRegistry

from services.core.bus.broker_state import BrokerState
from services.core.bus.errors import (
    BusClosedError,
    BusError,
    CommitFailedError,
    MessageTooLargeError,
    UnknownTopicError,
)
from services.core.bus.kafka_logs import AIOKAFKA_REPEATS
from services.core.bus.protocol import (
    KeyedValue,
    Message,
    RecordMetadata,
    RevokeHook,
    SendResults,
    TopicPartition,
    TopicSpec,
    send_each,
)
from services.core.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

_TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno
# A retried operation logs its first three retries, then every this many.
_LOG_EVERY = 10

# A partition's records go in one batch until it holds this much; a full batch makes the
# next send to that partition wait for its acknowledgement (a round trip with acks=all).
# aiokafka's default, 16 KiB, is about ten scored mentions: a chunk of 250 then waited for
# several round trips a partition, one after another.
_MAX_BATCH_BYTES = 256 * 1024

# The idempotent producer's sequence numbers no longer match the broker's (a batch timed
# out while the broker was away): only a new producer id gets past them.
_PRODUCER_STATE_LOST = (OutOfOrderSequenceNumber, InvalidProducerEpoch, UnknownProducerId)


def _is_unavailable(e: BaseException) -> bool:
    """A failure that waiting can cure: the broker or a partition leader is not there.

    Every operation that can fail this way names topics already known to exist (checked
    by ``_require_topics``), so an unknown topic or partition here is a broker still
    loading its metadata after a restart, not a topic that was never created.
    """
    if isinstance(
        e,
        UnknownTopicOrPartitionError
        | KafkaConnectionError
        | NodeNotReadyError
        | KafkaTimeoutError
        | RequestTimedOutError
        | NoBrokersAvailable,
    ):
        return True
    return isinstance(e, KafkaError) and bool(getattr(e, "retriable", False))


def _translate(e: BaseException, what: str) -> BusError:
    """aiokafka's error as one of the bus's."""
    if isinstance(e, UnknownTopicOrPartitionError):
        return UnknownTopicError(f"{what}: {e}")
    if isinstance(e, MessageSizeTooLargeError | RecordTooLargeError):
        return MessageTooLargeError(f"{what}: {e}")
    if isinstance(e, KafkaCommitFailedError | IllegalStateError):
        return CommitFailedError(f"{what}: {e}")
    if isinstance(e, ConsumerStoppedError | ProducerClosed):
        return BusClosedError(f"{what}: {e}")
    return BusError(f"{what}: {type(e).__name__}: {e}")


def _describe(tps: Sequence[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(tps))


class KafkaBus:
    """A ``Bus`` on a Kafka cluster; see the module docstring for the mapping."""

    def __init__(
        self,
        bootstrap: str,
        *,
        metrics: Metrics | None = None,
        client_id: str = "sentimon",
        heartbeat_interval_ms: int = 1_000,
        session_timeout_ms: int = 10_000,
        rebalance_timeout_ms: int = 30_000,
        linger_ms: int = 0,
        request_timeout_ms: int = 30_000,
        replication_factor: int = 1,
        retry_backoff_s: float = 0.1,
        max_retry_backoff_s: float = 5.0,
        probe_interval_s: float = 1.0,
        probe_timeout_s: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not bootstrap.strip():
            raise ValueError("bootstrap must name at least one host:port")
        if heartbeat_interval_ms * 3 > session_timeout_ms:
            raise ValueError(
                f"heartbeat_interval_ms ({heartbeat_interval_ms}) must be at most a third "
                f"of session_timeout_ms ({session_timeout_ms})"
            )
        self.bootstrap = bootstrap
        self._metrics = metrics if metrics is not None else Metrics(CollectorRegistry())
        self._client_id = client_id
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._session_timeout_ms = session_timeout_ms
        self._rebalance_timeout_ms = rebalance_timeout_ms
        self._linger_ms = linger_ms
        self._request_timeout_ms = request_timeout_ms
        self._replication_factor = replication_factor
        self._retry_backoff_s = retry_backoff_s
        self._max_retry_backoff_s = max_retry_backoff_s
        self._sleep = sleep
        self._probe_interval_s = probe_interval_s
        self._probe_timeout_s = probe_timeout_s
        self._broker = BrokerState(bootstrap)
        self._watch: asyncio.Task[None] | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets_reader: AIOKafkaConsumer | None = None
        self._start_lock = asyncio.Lock()
        # Partition counts of the topics known to exist (a topic is never deleted here).
        self._partitions: dict[str, int] = {}
        self._producers: set[KafkaProducer] = set()
        self._consumers: set[KafkaConsumer] = set()
        self._closed = False
        self._closing = asyncio.Event()

    @classmethod
    async def connect(cls, bootstrap: str, **options: Any) -> KafkaBus:
        """A ``KafkaBus`` whose broker has answered (waits, with backoff, until it does)."""
        bus = cls(bootstrap, **options)
        await bus._ensure_admin()
        return bus

    # -- the Bus protocol ---------------------------------------------------------------

    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        self._check_open()
        for spec in specs:
            if spec.partitions < 1:
                raise ValueError(f"topic {spec.name!r} needs at least 1 partition")
        wanted = {spec.name: spec.partitions for spec in specs}
        await self._refresh_topics(list(wanted))
        missing = {name: n for name, n in wanted.items() if name not in self._partitions}
        if missing:
            admin = await self._ensure_admin()
            new = [NewTopic(name, n, self._replication_factor) for name, n in missing.items()]
            response = await self._retrying(
                "metadata", lambda: admin.create_topics(new, timeout_ms=self._request_timeout_ms)
            )
            for entry in response.topic_errors:
                name, code = entry[0], entry[1]
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise _translate(for_code(code)(), f"creating topic {name!r}")
            await self._wait_for_leaders(list(missing))
        for name, n in wanted.items():
            if self._partitions.get(name, n) != n:
                log.warning(
                    "topic %s exists with %d partitions, not %d: left as it is",
                    name,
                    self._partitions[name],
                    n,
                )

    async def producer(self) -> KafkaProducer:
        self._check_open()
        producer = KafkaProducer(self)
        await producer._start()
        self._producers.add(producer)
        return producer

    def _new_producer_client(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self._client_id}-producer",
            acks="all",
            enable_idempotence=True,
            linger_ms=self._linger_ms,
            max_batch_size=_MAX_BATCH_BYTES,
            request_timeout_ms=self._request_timeout_ms,
        )

    async def consumer(self, group_id: str, topics: Sequence[str]) -> KafkaConsumer:
        self._check_open()
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        names = list(dict.fromkeys(topics))
        await self._require_topics(names)
        listener = _Listener(group_id)
        client = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self._client_id}-{group_id}",
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            heartbeat_interval_ms=self._heartbeat_interval_ms,
            session_timeout_ms=self._session_timeout_ms,
            rebalance_timeout_ms=self._rebalance_timeout_ms,
            request_timeout_ms=self._request_timeout_ms,
        )
        client.subscribe(names, listener=listener)
        consumer = KafkaConsumer(self, client, group_id, listener)
        self._consumers.add(consumer)
        try:
            await self._retrying("join", client.start)
            await self._wait_for_assignment(consumer)
        except BaseException:
            await consumer.close()
            raise
        return consumer

    async def committed(self, group_id: str, tp: TopicPartition) -> int | None:
        self._check_open()
        await self._require_partitions([tp])
        admin = await self._ensure_admin()
        offsets = await self._retrying(
            "offsets",
            lambda: admin.list_consumer_group_offsets(
                group_id, partitions=[KafkaTopicPartition(tp.topic, tp.partition)]
            ),
        )
        found = offsets.get(KafkaTopicPartition(tp.topic, tp.partition))
        if found is None or found.offset < 0:
            return None
        return int(found.offset)

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        self._check_open()
        if not tps:
            return {}
        await self._require_partitions(tps)
        reader = await self._ensure_offsets_reader()
        kafka_tps = [KafkaTopicPartition(tp.topic, tp.partition) for tp in tps]
        ends = await self._retrying("offsets", lambda: reader.end_offsets(kafka_tps))
        return {TopicPartition(ktp.topic, ktp.partition): int(ends[ktp]) for ktp in kafka_tps}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for producer in list(self._producers):
            await producer.close()
        for consumer in list(self._consumers):
            await consumer.close()
        if self._offsets_reader is not None:
            await self._offsets_reader.stop()
        if self._admin is not None:
            await self._admin.close()

    # -- the broker watch -----------------------------------------------------------------

    @property
    def broker_up(self) -> bool:
        """Whether the broker answered the last probe (True before the first)."""
        return self._broker.up

    def broker_problem(self) -> str | None:
        """``None`` while the broker answers; else what ``/readyz`` says (which broker,
        for how long, the last error)."""
        return self._broker.problem(time.monotonic())

    async def _watch_broker(self, admin: AIOKafkaAdminClient) -> None:
        while not self._closed:
            try:
                await asyncio.wait_for(admin.describe_cluster(), self._probe_timeout_s)
            except TimeoutError:
                self._probe_failed(f"no answer within {self._probe_timeout_s:g} s")
            except Exception as e:  # any failure of the probe is the broker's absence
                said = str(e)
                name = type(e).__name__
                self._probe_failed(said if said.startswith(name) else f"{name}: {said}")
            else:
                self._probe_answered()
            await asyncio.sleep(self._probe_interval_s)

    def _probe_failed(self, error: str) -> None:
        self._metrics.bus_broker_unavailable.labels("metadata").inc()
        self._metrics.bus_broker_up.labels(self.bootstrap).set(0)
        if self._broker.probe_failed(time.monotonic(), error):
            log.error(
                "kafka: broker %s unreachable (%s); not ready until it answers, repeated "
                "aiokafka errors suppressed meanwhile",
                self.bootstrap,
                error,
            )

    def _probe_answered(self) -> None:
        self._metrics.bus_broker_up.labels(self.bootstrap).set(1)
        down_for = self._broker.probe_answered(time.monotonic())
        if down_for is not None:
            log.warning(
                "kafka: broker %s reachable again after %.0f s; %s repeated aiokafka "
                "errors suppressed",
                self.bootstrap,
                down_for,
                f"{AIOKAFKA_REPEATS.release():,}",
            )

    # -- internals ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError("the bus was closed")

    async def _retrying(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` until it succeeds; while the broker is unavailable, back off and retry.

        Other aiokafka errors are translated into bus errors. ``close`` ends the wait
        with ``BusClosedError``.
        """
        backoff = self._retry_backoff_s
        attempt = 0
        while True:
            self._check_open()
            try:
                return await call()
            except BusError:
                raise
            except Exception as e:
                if not _is_unavailable(e):
                    raise _translate(e, operation) from e
                attempt += 1
                self._metrics.bus_broker_unavailable.labels(operation).inc()
                if attempt <= 3 or attempt % _LOG_EVERY == 0:
                    log.warning(
                        "kafka %s: broker %s unavailable (%s: %s); retry %d in %.1f s",
                        operation,
                        self.bootstrap,
                        type(e).__name__,
                        e,
                        attempt,
                        backoff,
                    )
            await self._pause(backoff)
            backoff = min(backoff * 2, self._max_retry_backoff_s)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, cut short by ``close`` (which then raises ``BusClosedError``)."""
        sleeping = asyncio.ensure_future(self._sleep(seconds))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({sleeping, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            closing.cancel()
        self._check_open()

    async def _ensure_admin(self) -> AIOKafkaAdminClient:
        async with self._start_lock:
            if self._admin is None:
                self._check_open()
                admin = AIOKafkaAdminClient(
                    bootstrap_servers=self.bootstrap,
                    client_id=f"{self._client_id}-admin",
                    request_timeout_ms=self._request_timeout_ms,
                )
                await self._retrying("metadata", admin.start)
                self._admin = admin
                self._metrics.bus_broker_up.labels(self.bootstrap).set(1)
                if self._probe_interval_s > 0:
                    self._watch = asyncio.create_task(
                        self._watch_broker(admin), name=f"kafka-watch:{self.bootstrap}"
                    )
            return self._admin

    async def _ensure_offsets_reader(self) -> AIOKafkaConsumer:
        async with self._start_lock:
            if self._offsets_reader is None:
                self._check_open()
                reader = AIOKafkaConsumer(
                    bootstrap_servers=self.bootstrap,
                    client_id=f"{self._client_id}-offsets",
                    group_id=None,
                    enable_auto_commit=False,
                    request_timeout_ms=self._request_timeout_ms,
                )
                await self._retrying("offsets", reader.start)
                self._offsets_reader = reader
            return self._offsets_reader

    async def _refresh_topics(self, names: Sequence[str]) -> dict[str, int]:
        """Partition counts of those of ``names`` that exist, with every partition led."""
        admin = await self._ensure_admin()
        described = await self._retrying("metadata", lambda: admin.describe_topics(list(names)))
        led: dict[str, int] = {}
        for topic in described:
            if topic["error_code"] != 0:
                continue
            partitions = topic["partitions"]
            self._partitions[topic["topic"]] = len(partitions)
            if partitions and all(p["leader"] >= 0 for p in partitions):
                led[topic["topic"]] = len(partitions)
        return led

    async def _wait_for_leaders(self, names: Sequence[str]) -> None:
        """Return once every partition of ``names`` has a leader, so the first send or
        fetch does not race the new topic's metadata."""
        backoff = self._retry_backoff_s / 4
        while True:
            led = await self._refresh_topics(names)
            if all(name in led for name in names):
                return
            await self._pause(backoff)
            backoff = min(backoff * 2, self._max_retry_backoff_s)

    async def _require_topics(self, names: Sequence[str]) -> None:
        unknown = [name for name in names if name not in self._partitions]
        if unknown:
            await self._refresh_topics(unknown)
            missing = [name for name in unknown if name not in self._partitions]
            if missing:
                raise UnknownTopicError(
                    f"topic {', '.join(repr(n) for n in missing)} does not exist"
                )

    async def _require_partitions(self, tps: Sequence[TopicPartition]) -> None:
        await self._require_topics(list(dict.fromkeys(tp.topic for tp in tps)))
        for tp in tps:
            count = self._partitions[tp.topic]
            if not 0 <= tp.partition < count:
                raise UnknownTopicError(
                    f"topic {tp.topic!r} has {count} partitions, not {tp.partition}"
                )

    async def _wait_for_assignment(self, consumer: KafkaConsumer) -> None:
        """Return once the member has joined its group (its assignment may be empty)."""
        waited = 0.0
        step = max(self._session_timeout_ms / 1000, 1.0)
        while True:
            self._check_open()
            joined = asyncio.ensure_future(consumer._listener.joined.wait())
            closing = asyncio.ensure_future(self._closing.wait())
            try:
                await asyncio.wait(
                    {joined, closing}, timeout=step, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                joined.cancel()
                closing.cancel()
            if consumer._listener.joined.is_set():
                return
            self._check_open()
            waited += step
            self._metrics.bus_broker_unavailable.labels("join").inc()
            log.warning(
                "kafka: group %s not joined after %.0f s (broker %s); still waiting",
                consumer.group_id,
                waited,
                self.bootstrap,
            )


class KafkaProducer:
    """A ``Producer`` on an idempotent aiokafka producer (``acks=all``).

    If the broker loses track of the producer's sequence numbers (a batch timed out while
    it was away), the aiokafka producer is replaced by a new one and the send retried.
    """

    def __init__(self, bus: KafkaBus) -> None:
        self._bus = bus
        self._producer = bus._new_producer_client()
        # Bumped on each replacement, so concurrent sends that saw the same failure
        # replace the producer once.
        self._incarnation = 0
        self._replacing = asyncio.Lock()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    async def _start(self) -> None:
        await self._bus._retrying("metadata", self._producer.start)

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> RecordMetadata:
        self._check_open()
        await self._bus._require_topics([topic])
        self._in_flight += 1
        self._idle.clear()
        try:
            while True:
                self._check_open()
                incarnation = self._incarnation
                try:
                    sent = await self._bus._retrying(
                        "send",
                        functools.partial(
                            self._producer.send_and_wait,
                            topic,
                            value,
                            key=key,
                            headers=list(headers) or None,
                        ),
                    )
                    break
                except BusError as e:
                    if incarnation != self._incarnation:
                        continue  # failed with a producer replaced meanwhile: use the new one
                    if not isinstance(e.__cause__, _PRODUCER_STATE_LOST):
                        raise
                    await self._replace(incarnation, e.__cause__)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()
        return RecordMetadata(sent.topic, sent.partition, sent.offset)

    async def send_many(self, topic: str, records: Sequence[KeyedValue]) -> SendResults:
        self._check_open()
        await self._bus._require_topics([topic])
        if not records:
            return []
        self._in_flight += 1
        self._idle.clear()
        try:
            # Every record appended to aiokafka's accumulator in one go (no task each, as
            # ``send`` a record would cost), then their acknowledgements awaited together:
            # the sender finds them all at once and packs them into few requests.
            producer = self._producer
            pending: list[asyncio.Future[Any] | None] = []
            for key, value in records:
                try:
                    pending.append(await producer.send(topic, value, key=key))
                except Exception:  # not appended (broker away, buffer full): retried below
                    pending.append(None)
            acked = iter(
                await asyncio.gather(*(f for f in pending if f is not None), return_exceptions=True)
            )
            results: list[RecordMetadata | Exception] = []
            retry: list[int] = []
            for i, future in enumerate(pending):
                sent = None if future is None else next(acked)
                if isinstance(sent, BaseException) or sent is None:
                    retry.append(i)
                    results.append(BusError("not sent yet"))
                else:
                    results.append(RecordMetadata(sent.topic, sent.partition, sent.offset))
            if retry:
                # What failed goes through ``send``: its retries while the broker is away,
                # its new producer when the broker lost this one's sequence numbers.
                again = await send_each(self, topic, [records[i] for i in retry])
                for i, result in zip(retry, again, strict=True):
                    results[i] = result
            return results
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _replace(self, incarnation: int, cause: BaseException) -> None:
        async with self._replacing:
            self._check_open()
            if incarnation != self._incarnation:
                return
            self._bus._metrics.bus_broker_unavailable.labels("send").inc()
            log.warning(
                "kafka producer lost its sequence on broker %s (%s); starting a new one",
                self._bus.bootstrap,
                type(cause).__name__,
            )
            old, self._producer = self._producer, self._bus._new_producer_client()
            self._incarnation += 1
            try:
                # Its unsent batches fail (their sends are retried on the new producer).
                await asyncio.wait_for(old.stop(), self._bus._request_timeout_ms / 1000)
            except Exception as e:  # an abandoned client: nothing of it is needed any more
                log.info("old kafka producer did not stop cleanly: %s: %s", type(e).__name__, e)
            await self._start()

    async def flush(self) -> None:
        self._check_open()
        # ``send`` returns once its record is durable: only sends still running remain.
        await self._idle.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._producers.discard(self)
        await self._producer.stop()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError("the producer was closed")
        self._bus._check_open()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Relays aiokafka's rebalance callbacks: the join, and the revocation hook."""

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.joined = asyncio.Event()
        self.hook: RevokeHook | None = None

    async def on_partitions_revoked(self, revoked: set[KafkaTopicPartition]) -> None:
        if self.hook is not None and revoked:
            await self.hook(frozenset(TopicPartition(tp.topic, tp.partition) for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[KafkaTopicPartition]) -> None:
        log.info(
            "group %s: assigned %s",
            self.group_id,
            _describe([TopicPartition(tp.topic, tp.partition) for tp in assigned]) or "nothing",
        )
        self.joined.set()


class KafkaConsumer:
    """A ``Consumer`` (and ``RevocationAware``) on one aiokafka group member."""

    def __init__(
        self, bus: KafkaBus, consumer: AIOKafkaConsumer, group_id: str, listener: _Listener
    ) -> None:
        self._bus = bus
        self._consumer = consumer
        self.group_id = group_id
        self._listener = listener
        self._closed = False

    def __repr__(self) -> str:
        return f"<KafkaConsumer group={self.group_id!r}>"

    async def getmany(self, *, max_records: int, timeout_s: float) -> list[Message]:
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, got {max_records}")
        if timeout_s < 0:
            raise ValueError(f"timeout_s must not be negative, got {timeout_s}")
        self._check_open()
        try:
            batches = await self._consumer.getmany(
                timeout_ms=int(timeout_s * 1000), max_records=max_records
            )
        except Exception as e:
            if not _is_unavailable(e):
                raise _translate(e, f"reading for group {self.group_id!r}") from e
            # Nothing was taken: the next call reads the same records again.
            self._bus._metrics.bus_broker_unavailable.labels("fetch").inc()
            log.warning("kafka fetch for group %s: %s: %s", self.group_id, type(e).__name__, e)
            await self._bus._pause(min(timeout_s, self._bus._max_retry_backoff_s))
            return []
        messages: list[Message] = []
        for ktp in sorted(batches, key=lambda t: (t.topic, t.partition)):
            for record in batches[ktp]:
                messages.append(
                    Message(
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        key=record.key,
                        value=record.value if record.value is not None else b"",
                        headers=tuple((name, data) for name, data in record.headers),
                        timestamp_ms=record.timestamp,
                    )
                )
        return messages

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._check_open()
        if not offsets:
            return
        owned = self.assignment()
        lost = [tp for tp in offsets if tp not in owned]
        if lost:
            raise CommitFailedError(
                f"group {self.group_id!r} rebalanced: this member does not own {_describe(lost)}"
            )
        for tp, offset in offsets.items():
            if offset < 0:
                raise ValueError(f"offset {offset} for {tp.topic}[{tp.partition}] is negative")
        to_commit = {KafkaTopicPartition(tp.topic, tp.partition): o for tp, o in offsets.items()}
        await self._bus._retrying("commit", lambda: self._consumer.commit(to_commit))

    def assignment(self) -> frozenset[TopicPartition]:
        if self._closed:
            return frozenset()
        return frozenset(
            TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()
        )

    def on_revoke(self, hook: RevokeHook | None) -> None:
        self._listener.hook = hook

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._listener.hook = None
        self._bus._consumers.discard(self)
        # Leaves the group (no commit: auto-commit is off), so the others rebalance now.
        await self._consumer.stop()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError("the consumer was closed")
        self._bus._check_open()
