"""The lexicon against vaderSentiment, on the same texts, in one run (issue 18).

Run: ``make bench`` (or ``.venv/bin/python -m tests.bench.bench_lexicon [--pipeline]``).

Times ``SentimentIntensityAnalyzer().polarity_scores`` (the reference), ``FastVader``'s
``polarity_scores`` and ``compound``, and the scorer's ``VaderScorer.compound`` (what the
pipeline calls) over TweetEval's test tweets, in alternating rounds; each figure is the
median round's CPU time per tweet, so that other work on the machine weighs less. It
checks on the way that every score is the reference's.

``--pipeline`` adds the embedded pipeline of ``bench_pipeline`` (lexicon in one worker
process) on the same 24,000 mentions, as a ratio to raw vaderSentiment and to the raw
new lexicon measured in this run (issue 18's goal: >= 0.85x of the lexicon alone).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.scorer.lexicon import VaderScorer
from services.scorer.vader import FastVader
from tests.bench.shared_data import tweeteval_test_texts

ROUNDS = 5


def cpu_per_text(score: Callable[[str], object], texts: list[str]) -> float:
    t0 = time.process_time()
    for t in texts:
        score(t)
    return (time.process_time() - t0) / len(texts)


def compare(texts: list[str]) -> dict[str, float]:
    """Median CPU seconds per text of each scorer, rounds alternating."""
    ref = SentimentIntensityAnalyzer()
    fast = FastVader()
    scorer = VaderScorer()
    differ = sum(ref.polarity_scores(t) != fast.polarity_scores(t) for t in texts)
    if differ:
        raise SystemExit(f"{differ} texts score differently from vaderSentiment")
    runs: dict[str, Callable[[str], object]] = {
        "vaderSentiment polarity_scores (reference)": ref.polarity_scores,
        "FastVader polarity_scores": fast.polarity_scores,
        "FastVader compound": fast.compound,
        "VaderScorer compound (the scorer's call)": scorer.compound,
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, score in runs.items():
            times[name].append(cpu_per_text(score, texts))
    return {name: statistics.median(ts) for name, ts in times.items()}


def pipeline(count: int) -> None:
    from tests.bench.bench_pipeline import bench_pipeline, build_texts, write_jsonl

    texts = build_texts(count)
    ref = SentimentIntensityAnalyzer()
    scorer = VaderScorer()

    def rate(score: Callable[[str], object]) -> float:
        t0 = time.perf_counter()
        for t in texts:
            score(t)
        return len(texts) / (time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mentions.jsonl"
        write_jsonl(path, texts)
        vader, new = rate(ref.polarity_scores), rate(scorer.compound)
        pooled = asyncio.run(bench_pipeline(path, len(texts), processes=1))
        vader2, new2 = rate(ref.polarity_scores), rate(scorer.compound)
    vader, new = (vader + vader2) / 2, (new + new2) / 2
    print(f"embedded pipeline against the lexicon alone: {len(texts)} mentions, one run")
    print(f"  raw vaderSentiment, one loop        {vader:9.0f} mentions/s")
    print(
        f"  raw new lexicon (VaderScorer)       {new:9.0f} mentions/s"
        f"  {new / vader:.2f}x vaderSentiment"
    )
    print(
        f"  pipeline, lexicon in 1 worker       {pooled:9.0f} mentions/s"
        f"  {pooled / vader:.2f}x vaderSentiment, {pooled / new:.2f}x the new lexicon"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", action="store_true", help="also the embedded pipeline")
    parser.add_argument("--count", type=int, default=24_000, help="mentions for --pipeline")
    args = parser.parse_args()
    texts = tweeteval_test_texts()
    times = compare(texts)
    base = times["vaderSentiment polarity_scores (reference)"]
    print(f"lexicon benchmark: {len(texts)} TweetEval test tweets, all scores equal, CPU time")
    for name, seconds in times.items():
        print(f"  {name:44s} {seconds * 1e6:7.1f} µs/tweet  {base / seconds:5.2f}x")
    if args.pipeline:
        pipeline(args.count)


if __name__ == "__main__":
    main()
