"""What only a real Kafka broker shows: the consumer loop across rebalances, a broker
restart mid-stream, dead letters over Kafka, and an independent client (``kcat``) reading
what the scorer produced.

Every test runs on the session's broker (``kafka_broker``) with topics and groups of its
own; the contract tests (``test_bus_contract.py``) cover the rest on both buses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from prometheus_client import CollectorRegistry
from referencing import Registry, Resource

from services.core.bus import BusClosedError, Message, Producer, TopicPartition, TopicSpec
from services.core.bus.kafka import KafkaBus, KafkaConsumer
from services.core.bus.protocol import RevokeHook, all_sent
from services.core.clock import SystemClock
from services.core.metrics import Metrics
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.stream.dlq import DeadLetterQueue, DlqLimit
from services.core.stream.errors import DlqLimitExceeded, InvalidMessage
from services.core.stream.loop import ConsumerLoop, LoopConfig
from services.core.topics import DLQ, RAW, SCORED, mention_key
from services.scorer.pipeline import build_pipeline
from services.scorer.settings import ScorerSettings
from tests.fixtures.kafka import KAFKA_TEST_OPTIONS, KafkaBroker, free_ports
from tests.fixtures.mentions import mention_doc

NameFactory = Callable[[str], str]

BOUND_S = 60.0
SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


async def connect(broker: KafkaBroker, metrics: Metrics, **options: Any) -> KafkaBus:
    return await KafkaBus.connect(
        broker.bootstrap, metrics=metrics, **{**KAFKA_TEST_OPTIONS, **options}
    )


def partitions_of(topic: str, count: int) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(count)]


async def within(awaitable: Awaitable[Any], what: str) -> None:
    try:
        await asyncio.wait_for(awaitable, BOUND_S)
    except TimeoutError:
        pytest.fail(f"{what}: not within {BOUND_S:.0f} s")


class Recorder:
    """A step that keeps what it handled (values and positions), for one member."""

    def __init__(self, name: str, *, signal_after: int = 0) -> None:
        self.name = name
        self.handled: list[Message] = []
        self.reached = asyncio.Event()
        self._signal_after = signal_after

    def decode(self, message: Message) -> bytes:
        if message.value.startswith(b"poison"):
            raise InvalidMessage(f"poison: {message.value.decode()}")
        return message.value

    async def handle(self, items: Sequence[tuple[Message, bytes]]) -> None:
        self.handled += [m for m, _ in items]
        if len(self.handled) >= self._signal_after:
            self.reached.set()


@dataclass
class CommitLog:
    """Every commit a member made, with the partitions it owned at that moment; and, for
    each revocation, the work it had handled but not committed once its hook returned."""

    handled: list[Message]
    commits: list[tuple[frozenset[TopicPartition], frozenset[TopicPartition]]] = field(
        default_factory=list
    )
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    revoked: list[frozenset[TopicPartition]] = field(default_factory=list)
    uncommitted_at_revocation: list[tuple[TopicPartition, int, int]] = field(default_factory=list)

    def check_flushed(self, partitions: frozenset[TopicPartition]) -> None:
        for tp in partitions:
            done = max((m.offset + 1 for m in self.handled if m.topic_partition == tp), default=0)
            if done > self.committed.get(tp, 0):
                self.uncommitted_at_revocation.append((tp, done, self.committed.get(tp, 0)))


class RecordingConsumer:
    """A ``KafkaConsumer`` whose commits and revocations are written down."""

    def __init__(self, inner: KafkaConsumer, log: CommitLog) -> None:
        self._inner = inner
        self._log = log

    async def getmany(self, *, max_records: int, timeout_s: float) -> list[Message]:
        return await self._inner.getmany(max_records=max_records, timeout_s=timeout_s)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._log.commits.append((frozenset(offsets), self._inner.assignment()))
        await self._inner.commit(offsets)
        self._log.committed.update(offsets)

    def assignment(self) -> frozenset[TopicPartition]:
        return self._inner.assignment()

    def on_revoke(self, hook: RevokeHook | None) -> None:
        if hook is None:
            self._inner.on_revoke(None)
            return

        async def recorded(partitions: frozenset[TopicPartition]) -> None:
            self._log.revoked.append(partitions)
            await hook(partitions)
            self._log.check_flushed(partitions)

        self._inner.on_revoke(recorded)

    async def close(self) -> None:
        await self._inner.close()


class RecordingBus(KafkaBus):
    """A ``KafkaBus`` whose consumers are ``RecordingConsumer``s writing to ``log``;
    ``joined`` is set once one of them has joined its group."""

    log: CommitLog
    joined: asyncio.Event

    async def consumer(self, group_id: str, topics: Sequence[str]) -> Any:
        consumer = RecordingConsumer(await super().consumer(group_id, topics), self.log)
        self.joined.set()
        return consumer


async def test_a_rebalance_under_the_consumer_loop_loses_nothing_and_commits_only_owned(
    kafka_broker: KafkaBroker, unique_name: NameFactory
) -> None:
    metrics = Metrics(CollectorRegistry())
    first, second = Recorder("first", signal_after=200), Recorder("second")
    buses: list[RecordingBus] = []
    for recorder in (first, second):
        bus = RecordingBus(kafka_broker.bootstrap, metrics=metrics, **KAFKA_TEST_OPTIONS)
        bus.log = CommitLog(recorder.handled)
        bus.joined = asyncio.Event()
        buses.append(bus)
    topic, group = unique_name("topic"), unique_name("group")
    await buses[0].create_topics([TopicSpec(topic, partitions=6)])
    producer = await buses[0].producer()
    config = LoopConfig(group, (topic,), max_records=50, poll_timeout_s=0.1)
    loops = [
        ConsumerLoop(buses[0], first, config, None, metrics),
        ConsumerLoop(buses[1], second, config, None, metrics),
    ]
    sent = [f"m{i}".encode() for i in range(1_200)]
    tasks = [asyncio.create_task(loops[0].run())]
    try:
        await asyncio.gather(*(producer.send(topic, v, key=v) for v in sent[:600]))
        await within(first.reached.wait(), "the first member handled 200 messages")
        tasks.append(asyncio.create_task(loops[1].run()))
        await within(buses[1].joined.wait(), "the second member joined the group")
        await asyncio.gather(*(producer.send(topic, v, key=v) for v in sent[600:]))
        await loops[0].wait_caught_up(partitions_of(topic, 6), timeout_s=BOUND_S)
    finally:
        for loop in loops:
            loop.stop()
        await asyncio.gather(*tasks)
        for bus in buses:
            await bus.close()

    handled = first.handled + second.handled
    assert {m.value for m in handled} == set(sent)
    # The first member gave partitions up once the second joined, after committing the
    # work it had finished.
    assert buses[0].log.revoked, "the first member was never asked to give partitions up"
    for bus in buses:
        assert bus.log.uncommitted_at_revocation == []
    assert second.handled
    for bus in buses:
        assert bus.log.commits
        for committed, owned in bus.log.commits:
            assert committed <= owned, f"committed {sorted(committed)} owning {sorted(owned)}"
    # The loop commits what it finished before a revocation, so a moved partition's new
    # owner starts (nearly) where the old one stopped: redeliveries stay a small fraction.
    redelivered = len(handled) - len({(m.partition, m.offset) for m in handled})
    assert redelivered < len(sent) // 4


Produce = Callable[[Producer, str, asyncio.Event], Coroutine[Any, Any, None]]


async def consumed_across_a_restart(
    kafka_broker: KafkaBroker, unique_name: NameFactory, metrics: Metrics, produce: Produce
) -> set[bytes]:
    """What a consumer loop handled while ``produce`` sent to a 3-partition topic and the
    broker restarted once ``produce`` set its event (short request timeouts: sends fail
    over to the bus's own retry while the broker is down)."""
    bus = await connect(kafka_broker, metrics, request_timeout_ms=2_000, max_retry_backoff_s=1.0)
    topic, group = unique_name("topic"), unique_name("group")
    await bus.create_topics([TopicSpec(topic, partitions=3)])
    producer = await bus.producer()
    recorder = Recorder("only")
    loop = ConsumerLoop(
        bus, recorder, LoopConfig(group, (topic,), poll_timeout_s=0.1), None, metrics
    )
    halfway = asyncio.Event()
    consuming = asyncio.create_task(loop.run())
    try:
        producing = asyncio.create_task(produce(producer, topic, halfway))
        await within(halfway.wait(), "a third of the messages sent")
        await asyncio.to_thread(kafka_broker.restart)
        await within(producing, "every send returned after the restart")
        await loop.wait_caught_up(partitions_of(topic, 3), timeout_s=BOUND_S)
    finally:
        kafka_broker.ensure_running()
        loop.stop()
        await consuming
        await bus.close()
    return {m.value for m in recorder.handled}


async def test_a_broker_restart_mid_stream_drops_nothing(
    kafka_broker: KafkaBroker, unique_name: NameFactory
) -> None:
    metrics = Metrics(CollectorRegistry())
    sent = [f"m{i}".encode() for i in range(300)]

    async def produce(producer: Producer, topic: str, halfway: asyncio.Event) -> None:
        for i, value in enumerate(sent):
            await producer.send(topic, value, key=value)
            if i == len(sent) // 3:
                halfway.set()

    assert await consumed_across_a_restart(kafka_broker, unique_name, metrics, produce) == set(sent)
    unavailable = metrics.registry.get_sample_value(
        "sentimon_bus_broker_unavailable_total", {"operation": "send"}
    )
    assert unavailable is not None and unavailable >= 1


async def test_batches_sent_across_a_broker_restart_are_all_stored(
    kafka_broker: KafkaBroker, unique_name: NameFactory
) -> None:
    # ``send_many`` appends a batch to aiokafka's accumulator in one go; what fails while
    # the broker is away goes through ``send``'s retries, so every batch still returns sent.
    metrics = Metrics(CollectorRegistry())
    sent = [f"b{i}".encode() for i in range(600)]

    async def produce(producer: Producer, topic: str, halfway: asyncio.Event) -> None:
        for start in range(0, len(sent), 20):
            batch = sent[start : start + 20]
            results = all_sent(await producer.send_many(topic, [(v, v) for v in batch]))
            assert [r.topic for r in results] == [topic] * len(batch)
            if start >= len(sent) // 3:
                halfway.set()

    assert await consumed_across_a_restart(kafka_broker, unique_name, metrics, produce) == set(sent)


async def test_poison_goes_to_the_dead_letter_topic_with_where_it_came_from(
    kafka_broker: KafkaBroker, unique_name: NameFactory
) -> None:
    metrics = Metrics(CollectorRegistry())
    bus = await connect(kafka_broker, metrics)
    topic, dlq_topic, group = unique_name("topic"), unique_name("dlq"), unique_name("group")
    await bus.create_topics([TopicSpec(topic, partitions=3), TopicSpec(dlq_topic, partitions=1)])
    producer = await bus.producer()
    recorder = Recorder("only")
    loop = ConsumerLoop(
        bus,
        recorder,
        LoopConfig(group, (topic,), poll_timeout_s=0.1),
        DeadLetterQueue(producer, dlq_topic, metrics),
        metrics,
    )
    where: dict[bytes, tuple[int, int]] = {}
    for i in range(30):
        value = f"poison-{i}".encode() if i % 10 == 3 else f"ok-{i}".encode()
        sent = await producer.send(topic, value, key=str(i).encode())
        where[value] = (sent.partition, sent.offset)
    task = asyncio.create_task(loop.run())
    try:
        await loop.wait_caught_up(partitions_of(topic, 3), timeout_s=BOUND_S)
    finally:
        loop.stop()
        await task
    reader = await bus.consumer(unique_name("reader"), [dlq_topic])
    dead: list[Message] = []
    async with asyncio.timeout(BOUND_S):
        while len(dead) < 3:
            dead += await reader.getmany(max_records=10, timeout_s=1.0)
    await bus.close()

    assert sorted(m.value for m in recorder.handled) == sorted(v for v in where if b"ok" in v)
    assert len(dead) == 3
    for m in dead:
        headers = dict(m.headers)
        assert headers["dlq.reason"] == b"poison: " + m.value
        assert headers["dlq.topic"] == topic.encode()
        partition, offset = where[m.value]
        assert headers["dlq.partition"] == str(partition).encode()
        assert headers["dlq.offset"] == str(offset).encode()


async def test_a_burst_of_poison_halts_the_loop_over_kafka(
    kafka_broker: KafkaBroker, unique_name: NameFactory
) -> None:
    metrics = Metrics(CollectorRegistry())
    bus = await connect(kafka_broker, metrics)
    topic, dlq_topic, group = unique_name("topic"), unique_name("dlq"), unique_name("group")
    await bus.create_topics([TopicSpec(topic, partitions=1), TopicSpec(dlq_topic, partitions=1)])
    producer = await bus.producer()
    for i in range(20):
        await producer.send(topic, f"poison-{i}".encode())
    loop = ConsumerLoop(
        bus,
        Recorder("only"),
        LoopConfig(group, (topic,), poll_timeout_s=0.1, dlq_limit=DlqLimit(max_consecutive=5)),
        DeadLetterQueue(producer, dlq_topic, metrics),
        metrics,
    )
    try:
        with pytest.raises(DlqLimitExceeded, match="5 poison messages in a row"):
            await asyncio.wait_for(loop.run(), BOUND_S)
        # Halted before committing: the poison is still there for whoever fixes the cause.
        assert await bus.committed(group, TopicPartition(topic, 0)) is None
    finally:
        await bus.close()


def scored_mention_validator() -> Draft202012Validator:
    registry: Registry = Registry()
    for path in SCHEMAS.glob("*.json"):
        doc = json.loads(path.read_text())
        registry = registry.with_resource(doc["$id"], Resource.from_contents(doc))
    schema = json.loads((SCHEMAS / "scored_mention.v1.json").read_text())
    return Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


async def test_kcat_reads_valid_scored_mentions_produced_by_the_scorer_over_kafka(
    kafka_broker: KafkaBroker, unique_name: NameFactory, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    migrate(engine)
    BrandStore(engine, SystemClock()).create("Acme", "acme")
    metrics = Metrics(CollectorRegistry())
    bus = await connect(kafka_broker, metrics)
    await bus.create_topics(
        [TopicSpec(RAW, partitions=6), TopicSpec(SCORED, partitions=6), TopicSpec(DLQ, 1)]
    )
    producer = await bus.producer()
    pipeline = build_pipeline(
        ScorerSettings(data_dir=tmp_path, lexicon_processes=0, scorer_mode="lexicon"),
        bus=bus,
        producer=producer,
        engine=engine,
        clock=SystemClock(),
        metrics=metrics,
    )
    run = unique_name("run")
    texts = ["Acme is wonderful, I love it", "Acme broke again", "Acme shipped version 2"]
    ids = {f"{run}-{i}" for i in range(60)}
    task = asyncio.create_task(pipeline.score.run())
    try:
        for i, mention_id in enumerate(sorted(ids)):
            doc = mention_doc(id=mention_id, conversation_id=mention_id, text=texts[i % 3])
            await producer.send(RAW, orjson.dumps(doc), key=mention_key("x", mention_id))
        await pipeline.score.wait_caught_up(partitions_of(RAW, 6), timeout_s=BOUND_S)
    finally:
        pipeline.score.stop()
        await task
        pipeline.runner.close()
        await bus.close()

    kcat = await asyncio.create_subprocess_exec(
        *("/usr/bin/kcat", "-C", "-b", kafka_broker.bootstrap, "-t", SCORED),
        *("-o", "beginning", "-e", "-q", "-J"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(kcat.communicate(), BOUND_S)
    assert kcat.returncode == 0, stderr.decode()
    validator = scored_mention_validator()
    seen: set[str] = set()
    for line in stdout.decode().splitlines():
        envelope = json.loads(line)
        doc = json.loads(envelope["payload"])
        errors = [e.message for e in validator.iter_errors(doc)]
        assert not errors, f"{SCORED}[{envelope['partition']}]@{envelope['offset']}: {errors}"
        seen.add(doc["id"])
        assert envelope["key"].encode() == mention_key(doc["source"], doc["id"])
    assert ids <= seen


async def test_an_unreachable_broker_is_retried_with_backoff_until_close() -> None:
    [port] = free_ports(1)  # nothing listens there
    metrics = Metrics(CollectorRegistry())
    pauses: list[float] = []
    enough = asyncio.Event()
    never = asyncio.Event()

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 6:
            enough.set()
            await never.wait()  # the bus's close ends this pause

    bus = KafkaBus(f"127.0.0.1:{port}", metrics=metrics, max_retry_backoff_s=2.0, sleep=sleep)
    connecting = asyncio.create_task(bus.create_topics([TopicSpec("never-created", 1)]))
    await within(enough.wait(), "six retries")
    await bus.close()

    with pytest.raises(BusClosedError):
        await connecting
    assert pauses == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    unavailable = metrics.registry.get_sample_value(
        "sentimon_bus_broker_unavailable_total", {"operation": "metadata"}
    )
    assert unavailable == 6
