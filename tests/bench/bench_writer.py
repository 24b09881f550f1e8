"""The storage write path alone: ``MentionWriter.write`` against a bare ``executemany``.

Run: ``.venv/bin/python -m tests.bench.bench_writer [--count N] [--chunk N] [--rounds N]
[--returning]``.

Scored records shaped like the embedded pipeline's (five brands, one in ten mentions naming
two, a few thousand authors with bios, one in twenty sampled for a spot check) are built
before anything is timed, then written in chunks of ``--chunk`` (the scorer's default 250)
to a fresh, migrated SQLite file, one transaction a chunk. The baseline, measured in the
same run and alternated with the writer round by round, is the floor under any writer: the
same mention rows, already as tuples, inserted into a fresh ``mentions`` table of the same
schema with the driver's ``executemany``, one transaction a chunk — no rollups, links,
facts or review queue. Both are reported as CPU µs a mention (``time.process_time``) and
mentions/s (wall clock), median of ``--rounds``. ``--returning`` times the writer's
PostgreSQL-style path (``INSERT … RETURNING`` through SQLAlchemy) on SQLite instead.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from services.core.clock import FrozenClock
from services.core.models import Mention, Sentiment
from services.core.spotcheck import UNWEIGHTED
from services.core.storage.db import make_engine, migrate
from services.core.storage.writer import MentionWriter, ScoredRecord, sqlite_row, sqlite_timestamp
from services.scorer.process import scored_document

BRANDS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli")
BIOS = (
    "VP Marketing at Initech",
    "Coffee, code and cats",
    "Community manager. Views my own.",
    "Founder & CEO",
    "",
)
START = datetime(2026, 1, 5, tzinfo=UTC)
LABELS = (("positive", 0.6), ("neutral", 0.0), ("negative", -0.7))


def build_records(count: int) -> list[ScoredRecord]:
    out = []
    for i in range(count):
        author = i % 3_000
        raw = orjson.dumps(
            {
                "id": f"b{i}",
                "source": "x",
                "url": f"https://x.example/p/{i}",
                "text": f"@{BRANDS[i % 5].lower()} mention number {i} of the benchmark",
                "lang": "en",
                "created_at": (START + timedelta(milliseconds=250 * i)).isoformat(),
                "author": {
                    "id": f"u{author}",
                    "handle": f"user{author}",
                    "name": f"User {author}",
                    "followers": author * 7,
                    "description": BIOS[author % len(BIOS)],
                    "verified": False,
                },
                "in_reply_to_id": None if i % 4 else f"b{i - 1}",
                "conversation_id": f"b{i}",
                "metrics": {"likes": i % 7, "reposts": i % 3, "replies": i % 2},
            }
        )
        mention = Mention.model_validate_json(raw)
        label, score = LABELS[i % 3]
        sentiment = Sentiment.model_validate(
            {
                "label": label,
                "score": score,
                "confidence": 0.5,
                "method": "lexicon",
                "lexicon_compound": score,
            }
        )
        brands = (BRANDS[i % 5],) if i % 10 else (BRANDS[i % 5], BRANDS[(i + 1) % 5])
        spot = i % 20 == 0
        doc = scored_document(raw, brands, sentiment, spot, START, "en")
        out.append(
            ScoredRecord(
                mention, brands, sentiment, spot, START, doc, UNWEIGHTED if spot else None, "en"
            )
        )
    return out


def chunks(records: Sequence[ScoredRecord], size: int) -> list[Sequence[ScoredRecord]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def timed(run: Callable[[], None]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``run``."""
    c0, w0 = time.process_time(), time.perf_counter()
    run()
    return time.process_time() - c0, time.perf_counter() - w0


def writer_round(
    batches: list[Sequence[ScoredRecord]], root: Path, *, returning: bool
) -> tuple[float, float]:
    engine = make_engine(f"sqlite:///{root / 'writer.db'}")
    migrate(engine)
    writer = MentionWriter(engine, FrozenClock(START), use_returning=returning)

    def run() -> None:
        for batch in batches:
            writer.write(batch)

    try:
        return timed(run)
    finally:
        engine.dispose()


def bare_round(batches: list[Sequence[ScoredRecord]], root: Path) -> tuple[float, float]:
    engine = make_engine(f"sqlite:///{root / 'bare.db'}")
    migrate(engine)
    stamp = sqlite_timestamp(START)
    rows = [[sqlite_row(r, stamp, stamp) for r in batch] for batch in batches]
    columns = ", ".join(
        c
        for c in (
            "source",
            "mention_id",
            "created_at",
            "author_id",
            "author_handle",
            "author_followers",
            "in_reply_to_id",
            "conversation_id",
            "engagement",
            "label",
            "score",
            "confidence",
            "method",
            "spot_check",
            "scored_at",
            "stored_at",
            "doc",
            "language",
        )
    )
    sql = f"INSERT INTO mentions ({columns}) VALUES ({', '.join('?' * 18)})"  # noqa: S608

    def run() -> None:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            for chunk in rows:
                raw.execute("BEGIN IMMEDIATE")
                raw.executemany(sql, chunk)
                raw.execute("COMMIT")

    try:
        return timed(run)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=24_000)
    parser.add_argument("--chunk", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--returning", action="store_true")
    args = parser.parse_args()
    records = build_records(args.count)
    batches = chunks(records, args.chunk)
    writer_cpu, writer_wall, bare_cpu, bare_wall = [], [], [], []
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory() as d:
            cpu, wall = writer_round(batches, Path(d), returning=args.returning)
            writer_cpu.append(cpu)
            writer_wall.append(wall)
        with tempfile.TemporaryDirectory() as d:
            cpu, wall = bare_round(batches, Path(d))
            bare_cpu.append(cpu)
            bare_wall.append(wall)
        print(
            f"round {i + 1}: writer {cpu_us(writer_cpu[-1], args.count):.1f} µs CPU a mention, "
            f"bare executemany {cpu_us(bare_cpu[-1], args.count):.1f}"
        )
    n = args.count
    w_cpu, b_cpu = statistics.median(writer_cpu), statistics.median(bare_cpu)
    w_wall, b_wall = statistics.median(writer_wall), statistics.median(bare_wall)
    path = "RETURNING (SQLAlchemy)" if args.returning else "single-writer fast path"
    print(f"{n:,} mentions in chunks of {args.chunk}, median of {args.rounds} rounds, SQLite")
    print(f"{'':36} {'CPU µs/mention':>15} {'mentions/s':>11} {'CPU ×':>6}")
    print(
        f"{'bare executemany (baseline)':36} {cpu_us(b_cpu, n):15.1f} {n / b_wall:11,.0f} {1:6.2f}"
    )
    print(
        f"{'MentionWriter.write, ' + path:36} {cpu_us(w_cpu, n):15.1f} {n / w_wall:11,.0f} "
        f"{w_cpu / b_cpu:6.2f}"
    )


def cpu_us(seconds: float, count: int) -> float:
    return seconds / count * 1e6


if __name__ == "__main__":
    main()
