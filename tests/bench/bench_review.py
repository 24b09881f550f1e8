"""What spot checks cost: the sampler on the scorer's hot path, and the review queue.

Run: ``.venv/bin/python -m tests.bench.bench_review [--count N]``.

1. Sampler: per mention, the stratified spot-check decision (with and without the
   router's uncertainty check) against two baselines timed in the same run on the same
   TweetEval test tweets: the old unstratified hash check (``is_spot_check``) and VADER's
   compound score of the text (the work the scorer does on every mention anyway).
2. Queue: claim + label throughput with 1 and 4 analysts working at once on one SQLite
   database (the embedded mode's), each label adjusting the rollups in its transaction;
   the baseline is the same number of plain single-row UPDATEs in their own transactions.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import Engine, text

from services.core.clock import SystemClock
from services.core.models import Mention
from services.core.spotcheck import SpotCheck
from services.core.storage.db import make_engine, migrate
from services.core.storage.review import Analyst, ReviewStore
from services.core.storage.writer import MentionWriter, ScoredRecord
from services.scorer.lexicon import VaderScorer, lexicon_sentiment
from services.scorer.process import scored_document
from services.scorer.routing import RoutingThresholds
from services.scorer.sampling import SamplingPolicy, is_spot_check, spot_check
from tests.bench.shared_data import tweeteval_test_texts
from tests.fixtures.mentions import mention_doc

ROUNDS = 3


def best_of(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_sampler(count: int) -> None:
    texts = (tweeteval_test_texts() * (count // 12_000 + 1))[:count]
    vader = VaderScorer()
    verdicts = [lexicon_sentiment(vader.compound(t)) for t in texts]
    ids = [f"id-{i}" for i in range(count)]
    plain = SamplingPolicy.build()
    routed = SamplingPolicy.build(routing=RoutingThresholds(min_trust=0.5))

    def baseline_hash() -> None:
        for i in ids:
            is_spot_check("x", i, 0.02)

    def stratified() -> None:
        for i, v in zip(ids, verdicts, strict=True):
            spot_check("x", i, v, plain)

    def with_router() -> None:
        for i, v, t in zip(ids, verdicts, texts, strict=True):
            spot_check("x", i, v, routed, t)

    def vader_all() -> None:
        for t in texts:
            vader.compound(t)

    results = {
        "unstratified hash check (baseline)": best_of(baseline_hash),
        "stratified + uncertainty": best_of(stratified),
        "stratified + uncertainty + router margin": best_of(with_router),
        "VADER compound (baseline)": best_of(vader_all),
    }
    base = results["unstratified hash check (baseline)"]
    vader_s = results["VADER compound (baseline)"]
    print(f"sampler on {count} TweetEval test tweets (best of {ROUNDS})")
    for name, s in results.items():
        print(
            f"  {name:<42} {1e6 * s / count:7.2f} µs/mention  "
            f"{s / base:5.2f}× the hash check  {100 * s / vader_s:5.1f} % of VADER"
        )


def queue_db(path: Path, items: int) -> tuple[ReviewStore, Engine]:
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    now = datetime.now(UTC)
    records = []
    for i in range(items):
        raw = orjson.dumps(
            mention_doc(id=f"q{i}", created_at=(now - timedelta(minutes=i % 500)).isoformat())
        )
        s = lexicon_sentiment(0.6)
        doc = scored_document(raw, ("Acme",), s, True, now)
        records.append(
            ScoredRecord(
                Mention.model_validate_json(raw),
                ("Acme",),
                s,
                True,
                now,
                doc,
                SpotCheck("random", 50.0, 1),
            )
        )
    MentionWriter(engine, SystemClock()).write(records)
    return ReviewStore(engine, SystemClock(), lease=timedelta(minutes=5)), engine


def work(store: ReviewStore, analyst: Analyst) -> None:
    while (item := store.claim(analyst)) is not None:
        store.label(analyst, item.id, "negative")


def plain_updates(engine: Engine, items: int) -> None:
    for i in range(1, items + 1):
        with engine.begin() as conn:
            conn.execute(text("UPDATE review_items SET reviews_done = 1 WHERE id = :i"), {"i": i})


def bench_queue(items: int) -> None:
    print(f"review queue on SQLite, {items} items")
    for analysts in (1, 4):
        with tempfile.TemporaryDirectory() as d:
            store, engine = queue_db(Path(d) / "q.db", items)

            threads = [
                threading.Thread(target=work, args=(store, Analyst(k, f"a{k}")))
                for k in range(1, analysts + 1)
            ]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            labelled_s = time.perf_counter() - t0

            t0 = time.perf_counter()
            plain_updates(engine, items)
            plain_s = time.perf_counter() - t0
            engine.dispose()
        print(
            f"  {analysts} analyst(s): {items / labelled_s:8.0f} claim+label/s  "
            f"baseline one-row UPDATE transactions {items / plain_s:8.0f}/s  "
            f"ratio {plain_s / labelled_s:4.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=12_000, help="tweets for the sampler")
    parser.add_argument("--items", type=int, default=1_000, help="review items for the queue")
    args = parser.parse_args()
    bench_sampler(args.count)
    bench_queue(args.items)


if __name__ == "__main__":
    main()
