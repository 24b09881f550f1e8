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
from collections.abc import Awaitable, Sequence
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
from services.core.storage.writer import MentionWriter, ScoredRecord
from services.core.stream.dlq import DeadLetterQueue
from services.core.stream.errors import InvalidMessage
from services.core.stream.runner import ConsumerLoop, LoopConfig
from services.core.topics import (
    DLQ,
    DLQ_GROUP,
    RAW,
    SCORED,
    SCORER_GROUP,
    mention_key,
)
from services.core.validation import describe
from services.scorer.process import (
    ChunkItem,
    ChunkResult,
    ScoringConfig,
    records,
    to_route,
)
from services.scorer.protocol import LexiconOnlyRouter, Router, Scorer
from services.scorer.settings import ScorerSettings
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
        transformer: Scorer | None,
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
        self._transformer = transformer
        self._writer = writer
        self._config = config
        self._chunk = chunk_size
        self._clock = clock
        self._metrics = metrics

    def decode(self, message: Message) -> Mention:
        return decode_json_model(Mention, message)

    async def handle(self, items: Sequence[tuple[Message, Mention]]) -> Awaitable[None]:
        brands = await self._matchers.current()
        mentions = [m for _, m in items]
        chunk_items = [ChunkItem(m.source, m.id, m.text, msg.value) for msg, m in items]
        starts = range(0, len(items), self._chunk)
        now = self._clock.now()
        keep_texts = self._transformer is not None

        def submit(start: int) -> asyncio.Future[ChunkResult]:
            chunk = chunk_items[start : start + self._chunk]
            return asyncio.ensure_future(
                self._runner.score(chunk, brands, self._config, now, keep_texts=keep_texts)
            )

        # Three lanes kept busy at once: the workers score up to two chunks ahead, this
        # loop turns results into records, and one chunk at a time is written (in a
        # thread) and then produced. Writes stay in chunk order; the loop commits only
        # after all of them.
        scoring = deque(submit(start) for start in starts[:2])
        writing: asyncio.Future[None] | None = None
        try:
            for k, start in enumerate(starts):
                result = await scoring.popleft()
                if k + 2 < len(starts):
                    scoring.append(submit(starts[k + 2]))
                self._metrics.mentions_unmatched.inc(result.unmatched)
                self._metrics.texts_truncated.inc(result.truncated)
                records = await self._records(mentions, chunk_items, start, result, now)
                seconds = [r.seconds for r in result.results]
                writing = asyncio.ensure_future(self._store_and_produce(records, seconds, writing))
        except BaseException:
            for f in scoring:
                f.cancel()
            if writing is not None:
                writing.cancel()
            raise
        # The last writes finish while the loop already reads the next batch; it commits
        # this one when they are done.
        return self._finish(writing)

    async def _finish(self, writing: asyncio.Future[None] | None) -> None:
        if writing is not None:
            await writing
        await self._producer.flush()

    async def _records(
        self,
        mentions: Sequence[Mention],
        items: Sequence[ChunkItem],
        start: int,
        result: ChunkResult,
        now: datetime,
    ) -> list[ScoredRecord]:
        """Records from the lexicon's results, with the transformer's second opinion
        where the router asks for one."""
        end = start + self._chunk
        routed: list[int] = []
        better: list[Sentiment] = []
        if self._transformer is not None:
            routed = to_route(result.results, self._router)
            if routed:
                t0 = time.perf_counter()
                better = await asyncio.to_thread(
                    self._transformer.score_batch, [result.results[i].text for i in routed]
                )
                each = (time.perf_counter() - t0) / len(routed)
                for _ in routed:
                    self._metrics.scoring_latency.labels("transformer").observe(each)
                self._metrics.routed_to_transformer.inc(len(routed))
        return records(
            mentions[start:end],
            [item.raw for item in items[start:end]],
            result,
            routed=routed,
            better=better,
            now=now,
        )

    async def _store_and_produce(
        self,
        records: Sequence[ScoredRecord],
        lexicon_seconds: Sequence[float],
        previous: asyncio.Future[None] | None,
    ) -> None:
        if previous is not None:
            await previous  # keeps chunks in order, and a failure stops the ones after it
        await self._store(records)
        send = self._producer.send
        for r in records:
            await send(SCORED, r.doc, key=mention_key(*r.key))
        self._observe(records, lexicon_seconds)

    async def _store(self, records: Sequence[ScoredRecord]) -> None:
        t0 = time.perf_counter()
        # The sync driver runs in a thread; SQLite and psycopg release the GIL while they work.
        result = await asyncio.to_thread(self._writer.write, records)
        m = self._metrics
        m.db_write_latency.observe(time.perf_counter() - t0)
        m.db_write_batch_size.observe(len(records))
        m.mentions_stored.inc(result.inserted)
        m.mentions_duplicate_at_store.inc(result.duplicates)

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

    @property
    def loops(self) -> tuple[ConsumerLoop[Any], ...]:
        return (self.score, self.dead_letters)


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
    ``pipeline.runner.close()`` at the end."""
    dlq = DeadLetterQueue(producer, DLQ, metrics)
    matchers = BrandMatcherCache(BrandStore(engine, clock), settings.brand_refresh_s)
    runner = ScoringRunner(settings.lexicon_processes)
    score = ScoreStep(
        producer=producer,
        matchers=matchers,
        runner=runner,
        router=router or LexiconOnlyRouter(),
        transformer=transformer,
        writer=MentionWriter(engine, clock),
        config=ScoringConfig(
            max_chars=settings.max_score_chars,
            spot_check_rate=settings.spot_check_rate,
            keep_unmatched=settings.keep_unmatched,
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
    )
