"""Cost of the per-brand business gauges as the store grows, against a plain query.

Run: ``.venv/bin/python -m tests.bench.bench_brand_gauges [--brands N] [--days D ...]``.

For stores of 1, 7 and 30 days of per-minute rollups of ``--brands`` brands (SQLite,
one row per brand and minute: every minute has mentions), it times what a scrape of
``/metrics`` runs, ``read_brand_windows`` (tracked brands joined to their own 15 minutes
of rollups: one primary-key range per brand), and a baseline measured in the same run on
the same database: the obvious ``WHERE minute >= since GROUP BY brand`` over the rollups,
which the (brand, minute) primary key cannot serve as a range. It prints the median
milliseconds of each, their ratio, and checks that both give the same counts.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, insert, select

from services.api.brand_gauges import BrandWindow, read_brand_windows
from services.core.storage.db import make_engine, migrate, sqlite_url
from services.core.storage.tables import brand_minute_rollups, brands

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)
ROUNDS = 15


def build_store(directory: Path, brand_count: int, days: int) -> Engine:
    engine = make_engine(sqlite_url(directory))
    migrate(engine)
    now_minute = int(NOW.timestamp()) // 60 * 60
    names = [f"Brand {i:03d}" for i in range(brand_count)]
    with engine.begin() as conn:
        conn.execute(
            insert(brands),
            [
                {"name": n, "query": "x", "competitors": [], "created_at": NOW, "updated_at": NOW}
                for n in names
            ],
        )
        for name in names:
            conn.execute(
                insert(brand_minute_rollups),
                [
                    {
                        "brand": name,
                        "minute": now_minute - 60 * k,
                        "mentions": 3,
                        "positive": 1,
                        "neutral": 1,
                        "negative": 1,
                        "score_sum": 0.0,
                        "reach": 10,
                        "engagement": 1,
                    }
                    for k in range(days * 1440)
                ],
            )
    return engine


def baseline(engine: Engine, since_minute: int) -> list[BrandWindow]:
    r = brand_minute_rollups.c
    query = (
        select(r.brand, func.sum(r.mentions), func.sum(r.positive), func.sum(r.negative))
        .where(r.minute >= since_minute)
        .group_by(r.brand)
        .order_by(r.brand)
    )
    with engine.connect() as conn:
        return [BrandWindow(str(b), int(m), int(p), int(n)) for b, m, p, n in conn.execute(query)]


def median_ms(read: Callable[[Engine, int], object], engine: Engine, since: int) -> float:
    times = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        read(engine, since)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brands", type=int, default=20)
    parser.add_argument("--days", type=int, nargs="+", default=[1, 7, 30])
    args = parser.parse_args()
    since = int((NOW - WINDOW).timestamp()) // 60 * 60
    print(f"{args.brands} brands, a 15-minute window, SQLite, median of {ROUNDS} reads")
    print(f"{'days':>5} {'rollup rows':>12} {'gauges ms':>10} {'baseline ms':>12} {'ratio':>7}")
    for days in args.days:
        with tempfile.TemporaryDirectory() as tmp:
            engine = build_store(Path(tmp), args.brands, days)
            try:
                ours = read_brand_windows(engine, since)
                assert ours == baseline(engine, since), "the two queries disagree"
                ours_ms = median_ms(read_brand_windows, engine, since)
                base_ms = median_ms(baseline, engine, since)
            finally:
                engine.dispose()
        rows = args.brands * days * 1440
        print(f"{days:>5} {rows:>12,} {ours_ms:>10.2f} {base_ms:>12.2f} {base_ms / ours_ms:>6.1f}x")


if __name__ == "__main__":
    main()
