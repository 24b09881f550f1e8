"""Business gauges for brand teams: mentions and net sentiment per brand over the last window.

Read from the per-minute rollups when Prometheus scrapes, at most once per ``cache_s``
(scrapes in between get the cached figures), one index range per tracked brand: the cost
is bounded by brands x window minutes, not by the size of the store. Mentions count by
their ``created_at`` minute, like every aggregate of the API.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, and_, func, select
from sqlalchemy.exc import SQLAlchemyError

from services.core.clock import Clock
from services.core.storage.tables import brand_minute_rollups, brands

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(minutes=15)
DEFAULT_CACHE_S = 15.0


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
    """Every tracked brand with its mentions from ``since_minute`` (epoch seconds) on;
    brands without any count zero."""
    r = brand_minute_rollups.c
    query = (
        select(
            brands.c.name,
            func.coalesce(func.sum(r.mentions), 0),
            func.coalesce(func.sum(r.positive), 0),
            func.coalesce(func.sum(r.negative), 0),
        )
        .select_from(
            brands.outerjoin(
                brand_minute_rollups,
                and_(r.brand == brands.c.name, r.minute >= since_minute),
            )
        )
        .group_by(brands.c.name)
        .order_by(brands.c.name)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [BrandWindow(str(n), int(m), int(p), int(neg)) for n, m, p, neg in rows]


def brand_families(
    windows: Sequence[BrandWindow], window: timedelta
) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    minutes = round(window.total_seconds() / 60)
    mentions = GaugeMetricFamily(
        "sentimon_brand_recent_mentions",
        f"Mentions of the brand created in the last {minutes} minutes (from the rollups).",
        labels=["brand"],
    )
    net = GaugeMetricFamily(
        "sentimon_brand_recent_net_sentiment_ratio",
        f"Net sentiment of the brand's mentions of the last {minutes} minutes: "
        "(positive - negative) / (positive + negative), from -1 to 1; absent without either.",
        labels=["brand"],
    )
    for w in windows:
        mentions.add_metric([w.brand], w.mentions)
        if (value := w.net_sentiment) is not None:
            net.add_metric([w.brand], value)
    return mentions, net


class BrandWindowCollector(Collector):
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        window: timedelta = DEFAULT_WINDOW,
        cache_s: float = DEFAULT_CACHE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._window = window
        self._cache_s = cache_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._cached: list[BrandWindow] = []

    def collect(self) -> Iterable[Metric]:
        with self._lock:  # concurrent scrapes share one query
            now = self._monotonic()
            if now - self._read_at >= self._cache_s:
                since = int((self._clock.now() - self._window).timestamp()) // 60 * 60
                try:
                    self._cached = read_brand_windows(self._engine, since)
                    self._read_at = now
                except SQLAlchemyError:  # a scrape must not fail because the database did
                    log.warning("brand gauges: reading the rollups failed", exc_info=True)
            windows = self._cached
        return brand_families(windows, self._window)

    def describe(self) -> Iterable[Metric]:
        # Describing without collecting: registering must not query the database.
        return brand_families((), self._window)
