"""Source configurations and status in the store: a status reads back as written, only
for sources that are configured, and goes with its source; the version changes with
every configuration change."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from services.core.clock import FrozenClock
from services.core.sources import MastodonConfig, RssConfig, SourceStatus
from services.core.storage.db import make_engine, migrate
from services.core.storage.sources import SourceStore

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FEED = RssConfig(name="alerts", feeds=[{"url": "https://a.example/feed"}])


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def store(database_url: str, clock: FrozenClock) -> Iterator[SourceStore]:
    engine = make_engine(database_url)
    migrate(engine)
    yield SourceStore(engine, clock)
    engine.dispose()


def test_a_status_reads_back_as_written(store: SourceStore) -> None:
    store.create(FEED)
    assert store.load_status("alerts") is None
    written = SourceStatus(
        name="alerts",
        kind="rss",
        state="backoff",
        last_success_at=T0 - timedelta(minutes=5),
        last_error="HTTP 503 from a.example",
        last_error_at=T0 - timedelta(seconds=3),
        consecutive_failures=2,
        next_attempt_at=T0 + timedelta(seconds=10),
        lag_seconds=42.5,
        mentions_accepted=3_000_000_000,  # counters outgrow 32 bits
        mentions_duplicate=7,
        records_invalid=1,
    )
    store.save_statuses([written])
    assert store.load_status("alerts") == written
    recovered = SourceStatus("alerts", "rss", "running", last_success_at=T0)
    store.save_statuses([recovered])  # replaces the last one whole
    assert store.load_status("alerts") == recovered


def test_statuses_exist_only_for_configured_sources(store: SourceStore) -> None:
    store.create(FEED)
    store.save_statuses(
        [SourceStatus("alerts", "rss", "running"), SourceStatus("gone", "rss", "running")]
    )
    assert store.load_status("gone") is None  # deleted before its ingest wrote
    store.save_checkpoint("alerts", {"cursor": 1})
    store.delete("alerts")
    assert store.load_status("alerts") is None and store.load_checkpoint("alerts") is None


def test_another_kind_forgets_checkpoint_and_status(store: SourceStore) -> None:
    store.create(FEED)
    store.save_checkpoint("alerts", {"cursor": 1})
    store.save_statuses([SourceStatus("alerts", "rss", "running")])
    store.replace(RssConfig(name="alerts", feeds=[{"url": "https://b.example/feed"}]))
    assert store.load_checkpoint("alerts") is not None and store.load_status("alerts") is not None
    store.replace(MastodonConfig(name="alerts", instance="https://m.example"))
    assert store.load_checkpoint("alerts") is None and store.load_status("alerts") is None
    store.save_checkpoint("alerts", {"min_id": "9"})
    store.forget("alerts")
    assert store.load_checkpoint("alerts") is None
    assert store.get("alerts").kind == "mastodon"


def test_the_version_changes_with_every_configuration_change(
    store: SourceStore, clock: FrozenClock
) -> None:
    seen = {store.version()}
    changes: list[Callable[[], None]] = [
        lambda: store.create(FEED),
        lambda: store.replace(FEED.model_copy(update={"enabled": False})),
        lambda: store.create(FEED.model_copy(update={"name": "blog"})),
        lambda: store.delete("alerts"),
    ]
    for change in changes:
        clock.advance(timedelta(seconds=1))
        change()
        version = store.version()
        assert version not in seen
        seen.add(version)
    store.save_statuses([SourceStatus("blog", "rss", "running")])
    store.save_checkpoint("blog", {"cursor": 2})
    assert store.version() in seen  # status and checkpoints are no configuration change
    assert [e.config.name for e in store.entries()] == ["blog"] == [c.name for c in store.list()]
    assert store.entries()[0].created_at == T0 + timedelta(seconds=3)
