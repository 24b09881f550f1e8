"""Alerts wired into the embedded service: its evaluator stores an alert and its
background delivery worker sends it, signed, to a real receiver."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry

from services.alerts.detection import AlertKind, RuleParams
from services.alerts.runtime import attach_alerts
from services.alerts.settings import AlertSettings
from services.api.settings import ApiSettings
from services.api.state import process_state
from services.core.clock import FrozenClock
from services.core.metrics import Metrics
from services.core.storage.alerts import AlertRuleStore, list_alerts
from services.core.storage.db import make_engine, migrate
from services.core.storage.webhooks import WebhookStore, enqueue_deliveries
from services.core.storage.writer import MentionWriter
from services.embedded import Embedded
from services.ingest.settings import IngestSettings
from services.scorer.settings import ScorerSettings
from tests.alerts.test_evaluator import BURST_START, burst_records, load_rollups
from tests.fixtures.synthetic_traffic import synthetic_timeline
from tests.fixtures.webhook_receiver import SECRET, WebhookReceiver

WAIT_S = 20.0


async def wait_for(check: object, what: str) -> None:
    """Await until ``check()`` is true (bounded); the event loop keeps running meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    event = asyncio.Event()
    while not check():  # type: ignore[operator]
        if loop.time() > deadline:
            raise TimeoutError(f"{what}: not after {WAIT_S:.0f} s")
        # A bounded wait on an event nobody sets: yields to the worker between checks.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), 0.02)


async def test_the_embedded_service_evaluates_and_delivers(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    data_dir = tmp_path / "data"
    clock = FrozenClock(BURST_START + timedelta(minutes=25))
    emb = Embedded(
        ingest=IngestSettings(data_dir=data_dir, demo=False),
        scorer=ScorerSettings(data_dir=data_dir, scorer_mode="lexicon"),
        api=ApiSettings(data_dir=data_dir),
        clock=clock,
        # The evaluator's own loop waits an hour: the test runs a pass itself.
        alerts=AlertSettings(webhook_allow_loopback=True, alerts_evaluate_interval_s=3600),
    )
    async with emb:
        emb.brands.create("Acme", '"acme"')
        await asyncio.to_thread(load_rollups, emb.engine, synthetic_timeline(days=11, seed=7))
        MentionWriter(emb.engine, clock).write(burst_records(40))
        AlertRuleStore(emb.engine, clock).create("Acme", RuleParams(kind=AlertKind.NEGATIVE_SPIKE))
        hooks = WebhookStore(emb.engine, clock)
        endpoint = hooks.create(webhook_receiver.url, ["alert.negative_spike"], SECRET)

        # The evaluator's loop ran its first pass at start; this one sees the rule.
        await asyncio.to_thread(emb.alert_runtime.evaluator.evaluate_once)
        with emb.engine.connect() as conn:
            fired = list_alerts(conn)
        assert len(fired) == 1
        # The alert woke the worker: it is delivered without waiting for the next poll.
        await wait_for(lambda: webhook_receiver.received, "the alert delivered")
        (got,) = webhook_receiver.received
        assert got.verified
        assert got.payload["data"]["id"] == fired[0].id
        await wait_for(
            lambda: hooks.deliveries(endpoint.id)[0].status == "delivered", "delivery recorded"
        )
        assert orjson.loads(hooks.deliveries(endpoint.id)[0].payload) == got.payload
    assert (
        emb.metrics.registry.get_sample_value(
            "sentimon_webhook_deliveries_total", {"outcome": "delivered"}
        )
        == 1.0
    )


async def test_attach_alerts_runs_beside_an_api_process(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    # What `sentimon api` does with its AppState: the routes get the runtime's settings and
    # wake-up, and the worker delivers what is due.
    engine = make_engine(f"sqlite:///{tmp_path / 'api.db'}")
    migrate(engine)
    state = process_state(ApiSettings(data_dir=tmp_path), engine)
    state.metrics = Metrics(CollectorRegistry())
    settings = AlertSettings(webhook_allow_loopback=True, alerts_evaluate_interval_s=3600)
    runtime = attach_alerts(state, settings)
    try:
        assert state.alerts is settings
        assert state.wake_delivery is not None
        hooks = WebhookStore(engine, state.clock)
        endpoint = hooks.create(webhook_receiver.url, ["alert.volume_spike"], SECRET)
        with engine.begin() as conn:
            now = state.clock.now()
            enqueue_deliveries(
                conn,
                alert_id=1,
                event_type="alert.volume_spike",
                payload=b'{"type": "alert.volume_spike"}',
                now=now,
                give_up_at=now + timedelta(hours=1),
            )
        state.wake_delivery()
        await wait_for(lambda: webhook_receiver.received, "the delivery sent")
        await wait_for(
            lambda: hooks.deliveries(endpoint.id)[0].status == "delivered", "delivery recorded"
        )
        assert webhook_receiver.received[0].verified
    finally:
        await runtime.stop()
        engine.dispose()
