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
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from services.core.clock import Clock

# Re-exported: the benchmark (tests/bench/bench_brand_gauges.py) measures the read here.
from services.core.storage.analytics import BrandWindow as BrandWindow
from services.core.storage.analytics import read_brand_windows as read_brand_windows

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(minutes=15)
DEFAULT_CACHE_S = 15.0


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
