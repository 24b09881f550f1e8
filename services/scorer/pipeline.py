"""The scorer service: raw mentions → scored mentions → the store.

Three consumers, each a ``ConsumerLoop`` with its own group:

* ``sentimon-scorer`` reads ``mentions.raw``, scores, produces ``mentions.scored``;
* ``sentimon-writer`` reads ``mentions.scored`` and writes batches to the database;
* ``sentimon-dlq-sink`` keeps ``mentions.dlq`` in the database for operators to read.

Add scorer processes to scale: the raw topic's partitions are shared among them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy import Engine

from services.core.brands import BrandMatcher
from services.core.bus.protocol import Bus, Message, Producer
from services.core.clock import Clock
from services.core.metrics import Metrics
from services.core.models import Mention, ScoredMention
from services.core.storage.brands import BrandStore
from services.core.storage.deadletters import store_dead_letters
from services.core.storage.writer import MentionWriter
from services.core.stream.dlq import DeadLetterQueue
from services.core.stream.errors import InvalidMessage
from services.core.stream.runner import ConsumerLoop, LoopConfig
from services.core.topics import (
    DLQ,
    DLQ_GROUP,
    RAW,
    SCORED,
    SCORER_GROUP,
    WRITER_GROUP,
    mention_key,
)
from services.core.validation import describe
from services.scorer.lexicon import VaderScorer
from services.scorer.process import ScoringConfig, score_mentions
from services.scorer.protocol import LexiconOnlyRouter, Router, Scorer
from services.scorer.settings import ScorerSettings

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
    """The current brand matcher, rebuilt when the brands in the store change."""

    def __init__(self, store: BrandStore, refresh_s: float) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._version: object = None
        self._checked_at = float("-inf")
        self.matcher = BrandMatcher.compile([])

    async def current(self) -> BrandMatcher:
        now = time.monotonic()
        if now - self._checked_at >= self._refresh_s:
            self._checked_at = now
            await asyncio.to_thread(self.reload)
        return self.matcher

    def reload(self, force: bool = False) -> None:
        version = self._store.version()
        if force or version != self._version:
            brands = self._store.list()
            self.matcher = BrandMatcher.compile([b.definition for b in brands])
            self._version = version
            log.info("brand matcher rebuilt for %d brands", len(brands))


class ScoreStep:
    def __init__(
        self,
        *,
        producer: Producer,
        matchers: BrandMatcherCache,
        lexicon: Scorer,
        router: Router,
        transformer: Scorer | None,
        config: ScoringConfig,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self._producer = producer
        self._matchers = matchers
        self._lexicon = lexicon
        self._router = router
        self._transformer = transformer
        self._config = config
        self._clock = clock
        self._metrics = metrics

    def decode(self, message: Message) -> Mention:
        return decode_json_model(Mention, message)

    async def handle(self, items: Sequence[tuple[Message, Mention]]) -> None:
        matcher = await self._matchers.current()
        batch = score_mentions(
            [m for _, m in items],
            matcher=matcher,
            lexicon=self._lexicon,
            router=self._router,
            transformer=self._transformer,
            config=self._config,
            now=self._clock.now(),
        )
        for scored in batch.scored:
            await self._producer.send(
                SCORED, scored.model_dump_json().encode(), key=mention_key(scored.source, scored.id)
            )
        await self._producer.flush()
        self._observe(batch.scored, batch.timings, batch.unmatched, batch.truncated, batch.routed)

    def _observe(
        self,
        scored: Sequence[ScoredMention],
        timings: Sequence[tuple[str, float]],
        unmatched: int,
        truncated: int,
        routed: int,
    ) -> None:
        m = self._metrics
        m.messages_produced.labels(SCORED).inc(len(scored))
        m.mentions_unmatched.inc(unmatched)
        m.texts_truncated.inc(truncated)
        m.routed_to_transformer.inc(routed)
        for method, seconds in timings:
            m.scoring_latency.labels(method).observe(seconds)
        counts: dict[tuple[str, str], int] = {}
        for s in scored:
            k = (s.sentiment.method, s.sentiment.label)
            counts[k] = counts.get(k, 0) + 1
            if s.spot_check:
                m.spot_checks_sampled.labels(s.sentiment.method).inc()
        for (method, label), n in counts.items():
            m.mentions_scored.labels(method, label).inc(n)


class PersistStep:
    def __init__(self, writer: MentionWriter, metrics: Metrics) -> None:
        self._writer = writer
        self._metrics = metrics

    def decode(self, message: Message) -> ScoredMention:
        return decode_json_model(ScoredMention, message)

    async def handle(self, items: Sequence[tuple[Message, ScoredMention]]) -> None:
        t0 = time.perf_counter()
        # The sync driver runs in a thread; SQLite and psycopg release the GIL while they work.
        result = await asyncio.to_thread(self._writer.write, [m for _, m in items])
        self._metrics.db_write_latency.observe(time.perf_counter() - t0)
        self._metrics.db_write_batch_size.observe(len(items))
        self._metrics.mentions_stored.inc(result.inserted)
        self._metrics.mentions_duplicate_at_store.inc(result.duplicates)


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
    persist: ConsumerLoop[ScoredMention]
    dead_letters: ConsumerLoop[Message]
    matchers: BrandMatcherCache

    @property
    def loops(
        self,
    ) -> tuple[ConsumerLoop[Mention], ConsumerLoop[ScoredMention], ConsumerLoop[Message]]:
        return (self.score, self.persist, self.dead_letters)


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
    """Assemble the scorer's three consumers; the caller runs ``loop.run()`` for each."""
    dlq = DeadLetterQueue(producer, DLQ, metrics)
    matchers = BrandMatcherCache(BrandStore(engine, clock), settings.brand_refresh_s)
    score = ScoreStep(
        producer=producer,
        matchers=matchers,
        lexicon=VaderScorer(),
        router=router or LexiconOnlyRouter(),
        transformer=transformer,
        config=ScoringConfig(
            max_chars=settings.max_score_chars,
            spot_check_rate=settings.spot_check_rate,
            keep_unmatched=settings.keep_unmatched,
        ),
        clock=clock,
        metrics=metrics,
    )
    batch = settings.batch_size
    return ScorerPipeline(
        score=ConsumerLoop(
            bus, score, LoopConfig(SCORER_GROUP, (RAW,), max_records=batch), dlq, metrics
        ),
        persist=ConsumerLoop(
            bus,
            PersistStep(MentionWriter(engine, clock), metrics),
            LoopConfig(WRITER_GROUP, (SCORED,), max_records=batch * 2),
            dlq,
            metrics,
        ),
        dead_letters=ConsumerLoop(
            bus, DeadLetterSinkStep(engine, clock), LoopConfig(DLQ_GROUP, (DLQ,)), None, metrics
        ),
        matchers=matchers,
    )
