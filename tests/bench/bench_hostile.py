"""What the scorer's length cap buys against hostile input, in one run.

Run: ``make bench`` (or ``.venv/bin/python -m tests.bench.bench_hostile``).

VADER's cost grows faster than the text in some rules (its "but" handling looks words up
by value in a loop), so a 10,000-character text built for it takes far longer than ten
tweets. The baseline is a typical tweet; the figures are the time of one scoring each.
"""

from __future__ import annotations

import time

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.scorer.mask import cap_text
from tests.bench.shared_data import tweeteval_test_texts

MAX_CHARS = 2_000  # ScorerSettings.max_score_chars default


def per_call(analyzer: SentimentIntensityAnalyzer, text: str, repeat: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        analyzer.polarity_scores(text)
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    analyzer = SentimentIntensityAnalyzer()
    tweets = tweeteval_test_texts()[:2000]
    t0 = time.perf_counter()
    for t in tweets:
        analyzer.polarity_scores(t)
    tweet = (time.perf_counter() - t0) / len(tweets)
    hostile = ("good but bad but " * 700)[:10_000]
    uncapped = per_call(analyzer, hostile, 5)
    capped = per_call(analyzer, cap_text(hostile, MAX_CHARS), 20)
    print("hostile input benchmark: one 10,000-character text of 'good but bad but …'")
    print(f"  typical tweet (baseline)      {tweet * 1e3:8.3f} ms   1x")
    print(f"  hostile text, uncapped        {uncapped * 1e3:8.3f} ms   {uncapped / tweet:,.0f}x")
    print(f"  hostile text, capped to {MAX_CHARS}  {capped * 1e3:8.3f} ms   {capped / tweet:,.0f}x")


if __name__ == "__main__":
    main()
