"""VADER, the fast lexicon scorer that sees every mention."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Literal

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.core.models import Sentiment, SentimentLabel

# VADER's authors' thresholds for the compound score (Hutto & Gilbert, 2014).
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05


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
    )


class VaderScorer:
    method: Literal["lexicon"] = "lexicon"

    def __init__(self) -> None:
        self._analyzer = SentimentIntensityAnalyzer()

    def compound(self, text: str) -> float:
        return float(self._analyzer.polarity_scores(text)["compound"])

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        return [lexicon_sentiment(self.compound(t)) for t in texts]


# --- out of process -------------------------------------------------------------------
# VADER is pure Python and holds the GIL; to use a second core the scorer runs it in
# worker processes while the event loop parses, matches and writes.

_worker_scorer: VaderScorer | None = None


def _init_worker() -> None:
    global _worker_scorer
    _worker_scorer = VaderScorer()


def timed_compounds(texts: Sequence[str]) -> tuple[list[float], list[float]]:
    """VADER compounds of ``texts`` and the seconds each took (runs in a worker)."""
    scorer = _worker_scorer or VaderScorer()
    compounds: list[float] = []
    seconds: list[float] = []
    clock = time.perf_counter
    for t in texts:
        t0 = clock()
        compounds.append(scorer.compound(t))
        seconds.append(clock() - t0)
    return compounds, seconds


class LexiconRunner:
    """Scores texts with VADER in ``processes`` worker processes, or inline with 0."""

    def __init__(self, processes: int) -> None:
        self._pool: ProcessPoolExecutor | None = None
        if processes > 0:
            self._pool = ProcessPoolExecutor(
                max_workers=processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
            )

    async def score(self, texts: Sequence[str]) -> tuple[list[Sentiment], list[float]]:
        """Verdicts and per-text seconds; raises what the worker raised."""
        if not texts:
            return [], []
        if self._pool is None:
            compounds, seconds = timed_compounds(texts)
        else:
            loop = asyncio.get_running_loop()
            compounds, seconds = await loop.run_in_executor(
                self._pool, timed_compounds, list(texts)
            )
        return [lexicon_sentiment(c) for c in compounds], seconds

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
