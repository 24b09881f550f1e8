"""The scorer's whole path in this process, synchronously (tests, offline use).

``score_mentions`` runs the pure cores of the pipeline's steps (``services/scorer/steps/``)
in their order — ``score_chunk`` (match & lexicon), ``route``, the transformer's
``score_batch``, ``scored_records`` (write) — where the pipeline runs the chunk in a
worker and the transformer in batches, in a thread.

The names other modules prepare texts and build documents with, as the scorer does, are
also here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from services.core.brands import BrandMatcher
from services.core.models import Mention, Sentiment
from services.core.storage.writer import ScoredRecord
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
from services.scorer.steps.write import scored_records

__all__ = ["ScoringConfig", "prepare_text", "score_mentions", "scored_document"]


def score_mentions(
    items: Sequence[tuple[Mention, bytes]],
    *,
    matcher: BrandMatcher,
    compound: Callable[[str], float],
    router: Router,
    transformer: Scorer | None,
    config: ScoringConfig,
    now: datetime,
) -> tuple[ChunkResult, list[ScoredRecord]]:
    """Score ``items`` (each mention with its ``mention.v1`` JSON) as one chunk; the
    records come in the mentions' order."""
    chunk = Chunk.of(items, now)
    result = score_chunk(
        chunk.items,
        matcher=matcher,
        compound=compound,
        config=config,
        now=now,
        keep_texts=transformer is not None,
    )
    routed = route(ScoredChunk(chunk, result.results), router if transformer is not None else None)
    second: dict[int, Sentiment] = {}
    if transformer is not None and routed.transformer:
        verdicts = transformer.score_batch([r.text for r in routed.transformer])
        second = {r.position: v for r, v in zip(routed.transformer, verdicts, strict=True)}
    better = [second.get(r.position) for r in result.results]
    scored = ScoredChunk(chunk, result.results, better)
    return result, scored_records(scored, sampling=config.sampling_policy)
