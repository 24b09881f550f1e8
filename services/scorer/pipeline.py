"""The scorer service: raw mentions → scored, stored mentions.

Two consumers, each a ``ConsumerLoop`` with its own group:

* ``sentimon-scorer`` reads ``mentions.raw``, scores, writes the store (idempotent,
  with rollups), then produces ``mentions.scored`` for downstream consumers (alerts);
  its offsets are committed only after both;
* ``sentimon-dlq-sink`` keeps ``mentions.dlq`` in the database for operators to read.

Storing in the scorer rather than in a separate writer consumer saves a hop (a
serialise/parse round trip per mention) and scales writes with the scorers.

Add scorer processes to scale: the raw topic's partitions are shared among them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import Engine

from services.core.brands import BrandDefinition, BrandError, BrandMatcher
from services.core.bus.protocol import Bus, Message, Producer
from services.core.clock import Clock
from services.core.metrics import Metrics
from services.core.models import Mention, ScoredMention, Sentiment
from services.core.storage.brands import BrandStore
from services.core.storage.deadletters import store_dead_letters
from services.core.storage.writer import MentionWriter, Refused, ScoredRecord
from services.core.stream.dlq import DeadLetterQueue
from services.core.stream.errors import InvalidMessage
from services.core.stream.runner import ConsumerLoop, LoopConfig, Refusal
from services.core.topics import (
    DLQ,
    DLQ_GROUP,
    RAW,
    SCORED,
    SCORER_GROUP,
    mention_key,
)
from services.core.validation import describe
from services.scorer.calibration import apply_calibration
from services.scorer.lexicon import lexicon_sentiment
from services.scorer.process import (
    ChunkItem,
    ChunkResult,
    LexiconResult,
    ScoringConfig,
    records,
    to_route,
)
from services.scorer.protocol import LexiconOnlyRouter, Router, Scorer
from services.scorer.routing import FeatureRouter, routing_thresholds
from services.scorer.sampling import sampling_policy
from services.scorer.settings import ScorerSettings
from services.scorer.transformer import transformer_from_settings
from services.scorer.transformer_batching import TransformerBatcher
from services.scorer.workers import BrandSet, ScoringRunner

log = logging.getLogger(__name__)


ModelT = TypeVar("ModelT", Mention, ScoredMention)


def decode_json_model(model: type[ModelT], message: Message) -> ModelT:
    """Parse a message as ``model``; poison raises ``InvalidMessage`` naming the field."""
    try:
        return model.model_validate_json(message.value)
    except ValidationError as e:
        if any(err["type"] == "json_invalid" for err in e.errors()):
            raise InvalidMessage(f"invalid JSON: {e.errors()[0]['msg']}") from e
        raise InvalidMessage(f"invalid {model.__name__}: {describe(e)}") from e


class BrandMatcherCache:
    """The tracked brands, reloaded when the store says they changed.

    ``brands`` is what the scoring workers compile their matchers from; ``matcher`` is
    the same set compiled here (which also proves every definition compiles).
    """

    def __init__(self, store: BrandStore, refresh_s: float) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._version: object = None
        self._checked_at = float("-inf")
        self.matcher = BrandMatcher.compile([])
        self.brands = BrandSet(version=0)

    async def current(self) -> BrandSet:
        now = time.monotonic()
        if now - self._checked_at >= self._refresh_s:
            self._checked_at = now
            await asyncio.to_thread(self.reload)
        return self.brands

    def reload(self, force: bool = False) -> None:
        version = self._store.version()
        if force or version != self._version:
            usable: list[BrandDefinition] = []
            for b in self._store.list():
                # A brand stored under older, looser rules must not stop all scoring.
                try:
                    definition = b.definition
                    BrandMatcher.compile([definition])
                except BrandError as e:
                    log.error("brand %r is not tracked until fixed: %s", b.name, e)
                    continue
                usable.append(definition)
            self.matcher = BrandMatcher.compile(usable)
            self.brands = BrandSet(
                version=self.brands.version + 1,
                definitions=tuple((d.name, d.query) for d in usable),
            )
            self._version = version
            log.info("brand matcher rebuilt for %d brands", len(usable))


class ScoreStep:
    """raw → score → store → produce ``mentions.scored``; the loop commits after it.

    The batch is worked in chunks so that VADER (in a worker process) scores chunk k+1
    while this process writes chunk k. Each chunk's write is one idempotent
    transaction, so a batch that fails half-way is simply delivered again.
    """

    def __init__(
        self,
        *,
        producer: Producer,
        matchers: BrandMatcherCache,
        runner: ScoringRunner,
        router: Router,
        batcher: TransformerBatcher | None,
        writer: MentionWriter,
        config: ScoringConfig,
        chunk_size: int,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self._producer = producer
        self._matchers = matchers
        self._runner = runner
        self._router = router
        self._batcher = batcher
        self._writer = writer
        self._config = config
        self._chunk = chunk_size
        self._clock = clock
        self._metrics = metrics

    def decode(self, message: Message) -> Mention:
        return decode_json_model(Mention, message)

    async def handle(self, items: Sequence[tuple[Message, Mention]]) -> Awaitable[list[Refusal]]:
        brands = await self._matchers.current()
        mentions = [m for _, m in items]
        messages = {m.key: msg for msg, m in items}
        chunk_items = [ChunkItem(m.source, m.id, m.text, msg.value) for msg, m in items]
        starts = range(0, len(items), self._chunk)
        now = self._clock.now()
        keep_texts = self._batcher is not None

        def submit(start: int) -> asyncio.Future[ChunkResult]:
            chunk = chunk_items[start : start + self._chunk]
            return asyncio.ensure_future(
                self._runner.score(chunk, brands, self._config, now, keep_texts=keep_texts)
            )

        # Three lanes kept busy at once: the workers score up to two chunks ahead, this
        # loop turns results into records, and one chunk at a time is written (in a
        # thread) and then produced. Writes stay in chunk order; the loop commits only
        # after all of them. Mentions routed to the transformer are written on a second
        # lane when their batch is done, so the lexicon's mentions never wait for it.
        scoring = deque(submit(start) for start in starts[:2])
        writing: asyncio.Future[list[Refusal]] | None = None
        routed_writing: asyncio.Future[list[Refusal]] | None = None
        try:
            for k, start in enumerate(starts):
                result = await scoring.popleft()
                if k + 2 < len(starts):
                    scoring.append(submit(starts[k + 2]))
                self._metrics.mentions_unmatched.inc(result.unmatched)
                self._metrics.texts_truncated.inc(result.truncated)
                records, routed = await self._records(mentions, chunk_items, start, result, now)
                seconds = [r.seconds for r in result.results]
                writing = asyncio.ensure_future(
                    self._store_and_produce(records, seconds, writing, messages)
                )
                if routed is not None:
                    routed_writing = asyncio.ensure_future(
                        self._store_and_produce(routed, (), routed_writing, messages)
                    )
        except BaseException:
            for f in scoring:
                f.cancel()
            for w in (writing, routed_writing):
                if w is not None:
                    w.cancel()
            raise
        # The last writes finish while the loop already reads the next batch; it commits
        # this one when they are done.
        return self._finish(writing, routed_writing)

    async def _finish(self, *lanes: asyncio.Future[list[Refusal]] | None) -> list[Refusal]:
        refused: list[Refusal] = []
        for writing in lanes:
            if writing is not None:
                refused.extend(await writing)
        await self._producer.flush()
        return refused

    async def _records(
        self,
        mentions: Sequence[Mention],
        items: Sequence[ChunkItem],
        start: int,
        result: ChunkResult,
        now: datetime,
    ) -> tuple[list[ScoredRecord], Awaitable[list[ScoredRecord]] | None]:
        """The chunk's lexicon records now, and (if the router sent any mention to the
        transformer) an awaitable of the routed ones' records, done when their batch is.
        Waits here for room in the transformer's queue under the backpressure policy."""
        end = start + self._chunk
        chunk_mentions = mentions[start:end]
        raws = [item.raw for item in items[start:end]]
        sampling = self._config.sampling_policy
        routed = [] if self._batcher is None else to_route(result.results, self._router)
        if not routed:
            return records(chunk_mentions, raws, result, now=now, sampling=sampling), None
        assert self._batcher is not None
        self._batcher.start()
        self._metrics.routed_to_transformer.inc(len(routed))
        chosen = set(routed)
        kept = [r for i, r in enumerate(result.results) if i not in chosen]
        futures = await self._batcher.submit([result.results[i].text for i in routed])
        taken = [(result.results[i], f) for i, f in zip(routed, futures, strict=True) if f]
        # Under the lexicon overload policy, what the queue had no room for gets the
        # lexicon's verdict, marked, and goes out now with the rest.
        refused = [result.results[i] for i, f in zip(routed, futures, strict=True) if not f]
        if refused:
            self._metrics.transformer_fallbacks.inc(len(refused))
        now_records = records(
            chunk_mentions,
            raws,
            ChunkResult(kept + refused),
            routed=range(len(kept), len(kept) + len(refused)),
            better=[
                lexicon_sentiment(r.compound).model_copy(update={"fallback": True}) for r in refused
            ],
            now=now,
            sampling=sampling,
        )
        if not taken:
            return now_records, None
        return now_records, self._routed_records(chunk_mentions, raws, taken, now)

    async def _routed_records(
        self,
        mentions: Sequence[Mention],
        raws: Sequence[bytes],
        taken: Sequence[tuple[LexiconResult, asyncio.Future[Sentiment]]],
        now: datetime,
    ) -> list[ScoredRecord]:
        t0 = time.perf_counter()
        better = [await future for _, future in taken]
        each = (time.perf_counter() - t0) / len(taken)
        latency = self._metrics.scoring_latency.labels("transformer")
        for _ in taken:
            latency.observe(each)
        return records(
            mentions,
            raws,
            ChunkResult([r for r, _ in taken]),
            routed=range(len(taken)),
            better=better,
            now=now,
            sampling=self._config.sampling_policy,
        )

    async def _store_and_produce(
        self,
        records: Sequence[ScoredRecord] | Awaitable[list[ScoredRecord]],
        lexicon_seconds: Sequence[float],
        previous: asyncio.Future[list[Refusal]] | None,
        messages: Mapping[tuple[str, str], Message],
    ) -> list[Refusal]:
        """Store a chunk, then produce what was stored; returns what the store refused
        for good (the loop dead-letters it). Chains after ``previous`` (its refusals are
        passed on) so chunks are written in order and a failure stops the ones after it."""
        if not isinstance(records, Sequence):
            records = await records  # the transformer's lane: its batch first
        refusals = [] if previous is None else list(await previous)
        refused = await self._store(records)
        if refused:
            gone = {r.record.key for r in refused}
            records = [r for r in records if r.key not in gone]
            refusals.extend(Refusal(messages[r.record.key], r.reason) for r in refused)
        send = self._producer.send
        # Sent together: on Kafka each send waits for the broker's acknowledgement, and one
        # at a time would cap a scorer at one round trip per mention.
        await asyncio.gather(*(send(SCORED, r.doc, key=mention_key(*r.key)) for r in records))
        self._observe(records, lexicon_seconds)
        return refusals

    async def _store(self, records: Sequence[ScoredRecord]) -> tuple[Refused, ...]:
        t0 = time.perf_counter()
        # The sync driver runs in a thread; SQLite and psycopg release the GIL while they
        # work. A transient error (database away) raises: the batch is delivered again.
        written = await asyncio.to_thread(self._writer.write_isolating, records)
        result = written.result
        m = self._metrics
        m.db_write_latency.observe(time.perf_counter() - t0)
        m.db_write_batch_size.observe(len(records))
        m.mentions_stored.inc(result.inserted)
        m.mentions_duplicate_at_store.inc(result.duplicates)
        return written.refused

    def _observe(self, records: Sequence[ScoredRecord], lexicon_seconds: Sequence[float]) -> None:
        m = self._metrics
        m.messages_produced.labels(SCORED).inc(len(records))
        latency = m.scoring_latency.labels("lexicon")
        for s in lexicon_seconds:
            latency.observe(s)
        counts: dict[tuple[str, str], int] = {}
        spot: dict[str, int] = {}
        for r in records:
            k = (r.sentiment.method, r.sentiment.label)
            counts[k] = counts.get(k, 0) + 1
            if r.spot_check:
                spot[r.sentiment.method] = spot.get(r.sentiment.method, 0) + 1
        for (method, label), n in counts.items():
            m.mentions_scored.labels(method, label).inc(n)
        for method, n in spot.items():
            m.spot_checks_sampled.labels(method).inc(n)


class DeadLetterSinkStep:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def decode(self, message: Message) -> Message:
        return message

    async def handle(self, items: Sequence[tuple[Message, Message]]) -> None:
        await asyncio.to_thread(
            store_dead_letters, self._engine, [m for m, _ in items], self._clock.now()
        )


@dataclass(frozen=True, slots=True)
class ScorerPipeline:
    score: ConsumerLoop[Mention]
    dead_letters: ConsumerLoop[Message]
    matchers: BrandMatcherCache
    runner: ScoringRunner
    batcher: TransformerBatcher | None = None

    @property
    def loops(self) -> tuple[ConsumerLoop[Any], ...]:
        return (self.score, self.dead_letters)

    def progress_problem(self) -> str | None:
        """The first consumer that halted or is stuck, and why (for readiness)."""
        for loop in self.loops:
            if (problem := loop.progress_problem()) is not None:
                return problem
        return None

    async def close(self) -> None:
        """Stop the transformer's batcher and the lexicon's worker processes (after the
        loops have stopped)."""
        if self.batcher is not None:
            await self.batcher.close()
        await asyncio.to_thread(self.runner.close)


def build_pipeline(
    settings: ScorerSettings,
    *,
    bus: Bus,
    producer: Producer,
    engine: Engine,
    clock: Clock,
    metrics: Metrics,
    transformer: Scorer | None = None,
    router: Router | None = None,
) -> ScorerPipeline:
    """Assemble the scorer's consumers; the caller runs ``loop.run()`` for each and
    ``await pipeline.close()`` at the end.

    With neither ``transformer`` nor ``router`` given, ``settings.scorer_mode`` decides:
    ``hybrid`` loads the configured (or shipped) model and routes with the tuned
    thresholds — raising ``ModelLoadError`` if it cannot be loaded, unless
    ``transformer_missing=lexicon`` — and ``lexicon`` scores with VADER alone."""
    # Routing thresholds calibrated from the analysts' labels (`sentimon calibrate --apply`).
    settings = apply_calibration(settings)
    if transformer is None and router is None:
        transformer = transformer_from_settings(settings)
        if transformer is not None:
            router = FeatureRouter(routing_thresholds(settings))
    batcher = (
        None
        if transformer is None
        else TransformerBatcher(
            transformer,
            batch_size=settings.transformer_batch_size,
            max_wait_s=settings.transformer_max_wait_ms / 1000,
            queue_size=settings.transformer_queue_size,
            overload=settings.transformer_overload,
            metrics=metrics,
        )
    )
    dlq = DeadLetterQueue(producer, DLQ, metrics)
    # The reasons decode_json_model gives, exported at zero so the DLQ rate has series.
    for reason in ("invalid_json", "invalid_mention", "store_refused"):
        metrics.dead_letters.labels(RAW, reason)
    matchers = BrandMatcherCache(BrandStore(engine, clock), settings.brand_refresh_s)
    runner = ScoringRunner(settings.lexicon_processes)
    score = ScoreStep(
        producer=producer,
        matchers=matchers,
        runner=runner,
        router=router or LexiconOnlyRouter(),
        batcher=batcher,
        writer=MentionWriter(engine, clock),
        config=ScoringConfig(
            max_chars=settings.max_score_chars,
            spot_check_rate=settings.spot_check_rate,
            keep_unmatched=settings.keep_unmatched,
            sampling=sampling_policy(
                settings, router.thresholds if isinstance(router, FeatureRouter) else None
            ),
        ),
        chunk_size=settings.chunk_size,
        clock=clock,
        metrics=metrics,
    )
    return ScorerPipeline(
        score=ConsumerLoop(
            bus,
            score,
            LoopConfig(SCORER_GROUP, (RAW,), max_records=settings.batch_size),
            dlq,
            metrics,
        ),
        dead_letters=ConsumerLoop(
            bus, DeadLetterSinkStep(engine, clock), LoopConfig(DLQ_GROUP, (DLQ,)), None, metrics
        ),
        matchers=matchers,
        runner=runner,
        batcher=batcher,
    )
