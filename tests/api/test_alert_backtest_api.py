"""``GET /api/v1/alert-rules/{id}/backtest`` (streamed NDJSON) and
``POST /api/v1/alert-rules/preview``: the backtest's answer over HTTP, and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from services.alerts.backtest import backtest_lines
from services.alerts.detection import DAY_S
from services.core.storage.alerts import AlertRuleStore
from services.embedded import Embedded
from tests.alerts.test_evaluator import load_rollups
from tests.fixtures.app import Keys
from tests.fixtures.synthetic_traffic import synthetic_timeline

RULES = "/api/v1/alert-rules"


@pytest.fixture
def history(embedded: Embedded) -> int:
    """Ten days of synthetic rollups up to tomorrow for the test brands (stored at once, as
    a backfill would), with a volume surge on Acme two days ago at 14:00 UTC; returns the
    surge's start."""
    today = int(embedded.clock.now().timestamp()) // DAY_S * DAY_S
    tl = synthetic_timeline(days=10, seed=5)
    tl.start = today - 9 * DAY_S
    for name in ("Initech",):
        del tl.mentions[name], tl.negative[name]
    surge_minute = 7 * 1440 + 14 * 60
    tl.burst("Acme", surge_minute, 30, 5.0, seed=3)
    load_rollups(embedded.engine, tl)
    return tl.start + surge_minute * 60


def ndjson(r: httpx.Response) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in r.content.splitlines()]


async def volume_rule(client: httpx.AsyncClient, keys: Keys) -> int:
    body = {"brand": "Acme", "kind": "volume_spike", "sensitivity": 1e-3, "cooldown_minutes": 0}
    r = await client.post(RULES, json=body, headers=keys.header("admin"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_a_backtest_streams_the_windows_then_a_summary(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded, history: int
) -> None:
    rule_id = await volume_rule(client, keys)
    start = datetime.fromtimestamp(history - DAY_S, UTC)
    end = datetime.fromtimestamp(history + DAY_S, UTC)
    r = await client.get(
        f"{RULES}/{rule_id}/backtest",
        params={"from": start.isoformat(), "to": end.isoformat()},
        headers=keys.header("viewer"),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = ndjson(r)
    rule = AlertRuleStore(embedded.engine, embedded.clock).get(rule_id)
    expected = list(
        backtest_lines(
            embedded.engine, "Acme", rule.params, int(start.timestamp()), int(end.timestamp())
        )
    )
    assert lines == orjson.loads(orjson.dumps(expected))
    assert lines[-1]["type"] == "summary" and lines[-1]["windows_evaluated"] == 2 * 96
    found = {datetime.fromisoformat(w["window"]["start"]) for w in lines[:-1]}
    assert datetime.fromtimestamp(history, UTC) in found


async def test_the_default_period_is_the_last_28_days(
    client: httpx.AsyncClient, keys: Keys, history: int
) -> None:
    rule_id = await volume_rule(client, keys)
    r = await client.get(f"{RULES}/{rule_id}/backtest", headers=keys.header("viewer"))
    assert r.status_code == 200, r.text
    summary = ndjson(r)[-1]
    span = datetime.fromisoformat(summary["to"]) - datetime.fromisoformat(summary["from"])
    assert span == timedelta(days=28)
    assert summary["alerts"] >= 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2010-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"}, "query.from"),
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "query.from"),
        ({"from": "2026-03-02T00:00:00"}, "query.from"),
        ({"to": "1800-01-01T00:00:00Z"}, "query.to"),
        ({"to": "yesterday"}, "query.to"),
    ],
)
async def test_bad_periods_are_422_naming_the_field(
    client: httpx.AsyncClient, keys: Keys, params: dict[str, str], field: str
) -> None:
    rule_id = await volume_rule(client, keys)
    r = await client.get(f"{RULES}/{rule_id}/backtest", params=params, headers=keys.header("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field, r.json()


async def test_a_backtest_of_an_unknown_rule_is_404(client: httpx.AsyncClient, keys: Keys) -> None:
    r = await client.get(f"{RULES}/9999/backtest", headers=keys.header("admin"))
    assert r.status_code == 404, r.text
    assert (await client.get(f"{RULES}/1/backtest")).status_code == 401


async def test_a_preview_judges_the_last_days_without_adding_the_rule(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded, history: int
) -> None:
    body = {"brand": "Acme", "kind": "volume_spike", "sensitivity": 1e-3}
    r = await client.post(f"{RULES}/preview?days=7", json=body, headers=keys.header("viewer"))
    assert r.status_code == 200, r.text
    preview = r.json()
    assert (preview["brand"], preview["kind"], preview["days"]) == ("Acme", "volume_spike", 7)
    summary = preview["summary"]
    assert summary["windows_evaluated"] == 7 * 96
    assert summary["alerts"] == len(preview["windows"]) >= 1
    assert summary["alerts_per_week"] == pytest.approx(summary["alerts"], abs=1e-3)
    assert datetime.fromtimestamp(history, UTC) in {
        datetime.fromisoformat(w["window"]["start"]) for w in preview["windows"]
    }
    assert (await client.get(RULES, headers=keys.header("admin"))).json() == []


@pytest.mark.parametrize(
    ("body", "query", "status", "field"),
    [
        ({"brand": "Nope", "kind": "volume_spike"}, "", 404, "brand"),
        ({"brand": "Acme", "kind": "volume_spike"}, "?days=400", 422, "query.days"),
        ({"brand": "Acme", "kind": "volume_spike"}, "?days=0", 422, "query.days"),
        (
            {"brand": "Acme", "kind": "volume_spike", "window_minutes": 5},
            "?days=366",
            422,
            "query.days",
        ),
        ({"brand": "Acme", "kind": "volume_spike", "min_count": 0}, "", 422, "body.min_count"),
    ],
)
async def test_bad_previews_are_refused_naming_the_field(
    client: httpx.AsyncClient, keys: Keys, body: dict[str, Any], query: str, status: int, field: str
) -> None:
    r = await client.post(f"{RULES}/preview{query}", json=body, headers=keys.header("admin"))
    assert r.status_code == status, r.text
    assert r.json()["errors"][0]["field"] == field, r.json()
