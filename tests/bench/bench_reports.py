"""Executive report and share-of-voice latency on a large store (≥ 1 M mentions).

Run: ``make bench`` (or ``.venv/bin/python -m tests.bench.bench_reports [--mentions N]``).

The store is built fast, straight into SQLite with bulk SQL (mentions, brand links, and
the rollups summed in Python as the writer sums them); how long that takes is printed
but is not the measure. Then, through the whole HTTP stack in process (Starlette's test
client: routing, auth, validation, serialisation), each endpoint is requested
``--requests`` times after a warm-up, and its p50/p95 are printed as ratios to a
baseline measured in the same run on the same store: a plain indexed
``SELECT count(*) FROM mention_brands WHERE brand = ? AND created_at in the period``.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from services.api.app import create_app
from services.api.settings import ApiSettings
from services.api.state import AppState
from services.core.auth import Role
from services.core.authors import author_role, in_conversation
from services.core.clock import FrozenClock
from services.core.metrics import Metrics
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate, sqlite_url
from services.core.storage.keys import KeyStore
from services.core.storage.report_rows import role_day_rows
from services.core.storage.writer import sqlite_timestamp
from services.runtime.process import freeze_startup_heap, steady_allocator
from tests.fixtures.postgres import PostgresServer, free_port

END = datetime(2026, 11, 1, tzinfo=UTC)
SPAN_DAYS = 90
BRANDS = {
    "Acme": ("Globex", "Initech", "Umbrella"),
    "Globex": ("Acme",),
    "Initech": (),
    "Umbrella": (),
    "United": (),
}
BRAND_WEIGHTS = (0.35, 0.25, 0.15, 0.15, 0.10)
AUTHORS = 50_000
BIOS = (
    "CEO at a logistics company",
    "Head of IT",
    "Founder & owner",
    "Marketing manager",
    "PR and communications",
    "Software engineer",
    "Support agent",
    "",
    "Dad, runner, coffee",
    "Operations analyst",
)
LABELS = ("positive", "neutral", "negative")
SEED = 7
BATCH = 20_000

_MENTION_SQL = (
    "INSERT INTO mentions (pk, source, mention_id, created_at, author_id, author_handle, "
    "author_followers, in_reply_to_id, conversation_id, engagement, label, score, confidence, "
    "method, spot_check, scored_at, stored_at, doc) "
    "VALUES (?, 'x', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0.5, 'lexicon', 0, ?, ?, ?)"
)
_FACTS_SQL = (
    "INSERT INTO brand_mention_facts (brand, created_at, mention_pk, label, author_id, "
    "author_role, followers, engagement, replies, language) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Each mention's language, from its pk (the random sequence, and so the store, stays as
# before): mostly English, a long tail, some undetermined (None).
LANGUAGES = ("en",) * 12 + ("de", "de", "fr", "fr", "es", "pt", "ja", "it", None, None)


def build_store(data_dir: Path, count: int) -> None:
    """``count`` mentions over ``SPAN_DAYS`` days before ``END``, with rollups."""
    engine = make_engine(sqlite_url(data_dir))
    migrate(engine)
    clock = FrozenClock(END)
    store = BrandStore(engine, clock)
    for name, competitors in BRANDS.items():
        store.create(name, f'"{name.lower()}"', competitors)
    engine.dispose()

    rng = random.Random(SEED)
    words = [f"w{n:04d}" for n in range(2000)] + ["pricing", "outage", "support", "invoice"]
    authors = [
        (
            f"u{a}",
            f"user{a}",
            int(rng.lognormvariate(6, 2.2)),
            BIOS[a % len(BIOS)],
        )
        for a in range(AUTHORS)
    ]
    roles = [author_role(None, bio).value for _, _, _, bio in authors]
    names = list(BRANDS)
    start = int((END - timedelta(days=SPAN_DAYS)).timestamp())
    step = SPAN_DAYS * 86_400 / count
    stamp = sqlite_timestamp(END)
    rollups: dict[tuple[str, int], list[float]] = {}
    role_rollups: dict[tuple[str, int, str], list[int]] = {}
    author_days: dict[tuple[str, int, str, str], list[int]] = {}
    language_hours: dict[tuple[str, int, str], int] = {}
    day_peaks: dict[tuple[str, int], list[int]] = {}
    snippets = [" ".join(rng.sample(words, 8)) for _ in range(5000)]
    db = sqlite3.connect(data_dir / "sentimon.db")
    db.execute("PRAGMA synchronous=OFF")
    mentions: list[tuple[object, ...]] = []
    links: list[tuple[object, ...]] = []
    facts: list[tuple[object, ...]] = []

    def flush() -> None:
        db.executemany(_MENTION_SQL, mentions)
        db.executemany(
            "INSERT INTO mention_brands (mention_pk, brand, created_at, label) VALUES (?, ?, ?, ?)",
            links,
        )
        db.executemany(_FACTS_SQL, facts)
        mentions.clear()
        links.clear()
        facts.clear()

    for pk in range(1, count + 1):
        epoch = start + int((pk - 1) * step)
        created = sqlite_timestamp(datetime.fromtimestamp(epoch, UTC))
        a = (
            min(AUTHORS - 1, int(rng.paretovariate(1.2)) - 1)
            if rng.random() < 0.5
            else rng.randrange(AUTHORS)
        )
        author_id, handle, followers, bio = authors[a]
        label = LABELS[rng.randrange(3)]
        brands = [rng.choices(names, BRAND_WEIGHTS)[0]]
        if rng.random() < 0.1:
            brands.append(rng.choice(names))
        brands = list(dict.fromkeys(brands))
        reply_to = f"m{rng.randrange(1, pk)}" if pk > 1 and rng.random() < 0.2 else None
        thread = f"m{pk}" if rng.random() < 0.7 else f"m{max(1, pk - rng.randrange(1, 50))}"
        replies = rng.choice((0, 0, 0, 0, 1, 3))
        likes = int(rng.expovariate(0.2))
        engagement = likes + replies
        text_ = f"{brands[0].lower()} {snippets[pk % len(snippets)]}"
        doc = orjson.dumps(
            {
                "id": f"m{pk}",
                "source": "x",
                "text": text_,
                "created_at": created.replace(" ", "T") + "Z",
                "author": {
                    "id": author_id,
                    "handle": handle,
                    "followers": followers,
                    "description": bio,
                },
                "in_reply_to_id": reply_to,
                "conversation_id": thread,
                "metrics": {"likes": likes, "reposts": 0, "replies": replies},
                "brands": brands,
            }
        ).decode()
        score = {"positive": 0.6, "neutral": 0.0, "negative": -0.6}[label]
        role = roles[a]
        talk = in_conversation(f"m{pk}", reply_to, thread, replies)
        mentions.append(
            (
                pk,
                f"m{pk}",
                created,
                author_id,
                handle,
                followers,
                reply_to,
                thread,
                engagement,
                label,
                score,
                stamp,
                stamp,
                doc,
            )
        )
        minute = epoch - epoch % 60
        for b in brands:
            links.append((pk, b, created, label))
            r = rollups.setdefault((b, minute), [0, 0, 0, 0, 0.0, 0, 0])
            r[0] += 1
            r[1 + LABELS.index(label)] += 1
            r[4] += score
            r[5] += followers
            r[6] += engagement
            language = LANGUAGES[pk * 7919 % len(LANGUAGES)]
            facts.append(
                (b, created, pk, label, author_id, role, followers, engagement, replies, language)
            )
            lk = (b, epoch - epoch % 3600, language or "")
            language_hours[lk] = language_hours.get(lk, 0) + 1
            peak = day_peaks.setdefault((b, epoch - epoch % 86_400), [0, 0])
            peak[0] = max(peak[0], engagement)
            peak[1] = max(peak[1], replies)
            rr = role_rollups.setdefault((b, epoch - epoch % 3600, role), [0] * 7)
            rr[0] += 1
            rr[1 + LABELS.index(label)] += 1
            rr[4] += followers
            rr[5] += engagement
            rr[6] += talk
            # An author has one bio and one follower count here: role and followers are
            # their maxima; pks ascend, so the latest is the last pk.
            ad = author_days.setdefault((b, epoch - epoch % 86_400, author_id, role), [0] * 7)
            ad[0] = followers
            ad[1] += 1
            ad[2] += engagement
            ad[3] += replies
            ad[4] += label == "positive"
            ad[5] += label == "negative"
            ad[6] = pk
        if len(mentions) >= BATCH:
            flush()
    flush()
    db.executemany(
        "INSERT INTO brand_minute_rollups (brand, minute, mentions, positive, neutral, negative, "
        "score_sum, reach, engagement) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(b, m, *v) for (b, m), v in rollups.items()],
    )
    db.executemany(
        "INSERT INTO brand_role_hour_rollups (brand, hour, role, mentions, positive, neutral, "
        "negative, reach, engagement, conversation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(b, m, role, *v) for (b, m, role), v in role_rollups.items()],
    )
    db.executemany(
        "INSERT INTO brand_role_day_rollups (brand, day, role, mentions, positive, neutral, "
        "negative, reach, engagement, conversation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        role_day_rows(role_rollups),
    )
    db.executemany(
        "INSERT INTO brand_author_day_rollups (brand, day, author_id, author_role, followers, "
        "mentions, engagement, replies, positive, negative, last_pk) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*k, *v) for k, v in sorted(author_days.items())],
    )
    db.executemany(
        "INSERT INTO brand_language_hour_rollups (brand, hour, language, mentions, unscored) "
        "VALUES (?, ?, ?, ?, 0)",
        [(*k, n) for k, n in sorted(language_hours.items())],
    )
    db.executemany(
        "INSERT INTO brand_day_peaks (brand, day, engagement, replies) VALUES (?, ?, ?, ?)",
        [(*k, *v) for k, v in sorted(day_peaks.items())],
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def timed(fn: Callable[[], object], requests: int, warmup: int = 2) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return percentiles(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the store here")
    parser.add_argument(
        "--only",
        choices=("report", "sov"),
        default=None,
        help="measure only the executive report (API and page) or only share of voice",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="copy the store into a PostgreSQL cluster started under the data dir (pg.sh) "
        "and time the endpoints there",
    )
    parser.add_argument(
        "--no-freeze",
        action="store_true",
        help="leave the start-up heap in the collector's generations and glibc's malloc "
        "thresholds as they are (as before issue 18's freeze and steady allocator), to compare",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        if not (data_dir / "sentimon.db").exists():
            t0 = time.perf_counter()
            build_store(data_dir, args.mentions)
            took = time.perf_counter() - t0
            print(f"store: {args.mentions:,} mentions built in {took:.0f} s (not measured)")
        if not args.postgres:
            run(data_dir, args.requests, args.only, freeze=not args.no_freeze)
            return
        server = PostgresServer(data_dir / "pg", free_port())
        server.start()
        try:
            url = server.url()
            loaded = data_dir / "pg-loaded"
            if not loaded.exists():
                t0 = time.perf_counter()
                load_postgres(data_dir, url)
                loaded.touch()
                print(f"store copied into PostgreSQL in {time.perf_counter() - t0:.0f} s")
            run(data_dir, args.requests, args.only, freeze=not args.no_freeze, url=url)
        finally:
            server.stop()


# What ``load_postgres`` copies (brands are created there as in ``build_store``).
_COPIED = (
    "mentions",
    "mention_brands",
    "brand_minute_rollups",
    "brand_role_hour_rollups",
    "brand_role_day_rollups",
    "brand_mention_facts",
    "brand_author_day_rollups",
    "brand_language_hour_rollups",
    "brand_day_peaks",
)


def load_postgres(data_dir: Path, url: str) -> None:
    """The SQLite store of ``data_dir`` copied into the (empty) PostgreSQL database at
    ``url`` with ``COPY``, migrated first so that every index is the service's; then
    analysed, as autovacuum would have by the time anyone reads a report."""
    engine = make_engine(url)
    migrate(engine)
    store = BrandStore(engine, FrozenClock(END))
    for name, competitors in BRANDS.items():
        store.create(name, f'"{name.lower()}"', competitors)
    engine.dispose()
    src = sqlite3.connect(data_dir / "sentimon.db")
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as pg:
        present = {
            str(r[0])
            for r in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        # A table the schema does not have (an older revision's, compared) is left out.
        for table in (t for t in _COPIED if t in present):
            columns = ", ".join(r[1] for r in src.execute(f"PRAGMA table_info({table})"))
            with pg.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in src.execute(f"SELECT {columns} FROM {table}"):  # noqa: S608
                    copy.write_row(row)
        pg.execute(
            "SELECT setval(pg_get_serial_sequence('mentions', 'pk'), "
            "(SELECT max(pk) FROM mentions))"
        )
        pg.commit()
        pg.autocommit = True
        pg.execute("VACUUM ANALYZE")
    src.close()


def run(
    data_dir: Path,
    requests: int,
    only: str | None = None,
    *,
    freeze: bool = True,
    url: str | None = None,
) -> None:
    """Time the endpoints on the store of ``data_dir`` (SQLite), or at ``url``. A store
    kept from an earlier run is brought up to date first, as ``sentimon migrate`` would."""
    engine = make_engine(url or sqlite_url(data_dir))
    migrate(engine)
    postgres = engine.dialect.name == "postgresql"
    clock = FrozenClock(END)
    state = AppState(
        settings=ApiSettings(data_dir=data_dir),
        engine=engine,
        clock=clock,
        metrics=Metrics(CollectorRegistry()),
        keys=KeyStore(engine, clock),
        brands=BrandStore(engine, clock),
    )
    key = state.keys.create(Role.VIEWER, "bench")[0]
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM mentions")).scalar_one()
    client = TestClient(create_app(state), headers={"Authorization": f"Bearer {key}"})
    if freeze:
        steady_allocator()  # as every service process does before it serves
        freeze_startup_heap()

    def period(days: int) -> dict[str, str]:
        return {"from": (END - timedelta(days=days)).isoformat(), "to": END.isoformat()}

    def baseline(days: int) -> Callable[[], object]:
        # The columns hold naive UTC on PostgreSQL, SQLite's text on SQLite.
        lo, hi = END - timedelta(days=days), END
        start: object = lo.replace(tzinfo=None) if postgres else sqlite_timestamp(lo)
        end: object = hi.replace(tzinfo=None) if postgres else sqlite_timestamp(hi)

        def count() -> object:
            with engine.connect() as conn:
                return conn.execute(
                    text(
                        "SELECT count(*) FROM mention_brands "
                        "WHERE brand = 'Acme' AND created_at >= :s AND created_at < :e"
                    ),
                    {"s": start, "e": end},
                ).scalar_one()

        return count

    def get(path: str, **params: str) -> Callable[[], object]:
        def call() -> object:
            r = client.get(path, params=params)
            assert r.status_code == 200, r.text[:500]
            return r

        return call

    where = "PostgreSQL" if postgres else "SQLite"
    print(f"report latency on {stored:,} stored mentions ({SPAN_DAYS} days, 5 brands, {where})")
    print(f"{requests} requests each, after 2 to warm up; ratios to the baseline's p50 and p95")
    print(f"  {'':58} {'p50 ms':>8} {'p95 ms':>8} {'p50 ratio':>10} {'p95 ratio':>10}")
    for days in (7, 30):
        in_period = baseline(days)()
        base50, base95 = timed(baseline(days), requests)
        cases = [
            (f"baseline: indexed count of Acme's {in_period:,} mentions", baseline(days)),
            (
                "GET /api/v1/reports/executive (compare previous)",
                get("/api/v1/reports/executive", brand="Acme", **period(days)),
            ),
            (
                "GET /reports/executive (the page, HTML)",
                get("/reports/executive", brand="Acme", **period(days)),
            ),
            (
                "GET /api/v1/share-of-voice (5 brands, 1h buckets)",
                get("/api/v1/share-of-voice", interval="1h", **period(days)),
            ),
        ]
        if only is not None:
            keep = "share-of-voice" if only == "sov" else "executive"
            cases = [c for c in cases if c[0].startswith("baseline") or keep in c[0]]
        print(f"  {days}-day period")
        for name, fn in cases:
            p50, p95 = (base50, base95) if name.startswith("baseline") else timed(fn, requests)
            ratios = f"{p50 / base50:9.1f}x {p95 / base95:9.1f}x"
            print(f"    {name:56} {p50 * 1e3:8.1f} {p95 * 1e3:8.1f} {ratios}")
    client.close()
    engine.dispose()


if __name__ == "__main__":
    main()
