"""Source status in the store: a change of state or an error is written at once, a busy
source's counters about once a second; no credential ever reaches the table."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from services.core.sources import RedditConfig, SourceStatus
from services.core.storage.db import make_engine, migrate, sqlite_url
from services.core.storage.sources import SourceStore
from services.core.storage.tables import source_status
from services.ingest.sources.base import Credentials, Runtime
from services.ingest.sources.status import StatusWriter
from services.ingest.sources.supervisor import SourceSupervisor
from tests.ingest.sources.fakes import (
    LOCAL_URLS,
    START,
    FakePlatform,
    FakeTime,
    Reply,
    eventually,
    recording_publisher,
)


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Saved:
    def __init__(self) -> None:
        self.batches: list[list[SourceStatus]] = []

    def __call__(self, statuses: Sequence[SourceStatus]) -> None:
        self.batches.append(list(statuses))

    def last(self, name: str) -> SourceStatus | None:
        found = [s for b in self.batches for s in b if s.name == name]
        return found[-1] if found else None


async def test_counters_wait_for_the_throttle_and_state_changes_and_errors_do_not() -> None:
    clock, saved = Monotonic(), Saved()
    writer = StatusWriter(saved, throttle_s=1.0, monotonic=clock)
    running = SourceStatus("feed", "rss", "running")
    writer.set(running)
    assert writer.due(clock.now) == (["feed"], None)  # never written: at once
    await writer.flush()
    busier = replace(running, mentions_accepted=5)
    writer.set(busier)
    clock.now += 0.25
    assert writer.due(clock.now) == ([], 0.75)  # a counter: after the throttle
    clock.now += 0.75
    assert writer.due(clock.now) == (["feed"], None)
    writer.set(replace(busier, mentions_accepted=9, state="backoff"))
    assert writer.due(clock.now)[0] == ["feed"]  # a state change: at once
    await writer.flush()
    writer.set(replace(writer.get("feed") or running, last_error="HTTP 503", last_error_at=START))
    assert writer.due(clock.now)[0] == ["feed"]  # a new error: at once
    await writer.flush()
    assert [b[0].mentions_accepted for b in saved.batches] == [0, 9, 9]
    writer.set(writer.get("feed") or running)  # unchanged: nothing to write
    assert writer.due(clock.now) == ([], None)
    await writer.forget("feed")
    assert writer.get("feed") is None and writer.all() == []


async def test_a_busy_source_is_written_about_once_a_throttle() -> None:
    saved = Saved()
    writer = StatusWriter(saved, throttle_s=0.2)
    status = SourceStatus("feed", "rss", "running")
    writer.set(status)
    await writer.flush()
    for n in range(1, 201):
        writer.set(replace(status, mentions_accepted=n))
    assert len(saved.batches) == 1
    run = asyncio.create_task(writer.run())
    await eventually(
        lambda: (s := saved.last("feed")) is not None and s.mentions_accepted == 200,
        "the last counters written",
    )
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    assert len(saved.batches) == 2  # 200 changes, one write


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(sqlite_url(tmp_path))
    migrate(engine)
    yield engine
    engine.dispose()


async def test_no_credential_reaches_the_status_table(
    engine: Engine, platform: FakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "reddit-secret-value-789"
    platform.on(
        "POST",
        "/token",
        Reply(401, b'{"error": "invalid_grant", "echo": "' + secret.encode() + b'"}'),
    )
    base = platform.base_url
    store = SourceStore(engine, FakeTime().clock)
    store.create(RedditConfig(name="r", subreddits=["x1"], api_base=base, auth_url=f"{base}/token"))
    time = FakeTime(max_sleeps=1)
    publisher, _, metrics = recording_publisher()
    creds = Credentials(reddit_client_id="app", reddit_client_secret=SecretStr(secret))
    runtime = Runtime(urls=LOCAL_URLS, clock=time.clock, sleep=time.sleep, credentials=creds)
    supervisor = SourceSupervisor(publisher, store, metrics, runtime)
    with caplog.at_level(logging.DEBUG):
        await supervisor.reconcile()
        await eventually(
            lambda: (s := store.load_status("r")) is not None and s.last_error,
            "the failure stored",
        )
    await supervisor.close()
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(source_status))]
    assert rows and "refused the credentials" in repr(rows)
    assert secret not in repr(rows) and secret not in caplog.text
