"""The read side on each database the store supports (SQLite and PostgreSQL): mention
pages and their cursors, rollup buckets, dead letters, brands and keys."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from services.core.auth import Role
from services.core.bus.protocol import Message
from services.core.clock import FrozenClock
from services.core.storage.analytics import brand_buckets
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.storage.deadletters import list_dead_letters, store_dead_letters
from services.core.storage.keys import KeyStore
from services.core.storage.reads import InvalidCursorError, MentionFilter, list_mentions
from services.core.storage.writer import MentionWriter, minute_of
from tests.core.storage.test_writer import T0, record


@pytest.fixture
def engine(database_url: str) -> Engine:
    e = make_engine(database_url)
    migrate(e)
    return e


@pytest.fixture
def stored(engine: Engine) -> Engine:
    """30 mentions over 3 minutes: every third negative, every fourth also names Globex."""
    batch = [
        record(
            i,
            label="negative" if i % 3 == 0 else "positive",
            brands=("Acme", "Globex") if i % 4 == 0 else ("Acme",),
            minute=i % 3,
        )
        for i in range(30)
    ]
    assert MentionWriter(engine, FrozenClock(T0)).write(batch).inserted == 30
    return engine


def all_pages(engine: Engine, flt: MentionFilter, limit: int) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    with engine.connect() as conn:
        while True:
            page = list_mentions(conn, flt, limit=limit, cursor=cursor)
            ids += [m.id for m in page.items]
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor


def test_pages_walk_every_match_once_newest_first(stored: Engine) -> None:
    ids = all_pages(stored, MentionFilter(), limit=7)
    assert sorted(ids) == sorted(f"w{i}" for i in range(30))
    assert len(ids) == 30
    with stored.connect() as conn:
        page = list_mentions(conn, MentionFilter(), limit=30, cursor=None)
    times = [m.created_at for m in page.items]
    assert times == sorted(times, reverse=True)


def test_filters_by_brand_label_and_time(stored: Engine) -> None:
    globex = all_pages(stored, MentionFilter(brand="Globex"), limit=4)
    assert sorted(globex) == sorted(f"w{i}" for i in range(0, 30, 4))
    negative_acme = all_pages(stored, MentionFilter(brand="Acme", label="negative"), limit=4)
    assert sorted(negative_acme) == sorted(f"w{i}" for i in range(0, 30, 3))
    first_minute = all_pages(
        stored, MentionFilter(start=T0, end=T0 + timedelta(minutes=1)), limit=100
    )
    assert sorted(first_minute) == sorted(f"w{i}" for i in range(0, 30, 3))


def test_a_forged_cursor_is_refused(stored: Engine) -> None:
    with stored.connect() as conn, pytest.raises(InvalidCursorError, match="cursor"):
        list_mentions(conn, MentionFilter(), limit=5, cursor="bm90IGEgY3Vyc29y")


def test_buckets_sum_the_rollups(stored: Engine) -> None:
    start = minute_of(T0)
    with stored.connect() as conn:
        b = brand_buckets(conn, ["Acme", "Globex", "Nobody"], start, start + 180, 120)
    assert b.totals["Acme"].mentions == 30
    assert b.totals["Acme"].negative == 10
    assert b.totals["Globex"].mentions == 8
    assert b.totals["Nobody"].mentions == 0
    assert [c.mentions for c in b.buckets["Acme"]] == [20, 10]


def test_dead_letters_are_kept_once_each(engine: Engine) -> None:
    poison = Message(
        "mentions.dlq",
        0,
        5,
        None,
        b"{not json",
        headers=(("dlq.reason", b"invalid JSON"), ("dlq.topic", b"mentions.raw")),
    )
    store_dead_letters(engine, [poison, poison], T0)
    store_dead_letters(engine, [poison], T0)
    (letter,) = list_dead_letters(engine)
    assert (letter["topic"], letter["reason"], letter["payload"]) == (
        "mentions.raw",
        "invalid JSON",
        "{not json",
    )


def test_brands_and_keys(engine: Engine) -> None:
    clock = FrozenClock(T0)
    brands = BrandStore(engine, clock)
    before = brands.version()
    brands.create("Acme", '"acme"', ["Globex"])
    assert brands.version() != before
    assert [(b.name, tuple(b.competitors)) for b in brands.list()] == [("Acme", ("Globex",))]
    keys = KeyStore(engine, clock)
    secret, meta = keys.create(Role.VIEWER, "v")
    found = keys.authenticate(secret)
    assert found is not None and found.role is Role.VIEWER
    keys.revoke(meta.prefix)
    assert keys.authenticate(secret) is None


@pytest.mark.parametrize("interval", [3_600, 7_200, 86_400, 300])
@pytest.mark.parametrize(
    ("start_min", "end_min"), [(0, 300), (17, 283), (-90, 400), (61, 119), (130, 170)]
)
def test_buckets_without_score_equal_the_minute_sums(
    engine: Engine, interval: int, start_min: int, end_min: int
) -> None:
    # 90 mentions over five hours, two brands, labels and reach varying: read from the
    # hourly rollups for whole hours and the minutes for the ends, every count must equal
    # the minutes' own sums, bucket by bucket (score_sum aside: it is not kept hourly).
    batch = [
        record(
            i,
            label=("negative", "positive", "neutral")[i % 3],
            brands=("Acme", "Globex") if i % 4 == 0 else ("Acme",),
            minute=(i * 37) % 300,
            followers=10 * i + 1,
        )
        for i in range(90)
    ]
    assert MentionWriter(engine, FrozenClock(T0)).write(batch).inserted == 90
    start = minute_of(T0) + 60 * start_min
    end = minute_of(T0) + 60 * end_min
    with engine.connect() as conn:
        full = brand_buckets(conn, ["Acme", "Globex"], start, end, interval)
        fast = brand_buckets(conn, ["Acme", "Globex"], start, end, interval, with_score=False)
    assert fast.bucket_starts == full.bucket_starts
    fields = ("mentions", "positive", "neutral", "negative", "reach", "engagement")

    def counts(c: object) -> tuple[object, ...]:
        return tuple(getattr(c, f) for f in fields)

    for brand in ("Acme", "Globex"):
        assert counts(fast.totals[brand]) == counts(full.totals[brand])
        assert [counts(c) for c in fast.buckets[brand]] == [counts(c) for c in full.buckets[brand]]
        # NaN: never a number made up from a sum that was not read.
        assert math.isnan(fast.totals[brand].score_sum)
    assert full.totals["Acme"].mentions > 0
