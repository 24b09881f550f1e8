"""Scored chunks for the steps' tests, made by the lexicon's pure core."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from services.core.brands import BrandDefinition, BrandMatcher
from services.core.models import Mention
from services.scorer.lexicon import VaderScorer
from services.scorer.steps.lexicon import Chunk, ScoredChunk, ScoringConfig, score_chunk
from tests.fixtures.mentions import mention_doc

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MATCHER = BrandMatcher.compile([BrandDefinition("Acme", "acme")])
POLICY = ScoringConfig().sampling_policy


def pairs(texts: list[str]) -> list[tuple[Mention, bytes]]:
    raws = [orjson.dumps(mention_doc(id=f"s{i}", text=t)) for i, t in enumerate(texts)]
    return [(Mention.model_validate_json(raw), raw) for raw in raws]


def scored_chunk(texts: list[str]) -> ScoredChunk:
    chunk = Chunk.of(pairs(texts), NOW)
    result = score_chunk(
        chunk.items,
        matcher=MATCHER,
        compound=VaderScorer().compound,
        config=ScoringConfig(),
        now=NOW,
        keep_texts=True,
    )
    return ScoredChunk(chunk, result.results)
