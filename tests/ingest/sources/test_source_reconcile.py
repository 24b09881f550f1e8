"""A running supervisor follows the store: sources added, changed, deleted or created
again are started, restarted from their checkpoint, stopped and forgotten, or started
afresh; an idle check reads only the store's version."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.core.clock import FrozenClock
from services.core.sources import RssConfig, SourceConfig
from services.core.storage.db import make_engine, migrate, sqlite_url
from services.core.storage.sources import SourceStore, StoredSource
from services.ingest.sources.base import Batch, Checkpoint, Connector, Runtime
from services.ingest.sources.reconcile import SourceChanges, plan_changes
from services.ingest.sources.supervisor import SourceSupervisor
from tests.ingest.sources.fakes import LOCAL_URLS, FakeTime, eventually, recording_publisher

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def feed(name: str, url: str = "https://a.example/feed", *, enabled: bool = True) -> RssConfig:
    return RssConfig(name=name, feeds=[{"url": url}], enabled=enabled)


def entry(config: SourceConfig, created_at: datetime = T0) -> StoredSource:
    return StoredSource(config, created_at)


def test_the_plan_starts_restarts_renews_and_stops_by_the_stored_configurations() -> None:
    running = {
        "same": entry(feed("same")),
        "changed": entry(feed("changed")),
        "again": entry(feed("again")),
        "gone": entry(feed("gone")),
    }
    stored = [
        entry(feed("again"), T0 + timedelta(seconds=1)),  # deleted and created again
        entry(feed("changed", "https://b.example/feed")),
        entry(feed("new")),
        entry(feed("same")),
    ]
    changes = plan_changes(running, stored)
    assert [e.config.name for e in changes.start] == ["new"]
    assert [e.config.name for e in changes.restart] == ["changed"]
    assert [e.config.name for e in changes.renew] == ["again"]
    assert changes.stop == ("gone",)
    assert plan_changes(running, list(running.values())) == SourceChanges()
    assert not plan_changes(running, list(running.values()))


@dataclass
class FakeConnectors:
    """Builds connectors that yield one batch (checkpoint ``{"n": previous + 1}``) and
    then wait; records what each started from and which were stopped."""

    started: list[tuple[str, str, Checkpoint | None]] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def __call__(self, config: SourceConfig, runtime: Runtime) -> Connector:
        assert isinstance(config, RssConfig)
        return _OneBatch(config.name, runtime, config.feeds[0].url, self)


class _OneBatch(Connector):
    kind = "rss"

    def __init__(self, name: str, runtime: Runtime, url: str, log: FakeConnectors) -> None:
        super().__init__(name, runtime)
        self.url = url
        self.log = log

    async def batches(self, checkpoint: Checkpoint | None) -> AsyncGenerator[Batch, None]:
        self.log.started.append((self.name, self.url, checkpoint))
        try:
            yield Batch([], {"n": int((checkpoint or {}).get("n", 0)) + 1})
            await asyncio.Event().wait()
        finally:
            self.log.stopped.append(self.name)


class CountingStore(SourceStore):
    """Counts the reads of every configuration (an idle check must not make any)."""

    reads = 0

    def entries(self) -> list[StoredSource]:
        self.reads += 1
        return super().entries()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FrozenClock) -> Iterator[CountingStore]:
    engine = make_engine(sqlite_url(tmp_path))
    migrate(engine)
    yield CountingStore(engine, clock)
    engine.dispose()


def supervisor_for(
    store: SourceStore, connectors: FakeConnectors, refresh_s: float = 5.0
) -> SourceSupervisor:
    publisher, _, metrics = recording_publisher()
    time = FakeTime()
    runtime = Runtime(urls=LOCAL_URLS, clock=time.clock, sleep=time.sleep)
    return SourceSupervisor(
        publisher, store, metrics, runtime, factory=connectors, refresh_s=refresh_s
    )


def checkpoint_n(store: SourceStore, name: str) -> object:
    stored = store.load_checkpoint(name)
    return None if stored is None else stored.state.get("n")


async def running(store: SourceStore, *names: str) -> tuple[SourceSupervisor, FakeConnectors]:
    """A supervisor that has started and read the feeds ``names`` it found in the store."""
    connectors = FakeConnectors()
    supervisor = supervisor_for(store, connectors)
    for name in names:
        store.create(feed(name))
    await supervisor.reconcile()
    await eventually(
        lambda: all(checkpoint_n(store, n) == 1 for n in names), f"{', '.join(names)} read"
    )
    return supervisor, connectors


async def test_reconcile_starts_restarts_and_stops_sources_as_the_store_changes(
    store: CountingStore, clock: FrozenClock
) -> None:
    supervisor, connectors = await running(store, "a", "b")
    assert sorted(connectors.started) == [
        ("a", "https://a.example/feed", None),
        ("b", "https://a.example/feed", None),
    ]

    # Nothing changed: one version query, no read of the configurations.
    reads = store.reads
    await supervisor.reconcile()
    assert store.reads == reads and len(connectors.started) == 2

    clock.advance(timedelta(seconds=1))
    store.replace(feed("a", "https://b.example/feed"))  # changed: resumes from its checkpoint
    store.delete("b")  # deleted: stopped, its checkpoint and status forgotten
    store.create(feed("c", enabled=False))  # disabled: no connector, status "disabled"
    await supervisor.reconcile()
    assert sorted(connectors.stopped) == ["a", "b"]
    await eventually(lambda: len(connectors.started) == 3, "a started again")
    assert connectors.started[2] == ("a", "https://b.example/feed", {"n": 1})
    assert store.load_checkpoint("b") is None and supervisor.status("b") is None
    await eventually(lambda: checkpoint_n(store, "a") == 2, "a read again after its checkpoint")
    await eventually(
        lambda: (s := store.load_status("c")) is not None and s.state == "disabled",
        "the disabled source's status stored",
    )
    await supervisor.close()
    assert store.load_status("b") is None
    stored_a = store.load_status("a")
    assert stored_a is not None and stored_a.state == "stopped"


async def test_a_source_created_again_under_its_name_starts_afresh(
    store: CountingStore, clock: FrozenClock
) -> None:
    supervisor, connectors = await running(store, "a")
    clock.advance(timedelta(seconds=1))
    store.delete("a")
    store.create(feed("a"))
    await supervisor.reconcile()
    await eventually(lambda: len(connectors.started) == 2, "a started again")
    assert connectors.started[1] == ("a", "https://a.example/feed", None)
    await supervisor.close()


async def test_watch_picks_up_a_source_added_while_it_runs_and_ends_on_close(
    store: CountingStore,
) -> None:
    connectors = FakeConnectors()
    supervisor = supervisor_for(store, connectors, refresh_s=0.05)
    supervisor.start_watching()
    supervisor.start_watching()  # once only
    await eventually(lambda: store.reads >= 1, "the first check")
    store.create(feed("late"))
    await eventually(lambda: connectors.started, "the source added later started")
    await eventually(
        lambda: (s := store.load_status("late")) is not None and s.state == "running",
        "its status stored",
    )
    await asyncio.wait_for(supervisor.close(), 10.0)
    assert connectors.stopped == ["late"]
