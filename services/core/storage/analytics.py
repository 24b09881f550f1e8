"""Aggregates answered from the rollups (never raw mentions): the API's analytics, the
alert evaluator's series and the brand gauges. Per-minute rollups by default; a caller that
needs no score sum and whole-hour buckets (share of voice) reads the period's whole hours
from the hourly rollups, which sum to the same counts (``tables.brand_role_hour_rollups``).

Ranges are half-open ``[start, end)`` in epoch seconds aligned to the minute; buckets
are aligned to multiples of the interval since the epoch (so daily buckets start at
midnight UTC). A mention that matches several brands counts once for each of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Connection, Engine, and_, cast, func, literal, select

from services.core.clock import Clock
from services.core.storage.tables import brand_minute_rollups as r
from services.core.storage.tables import brand_role_hour_rollups as rh
from services.core.storage.tables import brands as brand_table


@dataclass(slots=True)
class Counts:
    mentions: int = 0
    positive: int = 0
    neutral: int = 0
    negative: int = 0
    score_sum: float = 0.0
    reach: int = 0
    engagement: int = 0

    def add(self, other: Counts) -> None:
        self.mentions += other.mentions
        self.positive += other.positive
        self.neutral += other.neutral
        self.negative += other.negative
        self.score_sum += other.score_sum
        self.reach += other.reach
        self.engagement += other.engagement

    @property
    def net_sentiment(self) -> float | None:
        """(positive − negative) / (positive + negative); ``None`` with no opinionated mention."""
        polar = self.positive + self.negative
        return None if polar == 0 else (self.positive - self.negative) / polar

    @property
    def mean_score(self) -> float | None:
        return None if self.mentions == 0 else self.score_sum / self.mentions


@dataclass(slots=True)
class BrandBuckets:
    """Per-brand totals over the range and per bucket (every bucket present, zeros kept)."""

    bucket_starts: list[int]
    totals: dict[str, Counts]
    buckets: dict[str, list[Counts]] = field(default_factory=dict)


def bucket_starts(start: int, end: int, interval: int) -> list[int]:
    first = start - start % interval
    return list(range(first, end, interval))


def bucket_count(start: int, end: int, interval: int) -> int:
    """``len(bucket_starts(...))`` without building the list."""
    first = start - start % interval
    return max(0, -(-(end - first) // interval))


HOUR = 3_600


def brand_buckets(
    conn: Connection,
    brands: Sequence[str],
    start: int,
    end: int,
    interval: int,
    *,
    with_score: bool = True,
) -> BrandBuckets:
    """Sum the rollups of ``brands`` over ``[start, end)`` into buckets of ``interval`` seconds.

    ``with_score=False``: the caller never reads ``score_sum`` (it is NaN, so a mean read by
    mistake is no number rather than a wrong one); when ``interval`` is whole hours, the
    range's whole hours are then read from the hourly rollups (60 times fewer rows) and only
    its partial first and last hours from the minutes. Every other count is the same."""
    starts = bucket_starts(start, end, interval)
    index = {s: i for i, s in enumerate(starts)}
    out = BrandBuckets(
        bucket_starts=starts,
        totals={b: Counts() for b in brands},
        buckets={b: [Counts() for _ in starts] for b in brands},
    )
    if not brands or not starts:
        return out
    hours = (start + -start % HOUR, end - end % HOUR)
    if with_score or interval % HOUR or hours[0] >= hours[1]:
        spans = [(start, end, False)]
    else:
        spans = [(start, hours[0], False), (hours[0], hours[1], True), (hours[1], end, False)]
    for first, last, hourly in spans:
        if first >= last:
            continue
        rows = _hourly_sums if hourly else _minute_sums
        # Thousands of rows: summed field by field in place, no object per row (in the
        # rows' order, as before, so a float sum is the same to the last bit).
        for brand, b, n, pos, neu, neg, ssum, reach, eng in rows(
            conn, brands, first, last, interval
        ).all():
            n, pos, neu, neg = int(n), int(pos), int(neu), int(neg)
            reach, eng = int(reach), int(eng)
            score = float(ssum) if with_score else float("nan")
            for c in (out.buckets[brand][index[int(b)]], out.totals[brand]):
                c.mentions += n
                c.positive += pos
                c.neutral += neu
                c.negative += neg
                c.score_sum += score
                c.reach += reach
                c.engagement += eng
    return out


def _minute_sums(
    conn: Connection, brands: Sequence[str], start: int, end: int, interval: int
) -> Any:
    # Floor, not SQL's truncating %, so minutes before 1970 land in the right bucket.
    bucket = r.c.minute - ((r.c.minute % interval) + interval) % interval
    stmt = (
        select(
            r.c.brand,
            bucket.label("bucket"),
            # Bigint sums cast back from PostgreSQL's numeric (see ``_hourly_sums``).
            *(
                cast(func.sum(r.c[c]), BigInteger)
                for c in ("mentions", "positive", "neutral", "negative")
            ),
            func.sum(r.c.score_sum),
            cast(func.sum(r.c.reach), BigInteger),
            cast(func.sum(r.c.engagement), BigInteger),
        )
        .where(r.c.brand.in_(list(brands)), r.c.minute >= start, r.c.minute < end)
        .group_by(r.c.brand, bucket)
    )
    return conn.execute(stmt)


def _hourly_sums(
    conn: Connection, brands: Sequence[str], start: int, end: int, interval: int
) -> Any:
    """The hourly rollups summed over author roles; no score sum is kept there (0)."""
    # Hours are whole hours: an hourly bucket is the hour itself, no arithmetic per row.
    bucket = (
        rh.c.hour
        if interval == HOUR
        else rh.c.hour - ((rh.c.hour % interval) + interval) % interval
    )
    stmt = (
        select(
            rh.c.brand,
            bucket.label("bucket"),
            # PostgreSQL sums bigints as numeric, which the driver reads as a Decimal
            # each: cast back to bigint in SQL (thousands of rows, six sums a row).
            *(
                cast(func.sum(rh.c[c]), BigInteger)
                for c in ("mentions", "positive", "neutral", "negative")
            ),
            literal(0.0),
            cast(func.sum(rh.c.reach), BigInteger),
            cast(func.sum(rh.c.engagement), BigInteger),
        )
        .where(rh.c.brand.in_(list(brands)), rh.c.hour >= start, rh.c.hour < end)
        .group_by(rh.c.brand, bucket)
    )
    return conn.execute(stmt)


def first_minute(conn: Connection, brand: str) -> int | None:
    """The brand's first minute with rollups (epoch seconds), ``None`` if it has none."""
    value = conn.execute(select(func.min(r.c.minute)).where(r.c.brand == brand)).scalar_one()
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class BrandWindow:
    brand: str
    mentions: int
    positive: int
    negative: int

    @property
    def net_sentiment(self) -> float | None:
        """(positive - negative) / (positive + negative); None without either."""
        polar = self.positive + self.negative
        return None if polar == 0 else (self.positive - self.negative) / polar


def read_brand_windows(engine: Engine, since_minute: int) -> list[BrandWindow]:
    """Every tracked brand with its mentions from ``since_minute`` (epoch seconds) on, by
    name; brands without any count zero."""
    b = brand_table.c
    query = (
        select(
            b.name,
            func.coalesce(func.sum(r.c.mentions), 0),
            func.coalesce(func.sum(r.c.positive), 0),
            func.coalesce(func.sum(r.c.negative), 0),
        )
        .select_from(
            brand_table.outerjoin(r, and_(r.c.brand == b.name, r.c.minute >= since_minute))
        )
        .group_by(b.name)
        .order_by(b.name)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [BrandWindow(str(n), int(m), int(p), int(neg)) for n, m, p, neg in rows]


def weekly_volumes(engine: Engine, clock: Clock) -> dict[str, int]:
    """Every tracked brand's mentions over the last 7 days (zero for none), by name."""
    now = int(clock.now().timestamp())
    since = now - now % 60 - 7 * 86_400
    return {w.brand: w.mentions for w in read_brand_windows(engine, since)}
