"""Snooze and acknowledge over the API (issue 17 §5): who may, what is recorded, and
422s naming ``body.until``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jsonschema
import pytest

from services.alerts.detection import AlertKind, RuleParams, Verdict
from services.alerts.evaluator import alert_document
from services.alerts.settings import AlertSettings
from services.api.settings import ApiSettings
from services.core.alerting import severity
from services.core.storage.alerts import AlertRuleStore, store_alert
from services.embedded import Embedded
from services.ingest.settings import IngestSettings
from services.scorer.settings import ScorerSettings
from tests.fixtures.app import TEST_BRANDS, Keys

RULES = "/api/v1/alert-rules"
ALERTS = "/api/v1/alerts"
SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "alert.v1.json").read_text())
ALERT = {**SCHEMA["$defs"]["alert"], "$defs": SCHEMA["$defs"]}


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Embedded]:
    """Lexicon scoring, no background alert loops: these tests drive the store and API."""
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


def stored_alert(embedded: Embedded, rule_id: int, start: datetime, p_value: float) -> int:
    rule = AlertRuleStore(embedded.engine, embedded.clock).get(rule_id)
    verdict = Verdict(True, 30.0, 3.0, p_value, 8.0, "negative_binomial", "fired", 30, 40)
    alert = store_alert(
        embedded.engine,
        rule,
        start,
        lambda i, at: alert_document(i, rule, start, verdict, [], [], created_at=at),
        now=start + timedelta(minutes=15),
        observed=30.0,
        expected=3.0,
        p_value=p_value,
        retry_max_age=timedelta(hours=24),
    )
    assert alert is not None
    return alert.id


async def new_rule(client: httpx.AsyncClient, keys: Keys) -> int:
    r = await client.post(
        RULES, json={"brand": "Acme", "kind": "volume_spike"}, headers=keys.header("admin")
    )
    assert r.status_code == 201, r.text
    rule_id: int = r.json()["id"]
    return rule_id


async def test_snooze_is_shown_on_the_rule_and_unsnooze_clears_it(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    rule_id = await new_rule(client, keys)
    admin = keys.header("admin")
    until = (embedded.clock.now() + timedelta(hours=2)).replace(microsecond=0)
    r = await client.post(
        f"{RULES}/{rule_id}/snooze", json={"until": until.isoformat()}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["snoozed_until"]) == until
    r = await client.get(f"{RULES}/{rule_id}", headers=keys.header("viewer"))
    assert datetime.fromisoformat(r.json()["snoozed_until"]) == until
    assert AlertRuleStore(embedded.engine, embedded.clock).get(rule_id).snoozed_until == until

    r = await client.delete(f"{RULES}/{rule_id}/snooze", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["snoozed_until"] is None
    assert AlertRuleStore(embedded.engine, embedded.clock).get(rule_id).snoozed_until is None


@pytest.mark.parametrize(
    "until",
    [
        "past",
        "too far",
        "2030-01-01T00:00:00",  # no offset
        "1767225600",
        None,
    ],
)
async def test_a_bad_snooze_is_422_naming_body_until(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded, until: str | None
) -> None:
    rule_id = await new_rule(client, keys)
    now = embedded.clock.now()
    when: object = {
        "past": (now - timedelta(minutes=1)).isoformat(),
        "too far": (now + timedelta(days=91)).isoformat(),
    }.get(str(until), until)
    r = await client.post(
        f"{RULES}/{rule_id}/snooze", json={"until": when}, headers=keys.header("admin")
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["body.until"]
    assert AlertRuleStore(embedded.engine, embedded.clock).get(rule_id).snoozed_until is None


async def test_only_admins_snooze_and_a_missing_rule_is_404(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    rule_id = await new_rule(client, keys)
    body = {"until": (embedded.clock.now() + timedelta(hours=1)).isoformat()}
    for role in ("analyst", "viewer"):
        r = await client.post(f"{RULES}/{rule_id}/snooze", json=body, headers=keys.header(role))
        assert r.status_code == 403, r.text
        r = await client.delete(f"{RULES}/{rule_id}/snooze", headers=keys.header(role))
        assert r.status_code == 403, r.text
    r = await client.post(f"{RULES}/{rule_id + 1}/snooze", json=body, headers=keys.header("admin"))
    assert r.status_code == 404, r.text
    r = await client.delete(f"{RULES}/{rule_id + 1}/snooze", headers=keys.header("admin"))
    assert r.status_code == 404, r.text


async def test_an_analyst_acknowledges_once_and_the_first_acknowledgement_is_kept(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    rule_id = await new_rule(client, keys)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    alert_id = stored_alert(embedded, rule_id, start, 3e-8)
    r = await client.get(f"{ALERTS}/{alert_id}", headers=keys.header("viewer"))
    assert "acknowledged_at" not in r.json()
    assert r.json()["severity"] == "high"

    before = embedded.clock.now()
    r = await client.post(f"{ALERTS}/{alert_id}/ack", headers=keys.header("analyst"))
    assert r.status_code == 200, r.text
    acked = r.json()
    jsonschema.validate(acked, ALERT)
    assert acked["acknowledged_by"]["name"] == "test analyst"
    assert keys.analyst.startswith(f"smk_{acked['acknowledged_by']['key']}_")
    when = datetime.fromisoformat(acked["acknowledged_at"])
    assert before <= when <= embedded.clock.now()

    r = await client.post(f"{ALERTS}/{alert_id}/ack", headers=keys.header("admin"))
    assert r.status_code == 200, r.text
    assert r.json() == acked, "acknowledging again keeps the first"
    r = await client.get(f"{ALERTS}/{alert_id}", headers=keys.header("viewer"))
    assert r.json() == acked


async def test_acknowledge_refuses_viewers_and_unknown_alerts(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    rule_id = await new_rule(client, keys)
    alert_id = stored_alert(embedded, rule_id, datetime(2026, 3, 2, 9, 0, tzinfo=UTC), 1e-6)
    for role in ("viewer", "ingest"):
        r = await client.post(f"{ALERTS}/{alert_id}/ack", headers=keys.header(role))
        assert r.status_code == 403, r.text
    r = await client.post(f"{ALERTS}/{alert_id}/ack")
    assert r.status_code == 401, r.text
    r = await client.post(f"{ALERTS}/{alert_id + 1}/ack", headers=keys.header("analyst"))
    assert r.status_code == 404, r.text
    r = await client.get(f"{ALERTS}/{alert_id}", headers=keys.header("viewer"))
    assert "acknowledged_at" not in r.json()


async def test_alerts_filter_by_acknowledged_and_carry_their_severity(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    rules = AlertRuleStore(embedded.engine, embedded.clock)
    rule_id = rules.create("Acme", RuleParams(kind=AlertKind.NEGATIVE_SPIKE, cooldown_s=0)).id
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    p_values = [5e-6, 5e-8, 5e-10]
    ids = [
        stored_alert(embedded, rule_id, t0 + timedelta(hours=i), p) for i, p in enumerate(p_values)
    ]
    await client.post(f"{ALERTS}/{ids[1]}/ack", headers=keys.header("analyst"))

    viewer = keys.header("viewer")
    r = await client.get(ALERTS, headers=viewer)
    items = r.json()["items"]
    assert {a["id"]: a["severity"] for a in items} == {
        i: severity(p, 1e-5).value for i, p in zip(ids, p_values, strict=True)
    }
    assert {a["severity"] for a in items} == {"medium", "high", "critical"}
    for a in items:
        jsonschema.validate(a, ALERT)
    r = await client.get(ALERTS, params={"acknowledged": "false"}, headers=viewer)
    assert [a["id"] for a in r.json()["items"]] == [ids[2], ids[0]]
    r = await client.get(ALERTS, params={"acknowledged": "true"}, headers=viewer)
    assert [a["id"] for a in r.json()["items"]] == [ids[1]]
    r = await client.get(ALERTS, params={"acknowledged": "no"}, headers=viewer)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["query.acknowledged"]


async def test_the_report_page_shows_each_alert_severity(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    rule_id = await new_rule(client, keys)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    stored_alert(embedded, rule_id, start, 5e-10)
    r = await client.get(
        "/reports/executive",
        params={"brand": "Acme", "from": "2026-03-01", "to": "2026-03-03"},
        headers=keys.header("viewer"),
    )
    assert r.status_code == 200, r.text[:300]
    assert '<span class="severity severity-critical">critical</span>' in r.text
