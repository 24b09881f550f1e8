"""/api/v1/alert-rules, /api/v1/alerts and /api/v1/webhooks: CRUD, roles, and clear
422s (naming the field) for bad rules and URLs, 413 for oversized bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.alerts.detection import AlertKind, RuleParams, Verdict
from services.alerts.evaluator import alert_document
from services.alerts.settings import AlertSettings
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.core.storage.alerts import AlertRuleStore, store_alert
from services.embedded import Embedded
from services.ingest.settings import IngestSettings
from services.scorer.settings import ScorerSettings
from tests.fixtures.app import TEST_BRANDS, Keys
from tests.fixtures.webhook_receiver import WebhookReceiver

RULES = "/api/v1/alert-rules"
ALERTS = "/api/v1/alerts"
HOOKS = "/api/v1/webhooks"


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Embedded]:
    """The shared fixture's instance, scoring with the lexicon only (these tests store no
    scored mentions, so they do not need the transformer model) and no background alert
    loops (these tests drive the stores and the API)."""
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
    """A client of an app whose webhook policy allows loopback (as tests need)."""
    state = embedded.app_state()
    state.alerts = AlertSettings(webhook_allow_loopback=True)
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def fields(r: httpx.Response) -> list[str]:
    """The fields an error names, without FastAPI's ``body.`` prefix."""
    return [e["field"].removeprefix("body.") for e in r.json()["errors"]]


async def test_rules_create_read_update_delete(client: httpx.AsyncClient, keys: Keys) -> None:
    admin = keys.header("admin")
    r = await client.post(RULES, json={"brand": "Acme", "kind": "negative_spike"}, headers=admin)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["window_minutes"] == 15 and rule["baseline_days"] == 7
    assert rule["sensitivity"] == 1e-5 and rule["enabled"] is True
    r = await client.get(RULES, headers=keys.header("viewer"))
    assert [x["id"] for x in r.json()] == [rule["id"]]
    r = await client.put(
        f"{RULES}/{rule['id']}",
        json={"brand": "Acme", "kind": "negative_share", "window_minutes": 30, "min_count": 20},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["kind"], r.json()["window_minutes"], r.json()["min_count"]) == (
        "negative_share",
        30,
        20,
    )
    assert (await client.get(f"{RULES}/{rule['id']}", headers=admin)).json() == r.json()
    assert (await client.delete(f"{RULES}/{rule['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"{RULES}/{rule['id']}", headers=admin)).status_code == 404


async def test_only_admins_manage_rules(client: httpx.AsyncClient, keys: Keys) -> None:
    body = {"brand": "Acme", "kind": "negative_spike"}
    for role in ("viewer", "analyst"):
        r = await client.post(RULES, json=body, headers=keys.header(role))
        assert r.status_code == 403, r.text
    assert (await client.post(RULES, json=body)).status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "positive_spike"}, "kind"),
        ({"window_minutes": 7}, "window_minutes"),
        ({"window_minutes": 2}, "window_minutes"),
        ({"sensitivity": 0.5}, "sensitivity"),
        ({"sensitivity": 0}, "sensitivity"),
        ({"min_count": 0}, "min_count"),
        ({"baseline_days": 90}, "baseline_days"),
        ({"baseline_days": 2, "warmup_days": 5}, "warmup_days"),
        ({"cooldown_minutes": -1}, "cooldown_minutes"),
        ({"brand": "a/b"}, "brand"),
        ({"colour": "red"}, "colour"),
        ({"brand": "x" * 500}, "brand"),
    ],
)
async def test_bad_rules_are_422_naming_the_field(
    client: httpx.AsyncClient, keys: Keys, change: dict[str, Any], field: str
) -> None:
    body = {"brand": "Acme", "kind": "negative_spike", **change}
    r = await client.post(RULES, json=body, headers=keys.header("admin"))
    assert r.status_code == 422, r.text
    assert field in fields(r), r.json()
    assert (await client.get(RULES, headers=keys.header("admin"))).json() == []


async def test_a_rule_for_an_untracked_brand_is_404_naming_the_brand(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    body = {"brand": "Nope", "kind": "negative_spike"}
    r = await client.post(RULES, json=body, headers=keys.header("admin"))
    assert r.status_code == 404, r.text
    assert r.json()["errors"][0]["field"] == "brand"


@pytest.mark.parametrize("enabled", [0, 1, "true", None])
async def test_enabled_must_be_a_json_boolean(
    client: httpx.AsyncClient, keys: Keys, enabled: object
) -> None:
    body = {"brand": "Acme", "kind": "negative_spike", "enabled": enabled}
    r = await client.post(RULES, json=body, headers=keys.header("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "body.enabled"


async def test_a_baseline_shorter_than_the_default_warmup_is_refused_not_stored(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    body = {"brand": "Acme", "kind": "negative_spike", "baseline_days": 1}
    r = await client.post(RULES, json=body, headers=keys.header("admin"))
    assert r.status_code == 422, r.text
    assert "warmup_days" in r.json()["detail"]


async def test_a_huge_rule_body_is_413(client: httpx.AsyncClient, keys: Keys) -> None:
    body = '{"brand": "Acme", "kind": "negative_spike", "pad": "' + "x" * 100_000 + '"}'
    r = await client.post(
        RULES,
        content=body,
        headers={**keys.header("admin"), "content-type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert fields(r) == ["body"]


async def test_webhooks_crud_and_the_secret_is_shown_once(
    loopback_client: httpx.AsyncClient, keys: Keys, webhook_receiver: WebhookReceiver
) -> None:
    admin = keys.header("admin")
    r = await loopback_client.post(HOOKS, json={"url": webhook_receiver.url}, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == sorted(
        ["alert.negative_spike", "alert.negative_share", "alert.volume_spike"]
    )
    hook_id = created["id"]
    listed = (await loopback_client.get(HOOKS, headers=admin)).json()
    assert [h["id"] for h in listed] == [hook_id]
    assert "secret" not in listed[0]
    r = await loopback_client.patch(
        f"{HOOKS}/{hook_id}",
        json={"enabled": False, "event_types": ["alert.volume_spike"]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["enabled"], r.json()["event_types"]) == (False, ["alert.volume_spike"])
    assert (await loopback_client.get(f"{HOOKS}/{hook_id}/deliveries", headers=admin)).json() == []
    assert (await loopback_client.delete(f"{HOOKS}/{hook_id}", headers=admin)).status_code == 204
    assert (await loopback_client.get(f"{HOOKS}/{hook_id}", headers=admin)).status_code == 404
    # Webhooks (URLs, secrets) are for admins only.
    assert (await loopback_client.get(HOOKS, headers=keys.header("viewer"))).status_code == 403


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://hooks.example.com/x", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("hooks.example.com/x", "scheme"),
        ("http:///path-only", "host"),
        ("http://user:pw@hooks.example.com/", "credentials"),
        ("http://127.0.0.1:9000/hook", "loopback"),
        ("http://localhost:9000/hook", "loopback"),  # the resolved address is what counts
        ("http://[::1]/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.10/hook", "private"),
        ("http://[::ffff:172.16.0.1]/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://0.0.0.0/hook", "not a unicast"),
        ("http://224.0.0.1/hook", "not a unicast"),
        ("https://hooks.example.com/" + "a" * 3000, "2048"),
        ("http://hooks.example.com/a b", "whitespace"),
        ("http://no-such-host.invalid/hook", "does not resolve"),
    ],
)
async def test_bad_webhook_urls_are_422(
    client: httpx.AsyncClient, keys: Keys, url: str, why: str
) -> None:
    r = await client.post(HOOKS, json={"url": url}, headers=keys.header("admin"))
    assert r.status_code == 422, r.text
    assert fields(r) == ["url"], r.json()
    assert why in r.json()["detail"], r.json()["detail"]
    assert (await client.get(HOOKS, headers=keys.header("admin"))).json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_types": ["alert.everything"]}, "event_types"),
        ({"event_types": []}, "event_types"),
        ({"secret": "not-a-secret"}, "secret"),
        ({"secret": "whsec_c2hvcnQ="}, "secret"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_webhook_fields_are_422(
    loopback_client: httpx.AsyncClient,
    keys: Keys,
    webhook_receiver: WebhookReceiver,
    body: dict[str, Any],
    field: str,
) -> None:
    r = await loopback_client.post(
        HOOKS, json={"url": webhook_receiver.url, **body}, headers=keys.header("admin")
    )
    assert r.status_code == 422, r.text
    assert any(f.startswith(field) for f in fields(r)), r.json()


async def test_a_huge_webhook_body_is_413(client: httpx.AsyncClient, keys: Keys) -> None:
    url = "https://hooks.example.com/" + "a" * 200_000
    r = await client.post(HOOKS, json={"url": url}, headers=keys.header("admin"))
    assert r.status_code == 413, r.text


def fake_alert(embedded: Embedded, rule_id: int, start: datetime) -> None:
    rule = AlertRuleStore(embedded.engine, embedded.clock).get(rule_id)
    verdict = Verdict(True, 30.0, 3.0, 1e-9, 8.0, "negative_binomial", "fired", 30, 40)
    store_alert(
        embedded.engine,
        rule,
        start,
        lambda i, at: alert_document(i, rule, start, verdict, [], [], created_at=at),
        now=start + timedelta(minutes=15),
        observed=30.0,
        expected=3.0,
        p_value=1e-9,
        retry_max_age=timedelta(hours=24),
    )


async def test_alerts_are_listed_with_filters_and_pages_and_redelivered(
    embedded: Embedded,
    loopback_client: httpx.AsyncClient,
    keys: Keys,
    webhook_receiver: WebhookReceiver,
) -> None:
    admin, viewer = keys.header("admin"), keys.header("viewer")
    hook = (
        await loopback_client.post(HOOKS, json={"url": webhook_receiver.url}, headers=admin)
    ).json()
    rules = AlertRuleStore(embedded.engine, embedded.clock)
    acme = rules.create("Acme", RuleParams(kind=AlertKind.NEGATIVE_SPIKE, cooldown_s=0)).id
    globex = rules.create("Globex", RuleParams(kind=AlertKind.VOLUME_SPIKE, cooldown_s=0)).id
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for i in range(5):
        fake_alert(embedded, acme, t0 + timedelta(hours=i))
    fake_alert(embedded, globex, t0)

    r = await loopback_client.get(ALERTS, params={"brand": "Acme", "limit": "2"}, headers=viewer)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [a["window"]["start"] for a in page["items"]] == [
        (t0 + timedelta(hours=4)).isoformat(),
        (t0 + timedelta(hours=3)).isoformat(),
    ]
    seen = [a["id"] for a in page["items"]]
    while page["next_cursor"]:
        page = (
            await loopback_client.get(
                ALERTS,
                params={"brand": "Acme", "limit": "2", "cursor": page["next_cursor"]},
                headers=viewer,
            )
        ).json()
        seen += [a["id"] for a in page["items"]]
    assert len(seen) == len(set(seen)) == 5
    r = await loopback_client.get(
        ALERTS,
        params={
            "from": (t0 + timedelta(hours=1)).isoformat(),
            "to": (t0 + timedelta(hours=3)).isoformat(),
        },
        headers=viewer,
    )
    assert len(r.json()["items"]) == 2
    r = await loopback_client.get(ALERTS, params={"kind": "volume_spike"}, headers=viewer)
    assert [a["brand"] for a in r.json()["items"]] == ["Globex"]
    one = (await loopback_client.get(f"{ALERTS}/{seen[0]}", headers=viewer)).json()
    assert one["id"] == seen[0] and one["brand"] == "Acme"
    assert (await loopback_client.get(f"{ALERTS}/999999", headers=viewer)).status_code == 404
    bad = await loopback_client.get(ALERTS, params={"cursor": "garbage"}, headers=viewer)
    assert bad.status_code == 422 and fields(bad) == ["cursor"]
    bad = await loopback_client.get(ALERTS, params={"from": "2026-03-02T10:00:00"}, headers=viewer)
    assert bad.status_code == 422 and "from" in fields(bad)[0]

    # Every alert queued a delivery for the endpoint; one can be sent again by hand.
    r = await loopback_client.get(f"{HOOKS}/{hook['id']}/deliveries", headers=admin)
    ds = r.json()
    assert len(ds) == 6 and {d["event_type"] for d in ds} == {
        "alert.negative_spike",
        "alert.volume_spike",
    }
    r = await loopback_client.post(
        f"{HOOKS}/{hook['id']}/deliveries/{ds[0]['id']}/redeliver", headers=admin
    )
    assert r.status_code == 202, r.text
    assert r.json()["webhook_id"] == ds[0]["webhook_id"] and r.json()["status"] == "pending"
    r = await loopback_client.post(
        f"{HOOKS}/{hook['id']}/deliveries/999999/redeliver", headers=admin
    )
    assert r.status_code == 404
