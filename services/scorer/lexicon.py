"""VADER, the fast lexicon scorer that sees every mention."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib.metadata import version
from typing import Literal

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.core.models import Sentiment, SentimentLabel

# VADER's authors' thresholds for the compound score (Hutto & Gilbert, 2014).
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05

# What every lexicon verdict records as its model version.
LEXICON_VERSION = f"vaderSentiment-{version('vaderSentiment')}"


def label_for(compound: float) -> SentimentLabel:
    if compound >= POSITIVE_THRESHOLD:
        return "positive"
    if compound <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


@functools.lru_cache(maxsize=8_192)
def lexicon_sentiment(compound: float) -> Sentiment:
    """Turn a compound score into a verdict.

    ``confidence`` is the distance from the nearest decision threshold, scaled to
    [0, 1]: a heuristic, not a calibrated probability (spot checks measure the real
    accuracy). Cached: VADER's compound has four decimals, so values repeat a lot, and
    the verdict is immutable.
    """
    label = label_for(compound)
    if label == "neutral":
        confidence = 1.0 - abs(compound) / POSITIVE_THRESHOLD
    else:
        confidence = min(1.0, (abs(compound) - POSITIVE_THRESHOLD) / (1.0 - POSITIVE_THRESHOLD))
    # Values are in range by construction; skipping validation keeps the hot path cheap.
    return Sentiment.model_construct(
        label=label,
        score=compound,
        confidence=round(max(0.0, confidence), 4),
        method="lexicon",
        lexicon_compound=compound,
        model_version=LEXICON_VERSION,
        fallback=False,
    )


class VaderScorer:
    method: Literal["lexicon"] = "lexicon"

    def __init__(self) -> None:
        self._analyzer = SentimentIntensityAnalyzer()

    def compound(self, text: str) -> float:
        return float(self._analyzer.polarity_scores(text)["compound"])

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        return [lexicon_sentiment(self.compound(t)) for t in texts]
