"""/api/v1/channels: Slack, Teams and email channels — created, shown with their URL
masked, changed, deleted; clear 422s naming the field (an address that is not one, a chat
URL that is not https or that the URL policy refuses); /api/v1/webhooks unchanged beside."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.alerts.settings import AlertSettings
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.core.storage.webhooks import enqueue_deliveries
from services.embedded import Embedded
from services.ingest.settings import IngestSettings
from services.scorer.settings import ScorerSettings
from tests.fixtures.app import TEST_BRANDS, Keys
from tests.fixtures.webhook_receiver import WebhookReceiver

CHANNELS = "/api/v1/channels"
HOOKS = "/api/v1/webhooks"
SECRET = "xoxChannelSecret9"


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Embedded]:
    data_dir = tmp_path / "data"
    emb = Embedded(
        ingest=IngestSettings(data_dir=data_dir, demo=False),
        scorer=ScorerSettings(data_dir=data_dir, scorer_mode="lexicon"),
        api=ApiSettings(data_dir=data_dir),
        alerts=AlertSettings(alerts_enabled=False),
    )
    async with emb:
        for name, query, competitors in TEST_BRANDS:
            emb.brands.create(name, query, competitors)
        yield emb


@pytest.fixture
async def loopback_client(embedded: Embedded) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose URL policy allows loopback (the local stand-ins)."""
    state = embedded.app_state()
    state.alerts = AlertSettings(webhook_allow_loopback=True)
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def fields(r: httpx.Response) -> list[str]:
    return [e["field"].removeprefix("body.") for e in r.json()["errors"]]


def slack_url(receiver: WebhookReceiver) -> str:
    return f"http://127.0.0.1:{receiver.port}/services/T1/B2/{SECRET}"


async def test_channels_crud_with_the_url_masked(
    loopback_client: httpx.AsyncClient,
    keys: Keys,
    webhook_receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = keys.header("admin")
    c = loopback_client
    r = await c.post(
        CHANNELS, json={"kind": "slack", "url": slack_url(webhook_receiver)}, headers=admin
    )
    assert r.status_code == 201, r.text
    slack = r.json()
    assert slack["url"] == f"http://127.0.0.1:{webhook_receiver.port}/services/****"
    assert (slack["kind"], slack["digest_minutes"], slack["to"]) == ("slack", None, None)
    r = await c.post(
        CHANNELS,
        json={"kind": "email", "to": ["oncall@example.com"], "digest_minutes": 30},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    mail = r.json()
    assert (mail["to"], mail["url"], mail["digest_minutes"]) == (["oncall@example.com"], None, 30)
    listed = (await c.get(CHANNELS, headers=admin)).json()
    assert [x["id"] for x in listed] == [slack["id"], mail["id"]]
    # The webhooks' API is as before: it neither lists nor serves channels.
    assert (await c.get(HOOKS, headers=admin)).json() == []
    assert (await c.get(f"{HOOKS}/{slack['id']}", headers=admin)).status_code == 404
    assert (await c.delete(f"{HOOKS}/{slack['id']}", headers=admin)).status_code == 404
    r = await c.patch(
        f"{CHANNELS}/{mail['id']}",
        json={"to": ["a@example.com", "b@example.org"], "digest_minutes": None},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["to"], r.json()["digest_minutes"]) == (
        ["a@example.com", "b@example.org"],
        None,
    )
    r = await c.patch(
        f"{CHANNELS}/{mail['id']}", json={"url": "https://x.example/y"}, headers=admin
    )
    assert (r.status_code, fields(r)) == (422, ["url"])
    r = await c.patch(f"{CHANNELS}/{slack['id']}", json={"to": ["a@example.com"]}, headers=admin)
    assert (r.status_code, fields(r)) == (422, ["to"])
    r = await c.patch(f"{CHANNELS}/{slack['id']}", json={"enabled": False}, headers=admin)
    assert r.json()["enabled"] is False and r.json()["url"].endswith("/****")
    # Every answer and log line so far: never the URL's secret.
    everything = [(await c.get(f"{CHANNELS}/{x['id']}", headers=admin)).text for x in listed]
    everything += [rec.getMessage() for rec in caplog.records]
    assert not [t for t in everything if SECRET in t]
    # Channels are for admins only.
    assert (await c.get(CHANNELS, headers=keys.header("viewer"))).status_code == 403
    assert (await c.delete(f"{CHANNELS}/{slack['id']}", headers=admin)).status_code == 204
    assert (await c.get(f"{CHANNELS}/{slack['id']}", headers=admin)).status_code == 404


async def test_a_channel_id_is_no_webhook_and_a_webhook_no_channel(
    loopback_client: httpx.AsyncClient, keys: Keys, webhook_receiver: WebhookReceiver
) -> None:
    admin = keys.header("admin")
    hook = await loopback_client.post(HOOKS, json={"url": webhook_receiver.url}, headers=admin)
    assert hook.status_code == 201
    hook_id = hook.json()["id"]
    assert (await loopback_client.get(f"{CHANNELS}/{hook_id}", headers=admin)).status_code == 404
    assert (await loopback_client.get(CHANNELS, headers=admin)).json() == []
    assert [h["id"] for h in (await loopback_client.get(HOOKS, headers=admin)).json()] == [hook_id]


@pytest.mark.parametrize(
    ("body", "field", "why"),
    [
        ({"kind": "email", "to": ["not-an-address"]}, "to[0]", "email address"),
        ({"kind": "email", "to": ["a@b.io", "oncall@localhost"]}, "to[1]", "email address"),
        ({"kind": "email", "to": ["a b@example.com"]}, "to[0]", "email address"),
        ({"kind": "email", "to": []}, "to", ""),
        ({"kind": "email"}, "to", "needs its recipients"),
        ({"kind": "email", "to": ["a@b.io"], "url": "https://1.1.1.1/x"}, "url", "no URL"),
        ({"kind": "slack", "url": "https://1.1.1.1/x", "to": ["a@b.io"]}, "to", "no recipients"),
        ({"kind": "slack", "url": "http://hooks.example.com/services/x"}, "url", "https"),
        ({"kind": "slack", "url": "https://127.0.0.1/services/x"}, "url", "loopback"),
        ({"kind": "teams", "url": "https://10.1.2.3/webhookb2/x"}, "url", "private"),
        ({"kind": "teams", "url": "https://169.254.169.254/x"}, "url", "link-local"),
        ({"kind": "slack", "url": "https://user:pw@hooks.example.com/x"}, "url", ""),
        ({"kind": "slack"}, "url", "needs its URL"),
        ({"kind": "sms", "url": "https://hooks.example.com/x"}, "kind", ""),
        ({"kind": "slack", "url": "https://1.1.1.1/x", "digest_minutes": 0}, "digest_minutes", ""),
        ({"kind": "email", "to": ["a@b.io"], "event_types": ["alert.x"]}, "event_types", ""),
    ],
)
async def test_bad_channels_are_422_naming_the_field(
    client: httpx.AsyncClient, keys: Keys, body: dict[str, Any], field: str, why: str
) -> None:
    r = await client.post(CHANNELS, json=body, headers=keys.header("admin"))
    assert r.status_code == 422, r.text
    assert fields(r) == [field], r.json()
    assert why in r.text
    assert (await client.get(CHANNELS, headers=keys.header("admin"))).json() == []


async def test_deliveries_show_each_attempt_and_digest_alerts(
    embedded: Embedded,
    loopback_client: httpx.AsyncClient,
    keys: Keys,
    webhook_receiver: WebhookReceiver,
) -> None:
    admin = keys.header("admin")
    r = await loopback_client.post(
        CHANNELS,
        json={"kind": "teams", "url": slack_url(webhook_receiver), "digest_minutes": 10},
        headers=admin,
    )
    channel = r.json()
    now = datetime.now(UTC)
    with embedded.engine.begin() as conn:
        for alert_id in (11, 12):
            envelope = {"type": "alert.negative_spike", "data": {"id": alert_id, "brand": "Acme"}}
            enqueue_deliveries(
                conn,
                alert_id=alert_id,
                event_type="alert.negative_spike",
                payload=orjson.dumps(envelope),
                now=now,
                give_up_at=now + timedelta(hours=1),
            )
    r = await loopback_client.get(f"{CHANNELS}/{channel['id']}", headers=admin)
    assert r.json()["digest_queued"] == 2
    path = f"{CHANNELS}/{channel['id']}/deliveries"
    assert (await loopback_client.get(path, headers=admin)).json() == []
    r = await loopback_client.post(f"{path}/999/redeliver", headers=admin)
    assert r.status_code == 404
