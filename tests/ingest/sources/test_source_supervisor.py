"""The supervisor: checkpoints stored only after their mentions were accepted, backoff
per connector without stopping the others, status and metrics; credentials never shown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.core.models import Author, Mention
from services.core.storage.db import make_engine, migrate, sqlite_url
from services.core.storage.sources import SourceStore
from services.ingest.sources.base import Batch, Checkpoint, Connector, Credentials, Runtime
from services.ingest.sources.config import RedditConfig, XConfig
from services.ingest.sources.errors import PlatformError, RateLimited
from services.ingest.sources.reddit import RedditConnector
from services.ingest.sources.supervisor import SourceSupervisor
from services.ingest.sources.x import XConnector
from tests.ingest.sources.fakes import (
    LOCAL_URLS,
    START,
    FakePlatform,
    FakeTime,
    Reply,
    eventually,
    recording_publisher,
)

BOUND_S = 10.0


def mention(n: int) -> Mention:
    return Mention(
        id=f"m{n}",
        source="rss",
        text=f"acme {n}",
        created_at=START - timedelta(minutes=n),
        author=Author(id="a", handle="a"),
    )


class Scripted(Connector):
    """Yields its script's batches, then fails with ``error`` (or waits forever)."""

    kind = "rss"

    def __init__(
        self, name: str, runtime: Runtime, script: Sequence[Batch], error: Exception | None
    ) -> None:
        super().__init__(name, runtime)
        self.script = list(script)
        self.error = error
        self.resumed_from: list[Checkpoint | None] = []

    async def batches(self, checkpoint: Checkpoint | None) -> AsyncGenerator[Batch, None]:
        self.resumed_from.append(checkpoint)
        start = int((checkpoint or {}).get("n", 0))
        for batch in self.script[start:]:
            yield batch
        if self.error is not None:
            raise self.error
        await asyncio.Event().wait()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SourceStore]:
    engine = make_engine(sqlite_url(tmp_path))
    migrate(engine)
    yield SourceStore(engine, FakeTime().clock)
    engine.dispose()


async def wait_for(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), BOUND_S)


async def test_a_checkpoint_is_stored_only_after_its_mentions_were_accepted(
    store: SourceStore,
) -> None:
    time = FakeTime(max_sleeps=0)
    publisher, producer, metrics = recording_publisher()
    runtime = Runtime(urls=LOCAL_URLS, clock=time.clock, sleep=time.sleep)
    script = [
        Batch([mention(1), mention(2)], {"n": 1}),
        Batch([mention(3), mention(4)], {"n": 2}),
    ]
    connector = Scripted("feeds", runtime, script, PlatformError("feed down", 503))
    supervisor = SourceSupervisor(publisher, store, metrics, runtime)
    producer.fail_after = 3  # the bus fails on the second batch's second mention
    supervisor.start_connector(connector)
    await wait_for(time.parked)
    stored = store.load_checkpoint("feeds")
    assert stored is not None and stored.state == {"n": 1}
    status = supervisor.status("feeds")
    assert status is not None and status.state == "backoff"
    assert status.last_error == "bus unavailable" and status.mentions_accepted == 2
    # The restart resumes after the last batch that was wholly accepted.
    time.release(1)
    await wait_for(time.parked)
    await supervisor.close()
    assert connector.resumed_from == [None, {"n": 1}]
    assert [m.id for m in producer.mentions()] == ["m1", "m2", "m3", "m4"]
    stored = store.load_checkpoint("feeds")
    assert stored is not None and stored.state == {"n": 2}


async def test_a_failing_source_backs_off_and_the_others_go_on(store: SourceStore) -> None:
    time = FakeTime(max_sleeps=4)
    publisher, producer, metrics = recording_publisher()
    runtime = Runtime(urls=LOCAL_URLS, clock=time.clock, sleep=time.sleep)
    broken = Scripted("broken", runtime, [], PlatformError("HTTP 503 from feed.example/", 503))
    healthy = Scripted("healthy", runtime, [Batch([mention(1)], {"n": 1})], None)
    supervisor = SourceSupervisor(publisher, store, metrics, runtime)
    supervisor.start_connector(broken)
    supervisor.start_connector(healthy)
    await wait_for(time.parked)
    await eventually(lambda: producer.sent, "the healthy source delivered")
    # Its status counts the batch once the publisher has answered (after the send).
    await eventually(
        lambda: (s := supervisor.status("healthy")) is not None and s.mentions_accepted == 1,
        "the healthy source's status counted its batch",
    )
    assert time.sleeps == [5.0, 10.0, 20.0, 40.0]  # exponential, in fake time
    status = supervisor.status("broken")
    assert status is not None
    assert status.state == "backoff" and status.consecutive_failures == 5
    assert status.last_error == "HTTP 503 from feed.example/"
    assert status.next_attempt_at is not None and status.next_attempt_at > time.clock.now()
    ok = supervisor.status("healthy")
    assert ok is not None and ok.state == "running" and ok.mentions_accepted == 1
    assert ok.last_success_at is not None
    lag = (ok.last_success_at - mention(1).created_at).total_seconds()
    assert ok.lag_seconds == lag and lag >= 60.0
    value = metrics.registry.get_sample_value
    assert value("sentimon_source_up", {"source": "broken"}) == 0
    assert value("sentimon_source_up", {"source": "healthy"}) == 1
    assert value("sentimon_source_polls_total", {"source_kind": "rss", "outcome": "error"}) == 5
    assert value("sentimon_source_lag_seconds", {"source": "healthy"}) == lag
    await supervisor.stop("broken", forget=True)
    assert supervisor.status("broken") is None
    assert value("sentimon_source_up", {"source": "broken"}) is None
    await supervisor.close()


async def test_a_rate_limited_source_waits_what_the_platform_said(store: SourceStore) -> None:
    time = FakeTime(max_sleeps=1)
    publisher, _, metrics = recording_publisher()
    runtime = Runtime(urls=LOCAL_URLS, clock=time.clock, sleep=time.sleep)
    limited = Scripted("limited", runtime, [], RateLimited("429 from api", 93.0))
    supervisor = SourceSupervisor(publisher, store, metrics, runtime)
    supervisor.start_connector(limited)
    await wait_for(time.parked)
    await supervisor.close()
    assert time.sleeps == [93.0]
    assert (
        metrics.registry.get_sample_value(
            "sentimon_source_polls_total", {"source_kind": "rss", "outcome": "rate_limited"}
        )
        == 2  # waited once, then parked on the second wait
    )


async def test_credentials_are_never_logged_or_shown(
    store: SourceStore, platform: FakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    reddit_secret, x_token = "reddit-secret-value-123", "x-bearer-token-value-456"
    creds = Credentials(
        x_bearer_token=SecretStr(x_token),
        reddit_client_id="app",
        reddit_client_secret=SecretStr(reddit_secret),
    )
    assert reddit_secret not in repr(creds) and x_token not in repr(creds)
    platform.on("POST", "/token", Reply(401, b'{"error": "invalid_grant"}'))
    platform.on("GET", "/2/tweets/search/stream/rules", Reply(403, b'{"title": "Forbidden"}'))
    time = FakeTime(max_sleeps=2)
    publisher, _, metrics = recording_publisher()
    runtime = Runtime(urls=LOCAL_URLS, clock=time.clock, sleep=time.sleep, credentials=creds)
    supervisor = SourceSupervisor(publisher, store, metrics, runtime)
    base = platform.base_url
    supervisor.start_connector(
        RedditConnector(
            RedditConfig(name="r", subreddits=["x1"], api_base=base, auth_url=f"{base}/token"),
            runtime,
        )
    )
    supervisor.start_connector(XConnector(XConfig(name="x", api_base=base), runtime))
    with caplog.at_level(logging.DEBUG):
        await wait_for(time.parked)
        await eventually(
            lambda: all(s.last_error for s in supervisor.statuses()), "both sources failed"
        )
    await supervisor.close()
    shown = caplog.text + repr(supervisor.statuses())
    assert "refused the credentials" in shown
    assert reddit_secret not in shown and x_token not in shown
