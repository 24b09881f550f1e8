"""The scorer service: raw mentions → scored, stored mentions.

Two consumers, each a ``ConsumerLoop`` with its own group:

* ``sentimon-scorer`` reads ``mentions.raw``, scores, writes the store (idempotent,
  with rollups), then produces ``mentions.scored`` for downstream consumers (alerts);
  its offsets are committed only after both. ``build_pipeline`` chains its steps
  (``services/scorer/steps/``, one module each);
* ``sentimon-dlq-sink`` keeps ``mentions.dlq`` in the database for operators to read.

Storing in the scorer rather than in a separate writer consumer saves a hop (a
serialise/parse round trip per mention) and scales writes with the scorers.

Add scorer processes to scale: the raw topic's partitions are shared among them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from services.core.bus.protocol import Bus, Message, Producer
from services.core.clock import Clock
from services.core.metrics import Metrics
from services.core.models import Mention
from services.core.storage.analytics import weekly_volumes
from services.core.storage.brands import BrandStore
from services.core.storage.deadletters import store_dead_letters
from services.core.storage.writer import MentionWriter
from services.core.stream.dlq import DeadLetterQueue
from services.core.stream.loop import ConsumerLoop, LoopConfig
from services.core.stream.trusted import TrustedMessages
from services.core.topics import DLQ, DLQ_GROUP, RAW, SCORER_GROUP
from services.scorer.calibration import apply_calibration
from services.scorer.protocol import Router, Scorer
from services.scorer.routing import FeatureRouter, routing_thresholds
from services.scorer.sampling import brand_floor_rates, sampling_policy
from services.scorer.settings import ScorerSettings
from services.scorer.steps.decode import DecodeMentions
from services.scorer.steps.lexicon import BrandMatcherCache, ScoreLexicon, ScoringConfig
from services.scorer.steps.produce import ProduceScored
from services.scorer.steps.route import RouteAmbiguous
from services.scorer.steps.transformer import BatchTransformer
from services.scorer.steps.write import WriteBatch
from services.scorer.transformer import transformer_from_settings
from services.scorer.transformer_batching import TransformerBatcher
from services.scorer.workers import LexiconWorkers


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
    runner: LexiconWorkers
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
    trusted: TrustedMessages[Mention] | None = None,
) -> ScorerPipeline:
    """Assemble the scorer's consumers; the caller runs ``loop.run()`` for each and
    ``await pipeline.close()`` at the end.

    With neither ``transformer`` nor ``router`` given, ``settings.scorer_mode`` decides:
    ``hybrid`` loads the configured (or shipped) model and routes with the tuned
    thresholds — raising ``ModelLoadError`` if it cannot be loaded, unless
    ``transformer_missing=lexicon`` — and ``lexicon`` scores with VADER alone.

    ``trusted``: the messages an ingest in this process sent with their validated mentions
    (embedded mode); decode takes those instead of parsing them again."""
    # Routing thresholds calibrated from the analysts' labels (`sentimon calibrate --apply`).
    settings = apply_calibration(settings)
    if transformer is None and router is None:
        transformer, router = hybrid_from_settings(settings)
    config = _scoring_config(settings, router)
    batcher = None if transformer is None else _transformer_batcher(transformer, settings, metrics)
    matchers = BrandMatcherCache(
        BrandStore(engine, clock),
        settings.brand_refresh_s,
        floors=lambda: brand_floor_rates(
            weekly_volumes(engine, clock), settings.spot_check_brand_floor, settings.spot_check_rate
        ),
    )
    runner = LexiconWorkers(settings.lexicon_processes)

    # decode → match & lexicon (worker processes, up to two chunks ahead) → route →
    # transformer batch → write batch (in a thread, chunks in order) → produce. Each step
    # is handed the next (arroyo's ``next_step``); the loop commits last, once the
    # batch's tail (its last writes, then the producer's flush) is done.
    score = DecodeMentions(
        next_step=ScoreLexicon(
            runner,
            matchers,
            config,
            chunk_size=settings.chunk_size,
            keep_texts=batcher is not None,
            clock=clock,
            metrics=metrics,
            next_step=RouteAmbiguous(
                router if batcher is not None else None,
                metrics,
                next_step=BatchTransformer(
                    batcher,
                    metrics,
                    next_step=WriteBatch(
                        MentionWriter(engine, clock),
                        config.sampling_policy,
                        metrics,
                        next_step=ProduceScored(producer, metrics),
                    ),
                ),
            ),
        ),
        trusted=trusted,
    )
    dlq = DeadLetterQueue(producer, DLQ, metrics)
    # The reasons decode_json_model gives, exported at zero so the DLQ rate has series.
    for reason in ("invalid_json", "invalid_mention", "store_refused"):
        metrics.dead_letters.labels(RAW, reason)
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


def hybrid_from_settings(settings: ScorerSettings) -> tuple[Scorer | None, Router | None]:
    """The transformer and the router that ``settings`` ask for (``scorer_mode``,
    ``transformer_*``, ``route_*``); ``(None, None)``: lexicon-only. Raises
    ``ModelLoadError`` if the model cannot be loaded, unless ``transformer_missing`` is
    ``lexicon`` (then the problem is logged and scoring is lexicon-only). Also what
    ``sentimon score`` scores with."""
    transformer = transformer_from_settings(settings)
    if transformer is None:
        return None, None
    return transformer, FeatureRouter(routing_thresholds(settings))


def _scoring_config(settings: ScorerSettings, router: Router | None) -> ScoringConfig:
    return ScoringConfig(
        max_chars=settings.max_score_chars,
        spot_check_rate=settings.spot_check_rate,
        keep_unmatched=settings.keep_unmatched,
        sampling=sampling_policy(
            settings, router.thresholds if isinstance(router, FeatureRouter) else None
        ),
    )


def _transformer_batcher(
    transformer: Scorer, settings: ScorerSettings, metrics: Metrics
) -> TransformerBatcher:
    return TransformerBatcher(
        transformer,
        batch_size=settings.transformer_batch_size,
        max_wait_s=settings.transformer_max_wait_ms / 1000,
        queue_size=settings.transformer_queue_size,
        overload=settings.transformer_overload,
        metrics=metrics,
    )
