"""What the scorer's bounds buy against hostile input, in one run.

Run: ``make bench`` (or ``.venv/bin/python -m tests.bench.bench_hostile``).

VADER's cost grows with (words carrying sentiment) x (all words): some of its rules
rebuild the word list for each sentiment word, its "but" rule looks values up in a loop,
and each emoji becomes the words of its description. The scorer caps a text's length
(``max_score_chars``) and scores it in windows of at most ``WINDOW_WORDS`` words, with
walls of emoji trimmed (``services/scorer/lexicon.py``). The baseline is a typical tweet
scored the same way; each figure is the time of one scoring of one text.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.scorer.lexicon import VaderScorer
from services.scorer.mask import cap_text
from tests.bench.shared_data import tweeteval_test_texts

MAX_CHARS = 2_000  # ScorerSettings.max_score_chars default

SHAPES = {
    "'good but bad but …'": "good but bad but " * 700,
    "2,000 emoji, one kind": "😀" * 2000,
    "2,000 emoji, alternating": "😀😃" * 1000,
    "emoji and spaces": "😀 😃 " * 1000,
    "emoji among words": "love 😍 hate 😡 " * 700,
    "one word repeated": "good " * 2000,
    "capitals": "GREAT " * 2000,
    "repeated '!'": "great" + "!" * 9990,
    "negations": "not " * 2400 + "good",
    "one 10,000-char word": "a" * 10_000,
}


def per_call(score: Callable[[str], object], text: str, budget_s: float = 0.5) -> float:
    n, t0 = 0, time.perf_counter()
    while True:
        score(text)
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed > budget_s or n >= 200:
            return elapsed / n


def main() -> None:
    vader = SentimentIntensityAnalyzer()
    bounded = VaderScorer()
    tweets = tweeteval_test_texts()[:2000]
    t0 = time.perf_counter()
    for t in tweets:
        bounded.compound(t)
    typical = (time.perf_counter() - t0) / len(tweets)
    print("hostile input benchmark: one text of each shape, 10,000 characters before the cap")
    print(f"  typical tweet (baseline)             {typical * 1e3:9.3f} ms        1x")
    print(f"  {'shape':34s} {'VADER, capped':>15s} {'Sentimon':>12s} {'ratio':>8s}")
    worst = 0.0
    for name, text in SHAPES.items():
        capped = cap_text(text[:10_000], MAX_CHARS)
        raw = per_call(lambda t: vader.polarity_scores(t), capped, 2.0)
        ours = per_call(bounded.compound, capped)
        worst = max(worst, ours)
        print(f"  {name:34s} {raw * 1e3:12.2f} ms {ours * 1e3:9.2f} ms {ours / typical:7.0f}x")
    print(
        f"  worst case per mention: {worst * 1e3:.2f} ms = {worst / typical:.0f}x a typical tweet"
    )


if __name__ == "__main__":
    main()
