"""VADER, the fast lexicon scorer that sees every mention."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib.metadata import version
from typing import Literal

from services.core.models import Sentiment, SentimentLabel
from services.scorer.vader import FastVader

# VADER's authors' thresholds for the compound score (Hutto & Gilbert, 2014).
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05

# What every lexicon verdict records as its model version. Still vaderSentiment's: the
# scores come from ``FastVader``, which gives vaderSentiment's scores to the last digit
# with the lexicon files of this installed version (proven against it in the tests), so
# a mention scored before and after the switch means the same thing.
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


# The verdict of a mention in a language the scorer cannot read: it counts in volume and
# in no sentiment figure.
UNSCORED = Sentiment.model_construct(
    label="unscored",
    score=0.0,
    confidence=0.0,
    method="none",
    lexicon_compound=0.0,
    model_version=None,
    fallback=False,
)


# The lexicon (``services/scorer/vader.py``) gives vaderSentiment's own scores in time
# linear in a text's length, and the text is capped at ``max_score_chars``; long texts are
# no longer cut in windows. What that does not bound is emoji: each becomes the words of
# its description (up to six), so a wall of 2,000 emoji is ~4,000 words. Emoji past the
# first ``MAX_EMOJI`` of a text are therefore dropped before scoring — the one place the
# scorer's score is not vaderSentiment's (a wall of emoji is spam, not more sentiment).
# No text of the shared data sets has more than 14 (tests/scorer/test_vader_exact.py).
# (The former limit on a run of one emoji bounded no cost this one does not, so it went.)
MAX_EMOJI = 40


@functools.cache
def _lead_bytes(emoji: frozenset[str]) -> tuple[bytes, ...]:
    """The first bytes of the emoji's UTF-8 forms."""
    return tuple(sorted({e.encode("utf-8", "surrogatepass")[:1] for e in emoji}))


@functools.cache
def _deletion_table(emoji: frozenset[str]) -> dict[int, None]:
    return dict.fromkeys(map(ord, emoji))


def trim_emoji(text: str, emoji: frozenset[str]) -> str:
    """``text`` without the emoji (members of ``emoji``) past its first ``MAX_EMOJI``.
    Pure; ``text`` itself when nothing is dropped."""
    if text.isascii():
        return text
    # A bound on the number of emoji from C-level byte counts: each emoji starts with one
    # of a few lead bytes in UTF-8 (letters with accents, CJK and the rest mostly do not).
    encoded = text.encode("utf-8", "surrogatepass")
    if sum(encoded.count(lead) for lead in _lead_bytes(emoji)) <= MAX_EMOJI:
        return text
    kept, cut = 0, -1
    seen: set[str] = set()
    for i, ch in enumerate(text):
        if ch in emoji:
            kept += 1
            if kept > MAX_EMOJI:
                cut = i
                break
            seen.add(ch)
    if cut < 0:
        return text
    # Past the cut, every emoji goes: the kinds seen before it a pass each when they are
    # few (a wall repeats a few kinds), then, if emoji may remain, one pass for all.
    tail = text[cut:]
    if len(seen) <= 8:
        for e in seen:
            tail = tail.replace(e, "")
        leads = _lead_bytes(emoji)
        encoded = tail.encode("utf-8", "surrogatepass")
        if not any(lead in encoded for lead in leads):
            return text[:cut] + tail
    return text[:cut] + tail.translate(_deletion_table(emoji))


class VaderScorer:
    """VADER's compound score of a text: vaderSentiment's own (``FastVader``, exact and
    linear), emoji past the first ``MAX_EMOJI`` dropped first (``trim_emoji``)."""

    method: Literal["lexicon"] = "lexicon"

    def __init__(self) -> None:
        self._vader = FastVader()
        self._emoji = self._vader.emoji_chars

    def compound(self, text: str) -> float:
        return self._vader.compound(trim_emoji(text, self._emoji))

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        return [lexicon_sentiment(self.compound(t)) for t in texts]
