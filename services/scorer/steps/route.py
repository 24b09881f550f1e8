"""Route: the router picks the ambiguous mentions of a chunk for the transformer's second
opinion; the others keep the lexicon's verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.core.metrics import Metrics
from services.scorer.lexicon import lexicon_sentiment
from services.scorer.protocol import Router
from services.scorer.steps.abstract import Forward, NextStep
from services.scorer.steps.lexicon import Chunk, LexiconResult, ScoredChunk


@dataclass(frozen=True, slots=True)
class Routed:
    chunk: Chunk
    lexicon: Sequence[LexiconResult]  # they keep the lexicon's verdict
    transformer: Sequence[LexiconResult]  # for the transformer's second opinion


def to_route(results: Sequence[LexiconResult], router: Router) -> list[int]:
    """Positions (in ``results``) of the mentions the router sends to the transformer;
    never an unscored one (the transformer reads English only)."""
    return [
        i
        for i, r in enumerate(results)
        if r.scorable and router.route(r.text, lexicon_sentiment(r.compound)) != "lexicon"
    ]


def route(scored: ScoredChunk, router: Router | None) -> Routed:
    """Split a chunk's results by the router's choice, each part in order; with no router
    (no transformer), every mention keeps the lexicon's verdict."""
    results = scored.results
    chosen = [] if router is None else to_route(results, router)
    if not chosen:
        return Routed(scored.chunk, results, ())
    picked = set(chosen)
    kept = [r for i, r in enumerate(results) if i not in picked]
    return Routed(scored.chunk, kept, [results[i] for i in chosen])


class RouteAmbiguous(Forward[Routed]):
    def __init__(
        self, router: Router | None, metrics: Metrics, next_step: NextStep[Routed]
    ) -> None:
        super().__init__(next_step)
        self._router = router
        self._metrics = metrics

    async def submit(self, scored: ScoredChunk) -> None:
        routed = route(scored, self._router)
        if routed.transformer:
            self._metrics.routed_to_transformer.inc(len(routed.transformer))
        await self.next_step.submit(routed)
