"""VADER, the fast lexicon scorer that sees every mention."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
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


# VADER's cost grows with (words carrying sentiment) x (all words): several of its rules
# rebuild the lower-cased word list for each sentiment word, and each emoji becomes the
# words of its description. A text is therefore scored in windows of at most this many
# words (emoji counted as their descriptions), so a mention's cost grows linearly with
# its length. Every text under it — nearly every tweet — gets VADER's own score exactly.
WINDOW_WORDS = 64
# Emoji beyond these are not scored: a run of one emoji counts at most ten times, and a
# text at most this many in all (a wall of emoji is spam, not more sentiment).
MAX_EMOJI_RUN = 10
MAX_EMOJI = 40
# VADER's normalisation constant: compound = sum / sqrt(sum^2 + ALPHA).
ALPHA = 15.0


def lexicon_windows(text: str, emoji_words: Mapping[str, int]) -> list[str]:
    """Split ``text`` into pieces of at most ``WINDOW_WORDS`` words for VADER, and drop the
    emoji past ``MAX_EMOJI_RUN`` in a run or ``MAX_EMOJI`` in all. ``emoji_words``: the
    words of each emoji's description. Pure; ``[text]`` when the text needs no split."""
    out: list[str] = []
    piece: list[str] = []
    weight = emoji_seen = run = 0
    previous = ""
    needs_work = False
    for token in text.split():
        kept: list[str] = []
        token_weight = 0
        for ch in token:
            words = emoji_words.get(ch)
            if words is None:
                kept.append(ch)
                previous = ""
                continue
            run = run + 1 if ch == previous else 1
            previous = ch
            if run > MAX_EMOJI_RUN or emoji_seen >= MAX_EMOJI:
                needs_work = True
                continue
            emoji_seen += 1
            if token_weight + words > WINDOW_WORDS:  # a token that is a wall of emoji
                piece.append("".join(kept))
                out.append(" ".join(piece))
                piece, kept, weight, token_weight = [], [], 0, 0
                needs_work = True
            kept.append(ch)
            token_weight += words
        token_weight = max(token_weight, 1)
        if piece and weight + token_weight > WINDOW_WORDS:
            out.append(" ".join(piece))
            piece, weight = [], 0
            needs_work = True
        if kept:
            piece.append("".join(kept))
            weight += token_weight
    if piece:
        out.append(" ".join(piece))
    return [text] if not needs_work else [w for w in out if w.strip()] or [""]


def _valence_sum(compound: float) -> float:
    """The valence sum VADER normalised into ``compound`` (inverse of its normalisation)."""
    c = max(-0.9999, min(0.9999, compound))
    return c * math.sqrt(ALPHA / (1.0 - c * c))


class VaderScorer:
    """VADER's compound score of a text, its worst case bounded (``lexicon_windows``): a
    text split in windows is scored as the sum of its windows' valences, normalised as
    VADER normalises one text's."""

    method: Literal["lexicon"] = "lexicon"

    def __init__(self) -> None:
        self._analyzer = SentimentIntensityAnalyzer()
        self._emoji_words = {e: len(d.split()) for e, d in self._analyzer.emojis.items()}

    def compound(self, text: str) -> float:
        windows = lexicon_windows(text, self._emoji_words)
        if len(windows) == 1:
            return float(self._analyzer.polarity_scores(windows[0])["compound"])
        total = sum(_valence_sum(self._analyzer.polarity_scores(w)["compound"]) for w in windows)
        return round(total / math.sqrt(total * total + ALPHA), 4)

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        return [lexicon_sentiment(self.compound(t)) for t in texts]
