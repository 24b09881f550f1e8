"""Transformer batch: the routed mentions queue for the transformer's batches
(``TransformerBatcher``: backpressure or lexicon fallback when its queue is full).

Two chunks go on for each one that comes in: at once, the lexicon's mentions with those
the queue had no room for (fallback verdicts), so they never wait for a transformer
batch; and, as an awaitable done when their batch is, the mentions it took.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence

from services.core.metrics import Metrics
from services.core.models import Sentiment
from services.scorer.lexicon import lexicon_sentiment
from services.scorer.steps.abstract import Forward, NextStep
from services.scorer.steps.lexicon import Chunk, LexiconResult, ScoredChunk
from services.scorer.steps.route import Routed
from services.scorer.transformer_batching import TransformerBatcher


def fallback_verdict(result: LexiconResult) -> Sentiment:
    """The lexicon's verdict, marked: for a mention the transformer had no room for."""
    return lexicon_sentiment(result.compound).model_copy(update={"fallback": True})


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
        taken: list[tuple[LexiconResult, asyncio.Future[Sentiment]]] = []
        refused: list[LexiconResult] = []
        if routed.transformer:
            assert self._batcher is not None  # a router is given only with a batcher
            self._batcher.start()
            # Waits here for room in the queue under the backpressure policy.
            futures = await self._batcher.submit([r.text for r in routed.transformer])
            for r, f in zip(routed.transformer, futures, strict=True):
                if f is None:
                    refused.append(r)
                else:
                    taken.append((r, f))
            if refused:
                self._metrics.transformer_fallbacks.inc(len(refused))
        await self.next_step.submit(without_transformer(routed, refused))
        if taken:
            await self.next_step.submit(self._second_opinions(routed.chunk, taken))

    async def _second_opinions(
        self, chunk: Chunk, taken: Sequence[tuple[LexiconResult, asyncio.Future[Sentiment]]]
    ) -> ScoredChunk:
        t0 = time.perf_counter()
        better = [await future for _, future in taken]
        each = (time.perf_counter() - t0) / len(taken)
        latency = self._metrics.scoring_latency.labels("transformer")
        for _ in taken:
            latency.observe(each)
        return ScoredChunk(chunk, [r for r, _ in taken], better)
