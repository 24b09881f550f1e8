"""The ingest worker: what a source has ready is accepted together, in order, and counted
once per batch; a paced source's mentions go one at a time; failures are raised."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.core.bus.memory import MemoryBus, MemoryProducer
from services.core.bus.protocol import Producer, RecordMetadata, TopicSpec
from services.core.metrics import Metrics
from services.core.models import Mention
from services.core.topics import RAW
from services.ingest.accept import MentionPublisher
from services.ingest.dedupe import RecentKeys
from services.ingest.sources.file import FileSource
from services.ingest.sources.protocol import InvalidRecord, SourceItem
from services.ingest.worker import MAX_BATCH, IngestStats, run_source
from tests.fixtures.mentions import mention_doc


class CountingProducer(Producer):
    """A ``MemoryProducer`` that records how many sends were in flight together."""

    def __init__(self, inner: MemoryProducer, fail_on: str | None = None) -> None:
        self.inner = inner
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail_on = fail_on

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> RecordMetadata:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # ok-sleep: lets the other sends of a batch start
            if self.fail_on is not None and self.fail_on.encode() in value:
                raise OSError("disk full")
            return await self.inner.send(topic, value, key=key, headers=headers)
        finally:
            self.in_flight -= 1

    async def flush(self) -> None:
        await self.inner.flush()

    async def close(self) -> None:
        await self.inner.close()


async def setup(
    fail_on: str | None = None,
) -> tuple[MemoryBus, CountingProducer, MentionPublisher, Metrics]:
    bus = MemoryBus()
    await bus.create_topics([TopicSpec(RAW, partitions=2)])
    producer = CountingProducer(await bus.producer(), fail_on)
    metrics = Metrics(CollectorRegistry())
    return bus, producer, MentionPublisher(producer, RecentKeys(10_000), metrics), metrics


def count(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def on_bus(bus: MemoryBus) -> list[str]:
    consumer = await bus.consumer("check", [RAW])
    ids = []
    while batch := await consumer.getmany(max_records=10_000, timeout_s=0):
        ids += [orjson.loads(m.value)["id"] for m in batch]
    return ids


async def test_a_file_is_accepted_in_batches_and_every_item_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    n = MAX_BATCH * 2 + 10
    lines = [orjson.dumps(mention_doc(id=f"m{i}", source="file")) for i in range(n)]
    lines[7] = lines[3]  # a repeat: a duplicate
    lines[9] = b"{broken"
    path.write_bytes(b"\n".join(lines) + b"\n")
    bus, producer, publisher, metrics = await setup()
    seen: list[int] = []
    stats = await run_source(
        FileSource(path), publisher, metrics, on_item=lambda s: seen.append(s.received)
    )
    assert stats == IngestStats(received=n, accepted=n - 2, invalid=1, duplicates=1)
    assert len(seen) == n  # once per item
    assert producer.most_in_flight > 1  # batches, not one mention at a time
    assert sorted(await on_bus(bus)) == sorted({f"m{i}" for i in range(n)} - {"m7", "m9"})
    assert count(metrics, "sentimon_mentions_received_total", source="file") == n
    assert count(metrics, "sentimon_mentions_accepted_total", source="file") == n - 2
    assert count(metrics, "sentimon_bus_messages_produced_total", topic=RAW) == n - 2
    duplicate = {"source": "file", "reason": "duplicate"}
    assert count(metrics, "sentimon_mentions_rejected_total", **duplicate) == 1
    invalid = {"source": "file", "reason": "invalid"}
    assert count(metrics, "sentimon_mentions_rejected_total", **invalid) == 1


class Paced:
    """Yields one mention, then waits until the test lets it go on."""

    name = "paced"

    def __init__(self) -> None:
        self.go_on = asyncio.Event()

    async def items(self) -> AsyncIterator[SourceItem]:
        yield Mention.model_validate(mention_doc(id="first"))
        await self.go_on.wait()
        yield Mention.model_validate(mention_doc(id="second"))


async def test_a_paced_sources_mention_is_produced_without_waiting_for_the_next() -> None:
    bus, _, publisher, metrics = await setup()
    source = Paced()
    accepted = asyncio.Event()
    task = asyncio.create_task(
        run_source(source, publisher, metrics, on_item=lambda s: accepted.set())
    )
    await asyncio.wait_for(accepted.wait(), 5)
    assert await on_bus(bus) == ["first"]
    source.go_on.set()
    stats = await asyncio.wait_for(task, 5)
    assert stats.accepted == 2


class Failing:
    name = "failing"

    async def items(self) -> AsyncIterator[SourceItem]:
        yield Mention.model_validate(mention_doc(id="before-the-crash", source="file"))
        yield InvalidRecord("line 2", "text: too long")
        raise ConnectionError("feed went away")


async def test_a_failing_sources_items_before_the_failure_are_accepted_then_it_raises() -> None:
    bus, _, publisher, metrics = await setup()
    with pytest.raises(ConnectionError, match="feed went away"):
        await run_source(Failing(), publisher, metrics)
    assert await on_bus(bus) == ["before-the-crash"]
    assert count(metrics, "sentimon_mentions_received_total", source="file") == 1
    invalid = {"source": "failing", "reason": "invalid"}
    assert count(metrics, "sentimon_mentions_rejected_total", **invalid) == 1


async def test_a_failed_send_is_raised_once_the_batch_settled_and_what_was_produced_counts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b"".join(orjson.dumps(mention_doc(id=f"m{i}", source="file")) + b"\n" for i in range(10))
    )
    bus, producer, publisher, metrics = await setup(fail_on='"m4"')
    with pytest.raises(OSError, match="disk full"):
        await run_source(FileSource(path), publisher, metrics)
    produced = await on_bus(bus)
    assert "m4" not in produced
    assert count(metrics, "sentimon_mentions_accepted_total", source="file") == len(produced)
    # The failed one is forgotten by the deduplication: a retry produces it.
    producer.fail_on = None
    assert await publisher.publish(
        Mention.model_validate(mention_doc(id="m4", source="file")), "file"
    )


class CancelledInside:
    """A source whose own wait is cancelled by someone else: its reader ends cancelled."""

    name = "cancelled-inside"

    def __init__(self, items_first: int) -> None:
        self.items_first = items_first

    async def items(self) -> AsyncIterator[SourceItem]:
        for i in range(self.items_first):
            yield Mention.model_validate(mention_doc(id=f"c{i}", source="file"))
        raise asyncio.CancelledError("a wait inside the source was cancelled")


@pytest.mark.parametrize("items_first", [0, 3, MAX_BATCH * 2])
async def test_a_reader_that_ends_cancelled_does_not_leave_the_worker_waiting(
    items_first: int,
) -> None:
    bus, _, publisher, metrics = await setup()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run_source(CancelledInside(items_first), publisher, metrics), 10)
    assert len(await on_bus(bus)) == items_first
