"""The distributed ``sentimon ingest`` runs the platform connectors: a feed named in
``SENTIMON_SOURCES_FILE`` is read, its mentions go through Kafka and the scorer into
PostgreSQL, and the connector's checkpoint is stored; a feed added through a running
``sentimon api`` is picked up by the running ingest within its refresh interval."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from services.core.auth import Role
from services.core.clock import SystemClock
from services.core.sources import SourceStatus
from services.core.storage.keys import KeyStore
from services.core.storage.sources import SourceStore
from services.core.storage.tables import mentions, source_checkpoints
from tests.fixtures.distributed import DistributedStack, close_stack, open_stack
from tests.fixtures.kafka import KafkaBroker
from tests.fixtures.live_server import wait_until
from tests.fixtures.postgres import PostgresServer
from tests.ingest.sources.fakes import FakePlatform, Reply, fixture_bytes

FEED_ITEMS = 3  # entries of tests/fixtures/sources/rss/google_alerts.atom
# The feed server is on 127.0.0.1, which the source URL policy refuses by default; the
# API checks a source's URLs with the same policy as the ingest, so both get it.
LOCAL_FEEDS = {"SENTIMON_SOURCE_ALLOW_LOOPBACK": "true"}


@pytest.fixture
def feed_server() -> Iterator[FakePlatform]:
    server = FakePlatform().start()
    server.on("GET", "/alerts.atom", Reply(200, fixture_bytes("rss", "google_alerts.atom")))
    yield server
    server.stop()


@pytest.fixture
def stack_with_acme(
    tmp_path: Path, distributed_kafka: KafkaBroker, postgres_server: PostgresServer
) -> Iterator[DistributedStack]:
    stack = open_stack(tmp_path, distributed_kafka, postgres_server, brands=[("Acme", '"acme"')])
    try:
        yield stack
    finally:
        close_stack(stack)


def test_the_ingest_process_reads_the_sources_file_feeds(
    stack_with_acme: DistributedStack, feed_server: FakePlatform, tmp_path: Path
) -> None:
    stack = stack_with_acme
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"- name: alerts\n  kind: rss\n  feeds:\n    - url: {feed_server.base_url}/alerts.atom\n"
    )
    scorer = stack.service("scorer", "scorer")
    ingest = stack.service("ingest", "ingest", SENTIMON_SOURCES_FILE=str(sources), **LOCAL_FEEDS)
    scorer.start()
    ingest.start()
    ingest.wait_ready()
    scorer.wait_ready()

    def stored() -> list[str] | None:
        with stack.engine.connect() as conn:
            ids = list(
                conn.execute(
                    select(mentions.c.mention_id).where(mentions.c.source == "rss")
                ).scalars()
            )
        return ids if len(ids) == FEED_ITEMS else None

    ids = wait_until(stored, timeout_s=120, what="the feed's mentions stored")
    assert all(i.startswith("tag:google.com,2013:googlealerts/feed:") for i in ids)
    with stack.engine.connect() as conn:
        assert conn.execute(select(source_checkpoints.c.source)).scalars().all() == ["alerts"]
    assert feed_server.hits("GET", "/alerts.atom")
    assert ingest.terminate() == 0, ingest.log_tail()
    assert scorer.terminate() == 0, scorer.log_tail()


REFRESH_S = 1.0
# Picked up "within the refresh interval", plus what a loaded machine adds: a check's
# query, the connector's start, its first request.
PICKUP_BOUND_S = REFRESH_S + 15.0


def test_a_source_added_through_the_api_reaches_the_running_ingest(
    stack_with_acme: DistributedStack, feed_server: FakePlatform
) -> None:
    stack = stack_with_acme
    ingest = stack.service(
        "ingest", "ingest", SENTIMON_SOURCES_REFRESH_S=str(REFRESH_S), **LOCAL_FEEDS
    )
    api = stack.service("api", "api", **LOCAL_FEEDS)
    ingest.start()
    api.start()
    ingest.wait_ready()
    api.wait_ready()
    admin = KeyStore(stack.engine, SystemClock()).create(Role.ADMIN, "test admin")[0]
    store = SourceStore(stack.engine, SystemClock())
    url = f"http://127.0.0.1:{api.port}/api/v1/sources"
    headers = {"Authorization": f"Bearer {admin}"}
    body = {
        "name": "alerts",
        "kind": "rss",
        "feeds": [{"url": f"{feed_server.base_url}/alerts.atom"}],
    }

    added = time.monotonic()
    r = httpx.post(url, json=body, headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["status"]["state"] == "pending"  # no ingest has written one yet
    wait_until(
        lambda: feed_server.hits("GET", "/alerts.atom"),
        timeout_s=PICKUP_BOUND_S,
        what="the running ingest reads the feed added through the API",
    )
    assert time.monotonic() - added < PICKUP_BOUND_S

    def healthy() -> SourceStatus | None:
        s = store.load_status("alerts")
        return s if s is not None and s.mentions_accepted == FEED_ITEMS else None

    status = wait_until(healthy, timeout_s=30, what="the source's stored status healthy")
    assert status.state == "running" and status.last_error is None
    assert status.consecutive_failures == 0 and status.last_success_at is not None
    shown = httpx.get(f"{url}/alerts/status", headers=headers, timeout=30).json()
    assert shown["state"] == "running" and shown["mentions_accepted"] == FEED_ITEMS

    # Disabled through the API: the ingest stops it, and says so in the store.
    r = httpx.put(f"{url}/alerts", json={**body, "enabled": False}, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    wait_until(
        lambda: (s := store.load_status("alerts")) is not None and s.state == "disabled",
        timeout_s=PICKUP_BOUND_S,
        what="the ingest stopped the disabled source",
    )
    assert ingest.terminate() == 0, ingest.log_tail()
    assert api.terminate() == 0, api.log_tail()
