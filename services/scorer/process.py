"""The scorer's whole path in this process, synchronously (tests, offline use).

``score_mentions`` runs the pure cores of the pipeline's steps (``services/scorer/steps/``)
in their order — ``score_chunk`` (match & lexicon), ``route``, the transformer's
``score_batch`` (these three: ``score_and_route``), ``scored_records`` (write) — where the
pipeline runs the chunk in a worker and the transformer in batches, in a thread.
``sentimon score`` (``services/scorer/offline.py``) runs ``score_and_route`` too.

The names other modules prepare texts and build documents with, as the scorer does, are
also here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from services.core.brands import BrandMatcher
from services.core.models import BrandSentiment, Mention, Sentiment
from services.core.storage.writer import ScoredRecord
from services.scorer.language import LanguageDetector
from services.scorer.protocol import Router, Scorer
from services.scorer.steps.lexicon import (
    Chunk,
    ChunkResult,
    ScoredChunk,
    ScoringConfig,
    prepare_text,
    score_chunk,
    scored_document,
)
from services.scorer.steps.route import route
from services.scorer.steps.transformer import target_texts
from services.scorer.steps.write import scored_records

__all__ = [
    "ScoringConfig",
    "prepare_text",
    "score_and_route",
    "score_mentions",
    "scored_document",
]


def score_mentions(
    items: Sequence[tuple[Mention, bytes]],
    *,
    matcher: BrandMatcher,
    compound: Callable[[str], float],
    router: Router,
    transformer: Scorer | None,
    config: ScoringConfig,
    now: datetime,
    detector: LanguageDetector | None = None,
) -> tuple[ChunkResult, list[ScoredRecord]]:
    """Score ``items`` (each mention with its ``mention.v1`` JSON) as one chunk; the
    records come in the mentions' order."""
    result, scored = score_and_route(
        Chunk.of(items, now),
        matcher=matcher,
        compound=compound,
        router=router,
        transformer=transformer,
        config=config,
        detector=detector,
    )
    return result, scored_records(scored, sampling=config.sampling_policy)


def score_and_route(
    chunk: Chunk,
    *,
    matcher: BrandMatcher,
    compound: Callable[[str], float],
    router: Router,
    transformer: Scorer | None,
    config: ScoringConfig,
    detector: LanguageDetector | None = None,
) -> tuple[ChunkResult, ScoredChunk]:
    """Match & lexicon, route and the transformer's second opinions for one chunk: the
    lexicon's results, and the chunk scored with the transformer's verdicts in ``better``
    (``final_verdict`` of each result and its ``better`` is the mention's verdict) and its
    verdicts toward the brands of every mention scored per brand in ``targeted``
    (``final_by_brand``). With no ``transformer`` nothing is routed, and the brands keep
    the clause-scoped lexicon's verdicts. Raises only what ``transformer`` raises."""
    result = score_chunk(
        chunk.items,
        matcher=matcher,
        compound=compound,
        config=config,
        now=chunk.now,
        keep_texts=transformer is not None,
        detector=detector,
    )
    routed = route(ScoredChunk(chunk, result.results), router if transformer is not None else None)
    second: dict[int, Sentiment] = {}
    toward: dict[int, dict[str, BrandSentiment]] = {}
    targets = target_texts(routed) if transformer is not None else []
    if transformer is not None and (routed.transformer or targets):
        texts = [r.text for r in routed.transformer]
        # One batch, as the pipeline's batcher would mix them.
        verdicts = transformer.score_batch([*texts, *(text for _, _, text in targets)])
        mine = zip(routed.transformer, verdicts[: len(texts)], strict=True)
        second = {r.position: v for r, v in mine}
        for (r, brand, _), v in zip(targets, verdicts[len(texts) :], strict=True):
            toward.setdefault(r.position, {})[brand] = BrandSentiment.of(v, targeted=True)
    better = [second.get(r.position) for r in result.results]
    targeted = [toward.get(r.position) for r in result.results]
    return result, ScoredChunk(chunk, result.results, better, targeted)
