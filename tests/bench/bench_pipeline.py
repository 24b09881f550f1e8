"""Embedded pipeline throughput against raw VADER on the same texts, in one run.

Run: ``make bench`` (or ``.venv/bin/python -m tests.bench.bench_pipeline [--count N]``).

The texts are TweetEval's test tweets, each naming one of five brands by handle so that
every mention is matched, scored and stored. The baseline is a plain loop of
``SentimentIntensityAnalyzer().polarity_scores(text)`` over the same texts in this
process. The pipeline figure is end to end: a JSON Lines file read by the file
source, validated, deduplicated, produced to the in-memory bus, consumed, brand
matched and masked, scored (VADER in a worker process), written to SQLite with its
rollups, produced to ``mentions.scored`` and committed — from the first line read to
the last offset committed. As in ``sentimon run``, the start-up heap is frozen before the
clock starts (``--no-freeze`` leaves it to the collector, as this bench did before).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.api.settings import ApiSettings
from services.embedded import Embedded
from services.ingest.settings import IngestSettings
from services.ingest.sources.file import FileSource
from services.runtime.process import freeze_startup_heap, steady_allocator
from services.scorer.process import ScoringConfig
from services.scorer.settings import ScorerSettings
from services.scorer.workers import BrandSet
from tests.bench.shared_data import tweeteval_test_texts

BRANDS = [
    ("Acme", "@acmehq OR acme"),
    ("Globex", "@globexcorp OR globex"),
    ("Initech", "@initech OR initech"),
    ("Umbrella", "@umbrellacorp OR umbrella"),
    ("Hooli", "@hooli OR hooli"),
]
HANDLES = ["@acmehq", "@globexcorp", "@initech", "@umbrellacorp", "@hooli"]


def build_texts(count: int) -> list[str]:
    tweets = tweeteval_test_texts()
    out = []
    for i in range(count):
        out.append(f"{HANDLES[i % len(HANDLES)]} {tweets[i % len(tweets)]}")
    return out


START = datetime(2026, 1, 5, tzinfo=UTC)


def bench_doc(i: int, text: str) -> dict[str, object]:
    """The ``i``-th benchmark mention of ``text``: one a second from ``START``, 500 authors."""
    return {
        "id": f"bench-{i}",
        "source": "file",
        "text": text,
        "created_at": (START + timedelta(seconds=i)).isoformat(),
        "author": {"id": f"a{i % 500}", "handle": f"user{i % 500}", "followers": i % 9000},
        "metrics": {"likes": i % 7, "reposts": i % 3, "replies": i % 2},
    }


def write_jsonl(path: Path, texts: list[str]) -> None:
    with path.open("wb") as f:
        for i, text in enumerate(texts):
            f.write(orjson.dumps(bench_doc(i, text)) + b"\n")


def bench_vader(texts: list[str]) -> float:
    analyzer = SentimentIntensityAnalyzer()
    t0 = time.perf_counter()
    for t in texts:
        analyzer.polarity_scores(t)
    return len(texts) / (time.perf_counter() - t0)


async def bench_pipeline(path: Path, n: int, processes: int, *, freeze: bool = True) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        emb = Embedded(
            ingest=IngestSettings(data_dir=data, demo=False),
            # The lexicon pipeline's throughput; the hybrid's is in bench_sentiment.
            scorer=ScorerSettings(
                data_dir=data, lexicon_processes=processes, scorer_mode="lexicon"
            ),
            api=ApiSettings(data_dir=data),
        )
        async with emb:
            for name, query in BRANDS:
                emb.brands.create(name, query)
            await emb.refresh_brands()
            if processes:  # warm the worker up: its start-up is not throughput
                assert emb.pipeline is not None
                await emb.pipeline.runner.score([], BrandSet(0), ScoringConfig(), START)
            if freeze:  # as `sentimon run` does once started (services/embedded.py)
                steady_allocator()
                freeze_startup_heap()
            t0 = time.perf_counter()
            task = emb.add_source(FileSource(path))
            await emb.drain(timeout_s=600)
            elapsed = time.perf_counter() - t0
            stats = task.result()
            assert stats.accepted == n, stats
            stored = emb.metrics.registry.get_sample_value("sentimon_mentions_stored_total")
            assert stored == n, stored
    if freeze:
        gc.unfreeze()  # the next run starts from the same collector state
    return n / elapsed


def overhead_ceiling(path: Path, n: int, *, freeze: bool = True) -> float:
    """The pipeline with scoring replaced by a no-op: what everything but VADER allows."""
    from services.scorer import workers
    from services.scorer.lexicon import VaderScorer

    class NoOp(VaderScorer):
        def compound(self, text: str) -> float:
            return 0.0

    real = workers._state.scorer
    workers._state.scorer = NoOp()
    try:
        return asyncio.run(bench_pipeline(path, n, processes=0, freeze=freeze))
    finally:
        workers._state.scorer = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=24_000)
    parser.add_argument(
        "--no-freeze",
        action="store_true",
        help="leave the start-up heap in the collector's generations (as this bench did "
        "before 2026-12-06; `sentimon run` freezes it), to compare",
    )
    args = parser.parse_args()
    freeze = not args.no_freeze
    texts = build_texts(args.count)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mentions.jsonl"
        write_jsonl(path, texts)
        vader = bench_vader(texts)
        inline = asyncio.run(bench_pipeline(path, len(texts), processes=0, freeze=freeze))
        pooled = asyncio.run(bench_pipeline(path, len(texts), processes=1, freeze=freeze))
        ceiling = overhead_ceiling(path, len(texts), freeze=freeze)
        vader_again = bench_vader(texts)
    base = (vader + vader_again) / 2
    print(f"embedded pipeline benchmark: {len(texts)} TweetEval test tweets, each naming a brand")
    print(
        f"  raw VADER, one loop (baseline)      {base:9.0f} mentions/s  1.00x"
        f"  (runs: {vader:.0f}, {vader_again:.0f})"
    )
    print(f"  pipeline, VADER inline              {inline:9.0f} mentions/s  {inline / base:.2f}x")
    print(
        f"  pipeline, VADER in 1 worker process {pooled:9.0f} mentions/s  {pooled / base:.2f}x"
        "  (default; goal >= 0.85x)"
    )
    print(
        f"  pipeline, VADER replaced by a no-op {ceiling:9.0f} mentions/s  {ceiling / base:.2f}x"
        "  (the pipeline's own ceiling)"
    )


if __name__ == "__main__":
    main()
