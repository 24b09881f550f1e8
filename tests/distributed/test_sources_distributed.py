"""The distributed ``sentimon ingest`` runs the platform connectors: a feed named in
``SENTIMON_SOURCES_FILE`` is read, its mentions go through Kafka and the scorer into
PostgreSQL, and the connector's checkpoint is stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from services.core.storage.tables import mentions, source_checkpoints
from tests.fixtures.distributed import DistributedStack, close_stack, open_stack
from tests.fixtures.kafka import KafkaBroker
from tests.fixtures.live_server import wait_until
from tests.fixtures.postgres import PostgresServer
from tests.ingest.sources.fakes import FakePlatform, Reply, fixture_bytes

FEED_ITEMS = 3  # entries of tests/fixtures/sources/rss/google_alerts.atom


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
    ingest = stack.service("ingest", "ingest", SENTIMON_SOURCES_FILE=str(sources))
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
