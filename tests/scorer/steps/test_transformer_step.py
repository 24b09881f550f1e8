"""Transformer batch: what its queue had no room for goes on at once, marked fallback."""

from __future__ import annotations

from services.scorer.lexicon import lexicon_sentiment
from services.scorer.steps.route import Routed
from services.scorer.steps.transformer import fallback_verdict, without_transformer
from tests.scorer.steps.chunks import scored_chunk


def test_refused_mentions_follow_the_lexicon_ones_with_fallback_verdicts() -> None:
    scored = scored_chunk(["Acme is wonderful", "Acme v2", "Acme v3"])
    first, second, third = scored.results
    now = without_transformer(Routed(scored.chunk, [first], [second, third]), [third])
    assert list(now.results) == [first, third]
    assert list(now.better) == [None, fallback_verdict(third)]
    verdict = fallback_verdict(third)
    assert verdict.fallback and verdict.method == "lexicon"
    assert verdict.label == lexicon_sentiment(third.compound).label


def test_with_nothing_refused_the_lexicon_verdicts_stand() -> None:
    scored = scored_chunk(["Acme is wonderful", "Acme v2"])
    now = without_transformer(Routed(scored.chunk, scored.results, ()), [])
    assert list(now.results) == list(scored.results)
    assert not now.better
