"""The business gauges: mentions and net sentiment per brand over the last window, read
from the rollups, cached between scrapes, and on the API's /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine, insert

from services.api.brand_gauges import BrandWindowCollector
from services.core.clock import FrozenClock
from services.core.storage.db import make_engine, migrate, sqlite_url
from services.core.storage.tables import brand_minute_rollups, brands

NOW = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(sqlite_url(tmp_path))
    migrate(engine)
    with engine.begin() as conn:
        for name in ("Acme", "Globex", "Quiet"):
            conn.execute(
                insert(brands).values(
                    name=name, query="x", competitors=[], created_at=NOW, updated_at=NOW
                )
            )
    yield engine
    engine.dispose()


def add_minute(engine: Engine, brand: str, at: datetime, pos: int, neu: int, neg: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(brand_minute_rollups).values(
                brand=brand,
                minute=int(at.timestamp()) // 60 * 60,
                mentions=pos + neu + neg,
                positive=pos,
                neutral=neu,
                negative=neg,
                score_sum=0.0,
                reach=0,
                engagement=0,
            )
        )


def values(registry: CollectorRegistry, name: str) -> dict[str, float]:
    out = {}
    for family in registry.collect():
        for s in family.samples:
            if s.name == name:
                out[s.labels["brand"]] = s.value
    return out


def test_gauges_count_the_last_window_per_brand(engine: Engine) -> None:
    add_minute(engine, "Acme", NOW - timedelta(minutes=3), pos=3, neu=1, neg=1)
    add_minute(engine, "Acme", NOW - timedelta(minutes=14), pos=0, neu=0, neg=2)
    add_minute(engine, "Acme", NOW - timedelta(minutes=16), pos=9, neu=9, neg=9)  # too old
    add_minute(engine, "Globex", NOW, pos=0, neu=4, neg=0)
    add_minute(engine, "Untracked", NOW, pos=5, neu=0, neg=0)  # not a tracked brand
    registry = CollectorRegistry()
    registry.register(BrandWindowCollector(engine, FrozenClock(NOW)))

    assert values(registry, "sentimon_brand_recent_mentions") == {
        "Acme": 7,
        "Globex": 4,
        "Quiet": 0,
    }
    # Acme: (3 - 3) / 6; Globex and Quiet have no polar mention: no sample, not a 0.
    assert values(registry, "sentimon_brand_recent_net_sentiment_ratio") == {"Acme": 0.0}


def test_scrapes_within_the_cache_time_share_one_read(engine: Engine) -> None:
    clock = FrozenClock(NOW)
    ticks = [0.0]
    registry = CollectorRegistry()
    registry.register(BrandWindowCollector(engine, clock, cache_s=15, monotonic=lambda: ticks[0]))
    assert values(registry, "sentimon_brand_recent_mentions")["Acme"] == 0
    add_minute(engine, "Acme", NOW, pos=2, neu=0, neg=0)
    ticks[0] = 14.9
    assert values(registry, "sentimon_brand_recent_mentions")["Acme"] == 0  # cached
    ticks[0] = 15.0
    assert values(registry, "sentimon_brand_recent_mentions")["Acme"] == 2
    assert values(registry, "sentimon_brand_recent_net_sentiment_ratio") == {"Acme": 1.0}
    # The window moves with the clock: 20 minutes on, the mentions have left it.
    clock.advance(timedelta(minutes=20))
    ticks[0] = 30.0
    assert values(registry, "sentimon_brand_recent_mentions")["Acme"] == 0


def test_a_failing_database_keeps_the_last_figures(engine: Engine) -> None:
    add_minute(engine, "Acme", NOW, pos=1, neu=0, neg=0)
    ticks = [0.0]
    collector = BrandWindowCollector(engine, FrozenClock(NOW), monotonic=lambda: ticks[0])
    registry = CollectorRegistry()
    registry.register(collector)
    assert values(registry, "sentimon_brand_recent_mentions")["Acme"] == 1
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE brand_minute_rollups")
    ticks[0] = 100.0
    assert values(registry, "sentimon_brand_recent_mentions")["Acme"] == 1
    assert b"sentimon_brand_recent_mentions" in generate_latest(registry)


@pytest.fixture
def metrics_token(monkeypatch: pytest.MonkeyPatch) -> str:
    token = "scrape-token-for-the-brand-gauges"
    monkeypatch.setenv("SENTIMON_METRICS_TOKEN", token)
    return token


async def test_api_metrics_serve_the_brand_gauges(
    metrics_token: str, client: httpx.AsyncClient
) -> None:
    # Behind the metrics token (without one they are left out: tests/api/test_metrics_access.py).
    r = await client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    assert r.status_code == 200
    assert 'sentimon_brand_recent_mentions{brand="Acme"}' in r.text
    # Registered once however many apps are built on one Metrics.
    assert r.text.count("# TYPE sentimon_brand_recent_mentions gauge") == 1
