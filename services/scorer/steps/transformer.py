"""Transformer batch: the routed mentions queue for the transformer's batches
(``TransformerBatcher``: backpressure or lexicon fallback when its queue is full), and so
do the marked texts of every mention scored per brand (issue 16: ``LexiconResult.targets``,
whatever the router chose for the mention itself).

Two chunks go on for each one that comes in: at once, the lexicon's mentions with those
the queue had no room for (fallback verdicts; toward a brand: the clause-scoped lexicon's),
so they never wait for a transformer batch; and, as an awaitable done when their batch
is, the mentions it took a text of.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Generic, TypeVar

from services.core.metrics import Metrics
from services.core.models import BrandSentiment, Sentiment
from services.scorer.lexicon import lexicon_sentiment
from services.scorer.steps.abstract import Forward, NextStep
from services.scorer.steps.lexicon import Chunk, LexiconResult, ScoredChunk
from services.scorer.steps.route import Routed
from services.scorer.transformer_batching import TransformerBatcher


def fallback_verdict(result: LexiconResult) -> Sentiment:
    """The lexicon's verdict, marked: for a mention the transformer had no room for."""
    return lexicon_sentiment(result.compound).model_copy(update={"fallback": True})


F = TypeVar("F")


@dataclass(frozen=True, slots=True)
class Asked(Generic[F]):
    """A mention waiting for the transformer: its second opinion (``opinion``; ``None``:
    the lexicon's verdict stands, marked fallback if the queue ``refused`` it) and the
    verdicts toward its brands that the queue took (``brands``: brand, opinion)."""

    result: LexiconResult
    opinion: F | None
    refused: bool
    brands: tuple[tuple[str, F], ...]


def target_texts(routed: Routed) -> list[tuple[LexiconResult, str, str]]:
    """Every (mention, brand, marked text) of the chunk for the target-aware model, the
    lexicon's mentions and the routed ones alike."""
    return [
        (r, t.brand, t.text)
        for r in chain(routed.lexicon, routed.transformer)
        for t in r.targets
        if t.text
    ]


def split_asked(
    routed: Routed,
    opinions: Sequence[F | None],
    targets: Sequence[tuple[LexiconResult, str, str]],
    target_opinions: Sequence[F | None],
) -> tuple[ScoredChunk, list[Asked[F]]]:
    """What goes on at once, and what waits for the transformer. ``opinions``: for each
    routed mention (``routed.transformer``), ``None`` where the queue refused it;
    ``target_opinions``: the same for ``targets`` (``target_texts``). A mention waits if
    the queue took its text or one of its brands'; one that does not wait keeps the
    lexicon's verdicts (the fallback where refused), after the lexicon's mentions."""
    taken: dict[int, list[tuple[str, F]]] = {}
    for (r, brand, _), opinion in zip(targets, target_opinions, strict=True):
        if opinion is not None:
            taken.setdefault(r.position, []).append((brand, opinion))
    now: list[LexiconResult] = []
    refused: list[LexiconResult] = []
    waiting: list[Asked[F]] = []
    for r in routed.lexicon:
        if r.position in taken:
            waiting.append(Asked(r, None, False, tuple(taken[r.position])))
        else:
            now.append(r)
    for r, opinion in zip(routed.transformer, opinions, strict=True):
        brands = tuple(taken.get(r.position, ()))
        if opinion is None and not brands:
            refused.append(r)
        else:
            waiting.append(Asked(r, opinion, opinion is None, brands))
    return without_transformer(Routed(routed.chunk, now, ()), refused), waiting


def without_transformer(routed: Routed, refused: Sequence[LexiconResult]) -> ScoredChunk:
    """What goes on without waiting for the transformer: the lexicon's mentions, then
    those its queue ``refused``, with fallback verdicts."""
    if not refused:
        return ScoredChunk(routed.chunk, routed.lexicon)
    better: list[Sentiment | None] = [None] * len(routed.lexicon)
    better += (fallback_verdict(r) for r in refused)
    return ScoredChunk(routed.chunk, [*routed.lexicon, *refused], better)


class BatchTransformer(Forward[ScoredChunk | Awaitable[ScoredChunk]]):
    def __init__(
        self,
        batcher: TransformerBatcher | None,
        metrics: Metrics,
        next_step: NextStep[ScoredChunk | Awaitable[ScoredChunk]],
    ) -> None:
        super().__init__(next_step)
        self._batcher = batcher
        self._metrics = metrics

    async def submit(self, routed: Routed) -> None:
        targets = target_texts(routed) if self._batcher is not None else []
        if not routed.transformer and not targets:
            await self.next_step.submit(ScoredChunk(routed.chunk, routed.lexicon))
            return
        assert self._batcher is not None  # a router is given only with a batcher
        self._batcher.start()
        texts = [r.text for r in routed.transformer]
        # Waits here for room in the queue under the backpressure policy.
        futures = await self._batcher.submit([*texts, *(text for _, _, text in targets)])
        opinions, target_opinions = futures[: len(texts)], futures[len(texts) :]
        now, waiting = split_asked(routed, opinions, targets, target_opinions)
        m = self._metrics
        if refused := sum(f is None for f in opinions):
            m.transformer_fallbacks.inc(refused)
        if refused := sum(f is None for f in target_opinions):
            m.targeted_fallbacks.inc(refused)
        await self.next_step.submit(now)
        if waiting:
            await self.next_step.submit(self._second_opinions(routed.chunk, waiting))

    async def _second_opinions(
        self, chunk: Chunk, waiting: Sequence[Asked[asyncio.Future[Sentiment]]]
    ) -> ScoredChunk:
        t0 = time.perf_counter()
        better: list[Sentiment | None] = []
        targeted: list[dict[str, BrandSentiment] | None] = []
        texts = 0
        for asked in waiting:
            r = asked.result
            if asked.opinion is not None:
                better.append(await asked.opinion)
                texts += 1
            else:
                better.append(fallback_verdict(r) if asked.refused else None)
            targeted.append(
                {
                    brand: BrandSentiment.of(await opinion, targeted=True)
                    for brand, opinion in asked.brands
                }
                or None
            )
            texts += len(asked.brands)
        each = (time.perf_counter() - t0) / max(texts, 1)
        latency = self._metrics.scoring_latency.labels("transformer")
        for _ in range(texts):
            latency.observe(each)
        return ScoredChunk(chunk, [a.result for a in waiting], better, targeted)
