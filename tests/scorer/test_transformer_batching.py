"""Dynamic batching of the transformer: by size or time, off the event loop, a bounded
queue with backpressure or lexicon fallback; and in the pipeline, lexicon-only mentions
are stored while a transformer batch is still running."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.core.bus import MemoryBus, TopicPartition
from services.core.clock import SystemClock
from services.core.metrics import Metrics
from services.core.models import ScoredMention, Sentiment
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.topics import DEFAULT_TOPICS, RAW, SCORED
from services.scorer.pipeline import build_pipeline
from services.scorer.protocol import Route
from services.scorer.settings import ScorerSettings
from services.scorer.transformer_batching import BatcherClosed, TransformerBatcher
from tests.fixtures.mentions import mention_doc


class GatedTransformer:
    """Says negative to everything, but each batch waits until the test opens the gate;
    ``started`` is set when a batch has begun (in the batcher's thread)."""

    method: Literal["transformer"] = "transformer"

    def __init__(self, *, open_gate: bool = False) -> None:
        self.gate = threading.Event()
        if open_gate:
            self.gate.set()
        self.started = threading.Event()
        self.batches: list[list[str]] = []
        self.fail = False

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        self.batches.append(list(texts))
        self.started.set()
        if not self.gate.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")
        if self.fail:
            raise RuntimeError("model exploded")
        return [
            Sentiment(
                label="negative",
                score=-0.9,
                confidence=0.9,
                method="transformer",
                lexicon_compound=0.0,
                model_version="gated-1",
            )
            for _ in texts
        ]


async def started(model: GatedTransformer) -> None:
    assert await asyncio.to_thread(model.started.wait, 10), "no batch started"


async def yield_to_loop(times: int = 20) -> None:
    """Let every ready task run (no time passes: this is not a sleep)."""
    for _ in range(times):
        await asyncio.sleep(0)  # ok-sleep: yields to the loop once, waits for nothing


async def test_a_full_batch_runs_without_waiting_for_the_timer() -> None:
    model = GatedTransformer(open_gate=True)
    async with TransformerBatcher(model, batch_size=4, max_wait_s=3600) as batcher:
        verdicts = await asyncio.wait_for(batcher.score([f"t{i}" for i in range(8)]), 10)
    assert [v.label if v else None for v in verdicts] == ["negative"] * 8
    assert model.batches == [["t0", "t1", "t2", "t3"], ["t4", "t5", "t6", "t7"]]


async def test_a_partial_batch_runs_when_its_wait_is_up() -> None:
    model = GatedTransformer(open_gate=True)
    async with TransformerBatcher(model, batch_size=100, max_wait_s=0.01) as batcher:
        verdicts = await asyncio.wait_for(batcher.score(["one", "two"]), 10)
    assert len(verdicts) == 2 and model.batches == [["one", "two"]]


async def test_the_event_loop_keeps_running_while_a_batch_runs() -> None:
    model = GatedTransformer()
    async with TransformerBatcher(model, batch_size=1, max_wait_s=0) as batcher:
        (future,) = await batcher.submit(["slow"])
        assert future is not None
        await started(model)
        ticks = 0
        for _ in range(50):  # the loop is free: other coroutines make progress
            await asyncio.sleep(0)  # ok-sleep: yields to the loop once, waits for nothing
            ticks += 1
        assert ticks == 50 and not future.done()
        model.gate.set()
        assert (await asyncio.wait_for(future, 10)).label == "negative"


async def test_a_full_queue_applies_backpressure() -> None:
    model = GatedTransformer()
    async with TransformerBatcher(model, batch_size=1, max_wait_s=0, queue_size=2) as batcher:
        await batcher.submit(["running"])
        await started(model)  # the worker holds this one; the queue is empty again
        await batcher.submit(["q1", "q2"])  # fills the queue
        blocked = asyncio.create_task(batcher.submit(["waits"]))
        await yield_to_loop()
        assert not blocked.done() and batcher.queued == 2
        model.gate.set()
        (future,) = await asyncio.wait_for(blocked, 10)
        assert future is not None
        assert (await asyncio.wait_for(future, 10)).label == "negative"


async def test_lexicon_policy_refuses_what_does_not_fit_instead_of_waiting() -> None:
    model = GatedTransformer()
    async with TransformerBatcher(
        model, batch_size=1, max_wait_s=0, queue_size=2, overload="lexicon"
    ) as batcher:
        await batcher.submit(["running"])
        await started(model)
        futures = await asyncio.wait_for(batcher.submit(["q1", "q2", "over", "flow"]), 1)
        assert [f is None for f in futures] == [False, False, True, True]
        model.gate.set()


async def test_a_failing_batch_fails_its_texts_and_the_worker_goes_on() -> None:
    model = GatedTransformer(open_gate=True)
    model.fail = True
    async with TransformerBatcher(model, batch_size=2, max_wait_s=0) as batcher:
        with pytest.raises(RuntimeError, match="exploded"):
            await asyncio.wait_for(batcher.score(["a", "b"]), 10)
        model.fail = False
        assert (await asyncio.wait_for(batcher.score(["c"]), 10))[0] is not None


async def test_closing_fails_what_is_still_queued_and_refuses_more() -> None:
    model = GatedTransformer()
    batcher = TransformerBatcher(model, batch_size=1, max_wait_s=0, queue_size=4)
    batcher.start()
    await batcher.submit(["running"])
    await started(model)
    (queued,) = await batcher.submit(["queued"])
    model.gate.set()
    await batcher.close()
    assert queued is not None
    with pytest.raises(BatcherClosed):
        await queued
    with pytest.raises(BatcherClosed):
        await batcher.submit(["late"])


class NeutralToTransformer:
    def route(self, text: str, lexicon: Sentiment) -> Route:
        return "transformer" if lexicon.label == "neutral" else "lexicon"


@pytest.mark.parametrize("overload", ["backpressure", "lexicon"])
async def test_lexicon_mentions_are_stored_while_a_transformer_batch_runs(
    tmp_path: Path, overload: Literal["backpressure", "lexicon"]
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(engine)
    BrandStore(engine, SystemClock()).create("Acme", "acme")
    bus = MemoryBus()
    await bus.create_topics(DEFAULT_TOPICS)
    producer = await bus.producer()
    model = GatedTransformer()
    settings = ScorerSettings(
        data_dir=tmp_path,
        lexicon_processes=0,
        transformer_max_wait_ms=0,
        transformer_overload=overload,
    )
    pipeline = build_pipeline(
        settings,
        bus=bus,
        producer=producer,
        engine=engine,
        clock=SystemClock(),
        metrics=Metrics(CollectorRegistry()),
        transformer=model,
        router=NeutralToTransformer(),
    )
    downstream = await bus.consumer("downstream", [SCORED])
    task = asyncio.create_task(pipeline.score.run())
    try:
        await producer.send(RAW, orjson.dumps(mention_doc(id="slow", text="Acme shipped v2")))
        await started(model)  # its batch is running, and held
        for i in range(3):
            doc = mention_doc(id=f"fast{i}", text="Acme is wonderful, I love it")
            await producer.send(RAW, orjson.dumps(doc))
        seen: dict[str, ScoredMention] = {}
        while len(seen) < 3:
            batch = await downstream.getmany(max_records=10, timeout_s=10)
            assert batch, f"lexicon mentions not produced while the batch ran: {sorted(seen)}"
            for m in (ScoredMention.model_validate_json(x.value) for x in batch):
                seen[m.id] = m
        assert sorted(seen) == ["fast0", "fast1", "fast2"]  # and not "slow", still held
        assert all(m.sentiment.method == "lexicon" for m in seen.values())
        assert all(m.sentiment.model_version == "vaderSentiment-3.3.2" for m in seen.values())
        model.gate.set()
        slow = await downstream.getmany(max_records=10, timeout_s=10)
        (routed,) = [ScoredMention.model_validate_json(x.value) for x in slow]
        assert routed.id == "slow" and routed.sentiment.method == "transformer"
        assert routed.sentiment.model_version == "gated-1"
        await pipeline.score.wait_caught_up([TopicPartition(RAW, p) for p in range(8)], 10)
    finally:
        model.gate.set()
        pipeline.score.stop()
        await task
        await pipeline.close()


async def test_overloaded_transformer_gives_marked_lexicon_verdicts(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(engine)
    BrandStore(engine, SystemClock()).create("Acme", "acme")
    bus = MemoryBus()
    await bus.create_topics(DEFAULT_TOPICS)
    producer = await bus.producer()
    model = GatedTransformer()
    metrics = Metrics(CollectorRegistry())
    settings = ScorerSettings(
        data_dir=tmp_path,
        lexicon_processes=0,
        transformer_max_wait_ms=0,
        transformer_batch_size=1,
        transformer_queue_size=1,
        transformer_overload="lexicon",
    )
    pipeline = build_pipeline(
        settings,
        bus=bus,
        producer=producer,
        engine=engine,
        clock=SystemClock(),
        metrics=metrics,
        transformer=model,
        router=NeutralToTransformer(),
    )
    downstream = await bus.consumer("downstream", [SCORED])
    task = asyncio.create_task(pipeline.score.run())
    try:
        await producer.send(RAW, orjson.dumps(mention_doc(id="held", text="Acme shipped v2")))
        await started(model)
        for i in range(3):  # one fits in the queue, two do not
            await producer.send(RAW, orjson.dumps(mention_doc(id=f"n{i}", text="Acme v3 out")))
        fallbacks: list[ScoredMention] = []
        while len(fallbacks) < 2:
            batch = await downstream.getmany(max_records=10, timeout_s=10)
            assert batch, "fallback verdicts not produced"
            fallbacks += [ScoredMention.model_validate_json(x.value) for x in batch]
        assert all(m.sentiment.fallback and m.sentiment.method == "lexicon" for m in fallbacks)
        assert metrics.registry.get_sample_value("sentimon_transformer_fallbacks_total") == 2
        model.gate.set()
        await pipeline.score.wait_caught_up([TopicPartition(RAW, p) for p in range(8)], 10)
    finally:
        model.gate.set()
        pipeline.score.stop()
        await task
        await pipeline.close()
