"""A push the bus cannot take is answered 503 with Retry-After, quickly, and loses nothing:
at once while the bus reports a problem, at the push deadline when the bus hangs
(``services/ingest/http.py``). Against real Kafka: ``tests/distributed/test_broker_outage.py``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from services.core.auth import Role
from services.core.bus.protocol import Producer, RecordMetadata
from services.core.clock import SystemClock
from services.core.metrics import Metrics
from services.core.storage.db import make_engine, migrate, sqlite_url
from services.core.storage.keys import KeyStore
from services.ingest.accept import MentionPublisher
from services.ingest.dedupe import RecentKeys
from services.ingest.http import PushEndpoint
from services.ingest.main import create_ingest_app
from services.runtime.probes import Probes
from tests.fixtures.mentions import mention_doc


@dataclass
class HangingProducer(Producer):
    """A producer whose sends never return while ``hanging`` (a broker that is away and
    a client that waits for it), and are acknowledged at once otherwise."""

    hanging: bool = True
    sent: list[bytes] = field(default_factory=list)

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> RecordMetadata:
        if self.hanging:
            await asyncio.Event().wait()  # never set: only the push deadline ends it
        self.sent.append(value)
        return RecordMetadata(topic, 0, len(self.sent) - 1)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


@dataclass
class Push:
    client: TestClient
    producer: HangingProducer
    metrics: Metrics
    headers: dict[str, str]
    problem: list[str]

    def refused_sends(self) -> float:
        value = self.metrics.registry.get_sample_value(
            "sentimon_bus_broker_unavailable_total", {"operation": "send"}
        )
        return value or 0.0


@pytest.fixture
def push(tmp_path: Path) -> Iterator[Push]:
    engine = make_engine(sqlite_url(tmp_path))
    migrate(engine)
    keys = KeyStore(engine, SystemClock())
    key, _ = keys.create(Role.INGEST, "test ingest")
    metrics = Metrics(CollectorRegistry())
    producer = HangingProducer()
    problem: list[str] = []
    endpoint = PushEndpoint(
        publisher=MentionPublisher(producer, RecentKeys(100), metrics),
        keys=keys,
        metrics=metrics,
        max_body_bytes=1 << 20,
        max_items=100,
        bus_problem=lambda: problem[0] if problem else None,
        timeout_s=0.3,
    )
    app = create_ingest_app(Probes(engine, metrics), endpoint)
    with TestClient(app) as client:
        yield Push(client, producer, metrics, {"Authorization": f"Bearer {key}"}, problem)
    engine.dispose()


def test_a_push_while_the_bus_reports_a_problem_is_refused_at_once(push: Push) -> None:
    push.problem.append("kafka: broker 127.0.0.1:9092 unreachable for 4 s (connection refused)")
    r = push.client.post("/api/v1/mentions", json=[mention_doc()], headers=push.headers)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert "kafka: broker 127.0.0.1:9092 unreachable" in r.json()["detail"]
    assert push.producer.sent == []
    assert push.refused_sends() == 1


def test_a_push_the_bus_does_not_take_in_time_is_refused_and_can_be_sent_again(
    push: Push,
) -> None:
    docs = [mention_doc(id=f"m-{i}") for i in range(3)]
    started = time.monotonic()
    r = push.client.post("/api/v1/mentions", json=docs, headers=push.headers)
    took = time.monotonic() - started
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert "not every mention was taken within 0.3 s" in r.json()["detail"]
    assert took < 5, f"the push hung {took:.1f} s"
    assert push.refused_sends() == 1

    # The broker is back: the same push is taken whole, none of it a "duplicate" of the
    # sends that were cut off (they were never acknowledged).
    push.producer.hanging = False
    r = push.client.post("/api/v1/mentions", json=docs, headers=push.headers)
    assert r.status_code == 202
    assert r.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert len(push.producer.sent) == 3
