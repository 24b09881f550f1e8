"""The scorer's pure steps: matching, masking, capping, sampling, routing, documents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

import orjson
import pytest

from services.core.brands import BrandDefinition, BrandMatcher
from services.core.models import Mention, ScoredMention, Sentiment
from services.scorer.lexicon import VaderScorer, label_for, lexicon_sentiment
from services.scorer.mask import cap_text, mask_spans
from services.scorer.process import ScoringConfig, score_mentions, scored_document
from services.scorer.protocol import LexiconOnlyRouter, Route
from services.scorer.sampling import is_spot_check, sample_fraction
from tests.fixtures.mentions import mention_doc

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MATCHER = BrandMatcher.compile(
    [BrandDefinition("United", '@united OR "united airlines"'), BrandDefinition("Acme", "acme")]
)


def item(text: str, i: int = 0) -> tuple[Mention, bytes]:
    raw = orjson.dumps(mention_doc(id=f"s{i}", text=text))
    return Mention.model_validate_json(raw), raw


class RecordingScorer:
    """A scorer that remembers what it was given."""

    def __init__(self, method: Literal["lexicon", "transformer"], score: float) -> None:
        self._method: Literal["lexicon", "transformer"] = method
        self.seen: list[str] = []
        self._score = score

    @property
    def method(self) -> Literal["lexicon", "transformer"]:
        return self._method

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        self.seen += texts
        return [
            Sentiment(
                label=label_for(self._score),
                score=self._score,
                confidence=0.9,
                method=self._method,
                lexicon_compound=self._score,
            )
            for _ in texts
        ]


def run(texts: list[str], **kw: object) -> list[ScoredMention]:
    _, records = score_mentions(
        [item(t, i) for i, t in enumerate(texts)],
        matcher=MATCHER,
        compound=kw.pop("compound", VaderScorer().compound),  # type: ignore[arg-type]
        router=kw.pop("router", LexiconOnlyRouter()),  # type: ignore[arg-type]
        transformer=kw.pop("transformer", None),  # type: ignore[arg-type]
        config=kw.pop("config", ScoringConfig()),  # type: ignore[arg-type]
        now=NOW,
    )
    return [ScoredMention.model_validate_json(r.doc) for r in records]


def test_brand_handles_are_masked_before_scoring() -> None:
    # VADER reads "@united" as the word "united" (+1.8): a plain fact stated about the
    # brand would come out positive, biasing the brand upwards.
    text = "Flying @united to Denver tomorrow"
    assert VaderScorer().compound(text) > 0.05
    (scored,) = run([text])
    assert scored.brands == ["United"]
    assert scored.sentiment.label == "neutral"
    assert scored.sentiment.lexicon_compound == 0.0
    # Real opinion about the brand still counts.
    (angry,) = run(["@united lost my bag again, terrible service"])
    assert angry.sentiment.label == "negative"


def test_mask_spans_replaces_exactly_the_spans() -> None:
    assert mask_spans("I love @united!", [(7, 14)]) == "I love brand!"
    assert mask_spans("abc", []) == "abc"
    assert mask_spans("a@x b@y", [(1, 3), (5, 7)]) == "abrand bbrand"


def test_hostile_long_text_is_capped_before_the_scorer() -> None:
    seen: list[str] = []

    def compound(text: str) -> float:
        seen.append(text)
        return 0.0

    hostile = "acme " + "but not " * 1249
    assert len(hostile) > 9_000
    run([hostile], compound=compound, config=ScoringConfig(max_chars=2_000))
    assert len(seen) == 1
    assert len(seen[0]) <= 2_000
    assert seen[0].startswith("brand but not")


def test_cap_text_cuts_at_a_word_boundary() -> None:
    assert cap_text("short", 10) == "short"
    cut = cap_text("word " * 100, 52)
    assert len(cut) <= 52 and cut.endswith("word")
    assert cap_text("x" * 100, 10) == "x" * 10


def test_unmatched_mentions_are_dropped_unless_kept() -> None:
    assert run(["nothing about brands here"]) == []
    (kept,) = run(["nothing about brands here"], config=ScoringConfig(keep_unmatched=True))
    assert kept.brands == []


def test_spot_check_sample_is_deterministic_and_near_its_rate() -> None:
    keys = [("x", str(i)) for i in range(20_000)]
    picked = [k for k in keys if is_spot_check(*k, rate=0.02)]
    assert 0.015 < len(picked) / len(keys) < 0.025
    assert picked == [k for k in keys if is_spot_check(*k, rate=0.02)]
    assert not any(is_spot_check(*k, rate=0.0) for k in keys[:100])
    assert all(is_spot_check(*k, rate=1.0) for k in keys[:100])
    assert 0 <= sample_fraction("x", "1") < 1


def test_the_routing_seam_sends_ambiguous_mentions_to_the_transformer() -> None:
    class RouteNeutral:
        def route(self, text: str, lexicon: Sentiment) -> Route:
            return "transformer" if lexicon.label == "neutral" else "lexicon"

    transformer = RecordingScorer("transformer", -0.8)
    texts = ["Acme shipped version 2", "Acme is wonderful, I love it"]
    neutral, positive = run(texts, router=RouteNeutral(), transformer=transformer)
    assert transformer.seen == ["brand shipped version 2"]
    assert neutral.sentiment.method == "transformer"
    assert neutral.sentiment.label == "negative"
    assert neutral.sentiment.lexicon_compound == 0.0  # the lexicon's verdict is kept
    assert positive.sentiment.method == "lexicon"


def test_scored_document_keeps_the_raw_mention_and_adds_scoring() -> None:
    raw = orjson.dumps(mention_doc(id="d1", text="Acme rocks"))
    s = lexicon_sentiment(0.5)
    doc = scored_document(raw + b"\n", ["Acme"], s, True, NOW, "en")
    scored = ScoredMention.model_validate_json(doc)
    added = {"brands", "sentiment", "sentiment_by_brand", "spot_check", "scored_at", "language"}
    assert scored.model_dump(exclude=added) == Mention.model_validate_json(raw).model_dump()
    assert (
        scored.brands,
        scored.sentiment,
        scored.spot_check,
        scored.scored_at,
        scored.language,
    ) == (["Acme"], s, True, NOW, "en")
    with pytest.raises(ValueError, match="JSON object"):
        scored_document(b"[1]", [], s, False, NOW)


@pytest.mark.parametrize(
    ("compound", "label"),
    [
        (0.05, "positive"),
        (0.0499, "neutral"),
        (-0.05, "negative"),
        (-0.0499, "neutral"),
        (1.0, "positive"),
        (-1.0, "negative"),
    ],
)
def test_vader_thresholds(compound: float, label: str) -> None:
    s = lexicon_sentiment(compound)
    assert s.label == label
    assert 0.0 <= s.confidence <= 1.0
