"""Webhook delivery against a real receiver on 127.0.0.1 that verifies every signature
with the ``standardwebhooks`` library. The retry schedule runs on an injected clock;
only the HTTP is real."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.alerts.delivery import DeliveryWorker, backoff_delay, parse_retry_after
from services.alerts.settings import AlertSettings
from services.core.clock import FrozenClock
from services.core.metrics import Metrics
from services.core.storage.db import make_engine, migrate
from services.core.storage.webhooks import WebhookStore, enqueue_deliveries
from tests.fixtures.webhook_receiver import SECRET, Answer, WebhookReceiver

NOW = datetime.now(UTC).replace(microsecond=0)
SETTINGS = AlertSettings(webhook_allow_loopback=True, webhook_timeout_s=2.0)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    migrate(e)
    yield e
    e.dispose()


def enqueue(engine: Engine, clock: FrozenClock, n: int, settings: AlertSettings = SETTINGS) -> None:
    with engine.begin() as conn:
        for i in range(n):
            body = {
                "type": "alert.negative_spike",
                "timestamp": clock.now().isoformat(),
                "data": {"id": i + 1},
            }
            enqueue_deliveries(
                conn,
                alert_id=i + 1,
                event_type="alert.negative_spike",
                payload=orjson.dumps(body),
                now=clock.now(),
                give_up_at=clock.now() + timedelta(seconds=settings.webhook_retry_max_age_s),
            )


def worker(
    engine: Engine, clock: FrozenClock, metrics: Metrics, settings: AlertSettings = SETTINGS
) -> DeliveryWorker:
    return DeliveryWorker(WebhookStore(engine, clock), settings, clock, metrics)


async def advance_and_deliver(w: DeliveryWorker, store: WebhookStore, clock: FrozenClock) -> int:
    """Move the clock to the next due delivery and run one pass."""
    due = store.next_due()
    if due is not None and due > clock.now():
        clock.advance(due - clock.now())
    return await w.deliver_due()


def deliveries(store: WebhookStore, endpoint_id: int) -> list[Any]:
    return sorted(store.deliveries(endpoint_id, limit=200), key=lambda d: d.id)


async def test_every_delivery_is_signed_and_verifies(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    endpoint = store.create(webhook_receiver.url, ["alert.negative_spike"], SECRET)
    other = store.create(webhook_receiver.url + "/share-only", ["alert.negative_share"], SECRET)
    enqueue(engine, clock, 3)
    metrics = Metrics(CollectorRegistry())
    assert await worker(engine, clock, metrics).deliver_due() == 3
    got = webhook_receiver.received
    assert [r.verified for r in got] == [True, True, True]
    assert sorted(r.payload["data"]["id"] for r in got) == [1, 2, 3]
    assert {r.path for r in got} == {"/hooks/sentimon"}  # not subscribed: the other endpoint
    assert store.deliveries(other.id) == []
    for d in deliveries(store, endpoint.id):
        assert d.status == "delivered"
        assert [(a.attempt, a.status_code, a.outcome) for a in d.attempt_log] == [
            (1, 204, "delivered")
        ]
    assert sorted(webhook_receiver.ids()) == sorted(
        d.webhook_id for d in deliveries(store, endpoint.id)
    )
    assert (
        metrics.registry.get_sample_value(
            "sentimon_webhook_deliveries_total", {"outcome": "delivered"}
        )
        == 3
    )
    assert await worker(engine, clock, metrics).deliver_due() == 0  # nothing sent twice


async def test_a_wrong_secret_does_not_verify(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    # The receiver's check is real: a delivery signed with another secret fails it.
    clock = FrozenClock(NOW)
    WebhookStore(engine, clock).create(webhook_receiver.url, ["alert.negative_spike"])
    enqueue(engine, clock, 1)
    await worker(engine, clock, Metrics(CollectorRegistry())).deliver_due()
    assert [r.verified for r in webhook_receiver.received] == [False]


async def test_receiver_down_then_back_every_alert_once_with_growing_intervals(
    engine: Engine, webhook_receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "services.alerts.delivery")
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    endpoint = store.create(webhook_receiver.url, ["alert.negative_spike"], SECRET)
    webhook_receiver.stop()
    enqueue(engine, clock, 3)
    metrics = Metrics(CollectorRegistry())
    w = worker(engine, clock, metrics)
    passes = 0
    while min(d.attempts for d in deliveries(store, endpoint.id)) < 6:
        passes += 1
        assert passes < 50
        if passes == 6:  # the process restarts mid-outage: a new worker, same outbox
            w = worker(make_engine(str(engine.url)), clock, metrics)
        await advance_and_deliver(w, store, clock)
    assert [d.attempts for d in deliveries(store, endpoint.id)] == [6, 6, 6]
    webhook_receiver.start()
    while any(d.status == "pending" for d in deliveries(store, endpoint.id)):
        passes += 1
        assert passes < 100
        await advance_and_deliver(w, store, clock)
    assert await w.deliver_due() == 0

    ds = deliveries(store, endpoint.id)
    # Every alert delivered, each webhook-id exactly once, every signature valid.
    assert sorted(webhook_receiver.ids()) == sorted(d.webhook_id for d in ds)
    assert all(r.verified for r in webhook_receiver.received)
    for d in ds:
        assert d.status == "delivered"
        log = d.attempt_log
        assert [a.outcome for a in log] == ["retrying"] * 6 + ["delivered"]
        assert all(a.error and "ConnectError" in a.error for a in log[:6])
        waits = [
            (a.next_attempt_at - a.started_at).total_seconds() for a in log[:6] if a.next_attempt_at
        ]
        assert waits == sorted(waits) and waits[-1] > 4 * waits[0], waits
        assert SETTINGS.webhook_retry_base_s / 2 <= waits[0] <= SETTINGS.webhook_retry_base_s
    assert (
        metrics.registry.get_sample_value(
            "sentimon_webhook_deliveries_total", {"outcome": "retrying"}
        )
        == 18
    )
    assert sum("retrying in" in r.getMessage() for r in caplog.records) == 18


async def test_500_is_retried_429_waits_for_retry_after_410_disables(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    endpoint = store.create(webhook_receiver.url, ["alert.negative_spike"], SECRET)
    enqueue(engine, clock, 1)
    w = worker(engine, clock, Metrics(CollectorRegistry()))
    webhook_receiver.script = [Answer(500), Answer(429, {"Retry-After": "600"}), Answer(410)]
    await advance_and_deliver(w, store, clock)  # 500
    await advance_and_deliver(w, store, clock)  # 429, Retry-After: 600
    (d,) = deliveries(store, endpoint.id)
    first, second = d.attempt_log
    assert (first.status_code, first.outcome) == (500, "retrying")
    assert (second.status_code, second.outcome) == (429, "retrying")
    assert second.next_attempt_at - second.started_at == timedelta(seconds=600)
    clock.advance(timedelta(seconds=599))
    assert await w.deliver_due() == 0  # not before Retry-After has passed
    await advance_and_deliver(w, store, clock)  # 410 Gone
    (d,) = deliveries(store, endpoint.id)
    assert d.status == "failed"
    assert d.attempt_log[-1].outcome == "endpoint_gone"
    gone = store.get(endpoint.id)
    assert not gone.enabled and "410" in (gone.disabled_reason or "")
    # A disabled endpoint gets nothing more: alerts raised meanwhile are not queued for it.
    enqueue(engine, clock, 1)
    assert await w.deliver_due() == 0
    assert len(deliveries(store, endpoint.id)) == 1
    assert len(webhook_receiver.received) == 3
    assert {r.webhook_id for r in webhook_receiver.received} == {d.webhook_id}
    # Re-enabled (PATCH enabled=true), it receives the next alerts again.
    store.update(endpoint.id, enabled=True)
    enqueue(engine, clock, 1)
    assert await w.deliver_due() == 1


async def test_a_redirect_is_not_followed(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    endpoint = store.create(webhook_receiver.url, ["alert.negative_spike"], SECRET)
    enqueue(engine, clock, 1)
    webhook_receiver.script = [Answer(307, {"Location": webhook_receiver.url + "/elsewhere"})]
    await worker(engine, clock, Metrics(CollectorRegistry())).deliver_due()
    (d,) = deliveries(store, endpoint.id)
    assert d.status == "pending"
    assert "not followed" in (d.attempt_log[0].error or "")
    assert [r.path for r in webhook_receiver.received] == ["/hooks/sentimon"]


async def test_a_slow_receiver_times_out_and_is_retried(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    endpoint = store.create(webhook_receiver.url, ["alert.negative_spike"], SECRET)
    enqueue(engine, clock, 1)
    release = threading.Event()
    webhook_receiver.script = [Answer(204, delay_event=release)]
    settings = AlertSettings(webhook_allow_loopback=True, webhook_timeout_s=0.3)
    try:
        await worker(engine, clock, Metrics(CollectorRegistry()), settings).deliver_due()
    finally:
        release.set()
    (d,) = deliveries(store, endpoint.id)
    assert d.status == "pending"
    assert d.attempt_log[0].outcome == "retrying"
    assert "timed out" in (d.attempt_log[0].error or "")


async def test_retries_stop_at_the_give_up_time(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    endpoint = store.create(webhook_receiver.url, ["alert.negative_spike"], SECRET)
    settings = AlertSettings(webhook_allow_loopback=True, webhook_retry_max_age_s=600)
    enqueue(engine, clock, 1, settings)
    webhook_receiver.script = [Answer(503)] * 20
    w = worker(engine, clock, Metrics(CollectorRegistry()), settings)
    for _ in range(10):
        await advance_and_deliver(w, store, clock)
    (d,) = deliveries(store, endpoint.id)
    assert d.status == "failed"
    assert d.attempt_log[-1].outcome == "gave_up"
    assert all(a.started_at <= d.give_up_at for a in d.attempt_log)
    # A manual redelivery sends it again, under the same webhook-id.
    store.redeliver(endpoint.id, d.id, timedelta(hours=1))
    webhook_receiver.script = []
    assert await w.deliver_due() == 1
    assert deliveries(store, endpoint.id)[0].status == "delivered"
    assert set(webhook_receiver.ids()) == {d.webhook_id}


async def test_a_refused_address_is_not_sent_to(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    # Saved while loopback was allowed; the check before each send uses today's settings.
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    endpoint = store.create(webhook_receiver.url, ["alert.negative_spike"], SECRET)
    enqueue(engine, clock, 1)
    strict = AlertSettings(webhook_allow_loopback=False)
    await worker(engine, clock, Metrics(CollectorRegistry()), strict).deliver_due()
    (d,) = deliveries(store, endpoint.id)
    assert d.attempt_log[0].outcome == "refused"
    assert "loopback" in (d.attempt_log[0].error or "")
    assert webhook_receiver.received == []


async def test_a_worker_that_dies_mid_send_is_retried_under_the_same_id(
    engine: Engine, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    endpoint = store.create(webhook_receiver.url, ["alert.negative_spike"], SECRET)
    enqueue(engine, clock, 1)
    dying = worker(engine, clock, Metrics(CollectorRegistry()))

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("process killed before recording the attempt")

    monkeypatch.setattr(dying._store, "record_attempt", crash)
    with pytest.raises(RuntimeError):
        await dying.deliver_due()
    other = worker(make_engine(str(engine.url)), clock, Metrics(CollectorRegistry()))
    assert await other.deliver_due() == 0  # the dead worker's lease still holds it
    clock.advance(timedelta(seconds=SETTINGS.webhook_timeout_s + 31))
    assert await other.deliver_due() == 1
    ids = webhook_receiver.ids()
    assert len(ids) == 2 and ids[0] == ids[1]  # sent twice, but as one message: receivers dedupe
    assert deliveries(store, endpoint.id)[0].status == "delivered"


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    lows = [backoff_delay(n, 30, 3600, 0.0) for n in range(1, 12)]
    highs = [backoff_delay(n, 30, 3600, 0.999) for n in range(1, 12)]
    assert lows[:4] == [15, 30, 60, 120]
    assert all(h < 2 * low + 1e-6 for low, h in zip(lows, highs, strict=True))
    # The longest wait after attempt n never exceeds the shortest after attempt n+1.
    assert all(highs[i] <= lows[i + 1] + 1e-6 for i in range(len(lows) - 1) if lows[i + 1] < 1800)
    assert max(highs) <= 3600


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("Mon, 02 Mar 2026 10:05:00 GMT", now) == 300
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


async def test_the_send_connects_to_the_address_that_was_checked(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    # DNS rebinding: a name that resolves to a public address when checked and to an
    # internal one when connecting. The send must connect to the checked address: here
    # the name resolves (for the check) to the receiver's loopback address and nowhere
    # else — no real resolver knows it, so an unpinned send could not connect at all.
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    url = f"http://hooks.rebind.test:{webhook_receiver.port}/hooks/sentimon"
    endpoint = store.create(url, ["alert.negative_spike"], SECRET)
    enqueue(engine, clock, 1)
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    w = DeliveryWorker(
        WebhookStore(engine, clock), SETTINGS, clock, Metrics(CollectorRegistry()), resolve=resolve
    )
    await w.deliver_due()
    (d,) = deliveries(store, endpoint.id)
    assert d.status == "delivered", d.attempt_log
    assert lookups == ["hooks.rebind.test"]  # resolved once, for the check
    assert webhook_receiver.received[0].verified


@pytest.mark.parametrize(
    "address",
    ["2002:7f00:1::", "2002:a00:1::", "64:ff9b::a9fe:a9fe", "::127.0.0.1", "::ffff:10.0.0.1"],
)
def test_ipv6_forms_of_internal_ipv4_addresses_are_refused(address: str) -> None:
    from services.core.urls import WebhookUrlError, check_webhook_url

    with pytest.raises(WebhookUrlError, match="refused"):
        check_webhook_url(f"http://[{address}]/x", allow_loopback=False, allow_private=False)
