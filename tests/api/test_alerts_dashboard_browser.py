"""The dashboard's recent alerts in headless Chromium (issue 17 §5): each with its
severity and sentence; an analyst acknowledges one with a click, a viewer has no button."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from services.alerts.detection import AlertKind, RuleParams, Verdict
from services.alerts.evaluator import alert_document
from services.api.app import create_app
from services.core.alerting import severity
from services.core.auth import Role
from services.core.clock import SystemClock
from services.core.storage.alerts import AlertRuleStore, get_alert, store_alert
from services.core.storage.db import make_engine, sqlite_url
from tests.fixtures.app_server import serving
from tests.fixtures.browser import LAPTOP, Page
from tests.fixtures.report_data import report_state

P_VALUES = (3e-6, 4e-8, 2e-11)


@dataclass(frozen=True)
class Server:
    base_url: str
    viewer: str
    analyst: str
    alert_ids: tuple[int, ...]
    data_dir: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("alerts-dashboard")
    clock = SystemClock()
    state = report_state(data_dir, [], clock)
    rule = AlertRuleStore(state.engine, clock).create(
        "Acme", RuleParams(kind=AlertKind.NEGATIVE_SPIKE, cooldown_s=0)
    )
    now = clock.now().replace(second=0, microsecond=0)

    def document(alert_id: int, at: datetime, *, start: datetime, verdict: Verdict) -> Any:
        return alert_document(alert_id, rule, start, verdict, [], [], created_at=at)

    ids = []
    for k, p in enumerate(P_VALUES):
        start = now - timedelta(hours=3 - k)
        verdict = Verdict(True, 30.0, 3.0, p, 8.0, "negative_binomial", "fired", 30, 40)
        alert = store_alert(
            state.engine,
            rule,
            start,
            partial(document, start=start, verdict=verdict),
            now=start + timedelta(minutes=15),
            observed=30.0,
            expected=3.0,
            p_value=p,
            retry_max_age=timedelta(hours=24),
        )
        assert alert is not None
        ids.append(alert.id)
    viewer = state.keys.create(Role.VIEWER, "viewer")[0]
    analyst = state.keys.create(Role.ANALYST, "Dana (comms)")[0]
    try:
        with serving(create_app(state), "alerts-dashboard") as base_url:
            yield Server(base_url, viewer, analyst, tuple(ids), data_dir)
    finally:
        state.engine.dispose()


ALERT_ROWS = """[...document.querySelectorAll('#alerts .alert-item')].map((li) => ({
    id: Number(li.dataset.alertId), severity: li.querySelector('.badge').textContent,
    summary: li.querySelector('.alert-summary').textContent,
    explain: li.querySelector('a').getAttribute('href'),
    button: !!li.querySelector('button.acknowledge'),
    acknowledged: li.querySelector('.acknowledged')?.textContent || null }))"""


def open_dashboard(page: Page, server: Server, key: str) -> list[dict[str, object]]:
    page.set_viewport(*LAPTOP, mobile=False)
    page.navigate(f"{server.base_url}/login#key={key}")
    page.wait_for(
        "location.pathname === '/' && document.querySelectorAll('#alerts .alert-item').length > 0",
        "alerts listed",
    )
    rows: list[dict[str, object]] = page.evaluate(ALERT_ROWS)
    return rows


def test_a_viewer_sees_each_alert_with_its_severity_and_no_acknowledge_button(
    page: Page, server: Server
) -> None:
    rows = open_dashboard(page, server, server.viewer)
    assert [r["id"] for r in rows] == list(reversed(server.alert_ids)), "newest first"
    by_id = {r["id"]: r for r in rows}
    for alert_id, p in zip(server.alert_ids, P_VALUES, strict=True):
        row = by_id[alert_id]
        assert row["severity"] == severity(p, 1e-5).value
        assert "Acme" in str(row["summary"])
        assert row["explain"] == f"/alerts/{alert_id}"
        assert row["button"] is False
    assert {r["severity"] for r in rows} == {"medium", "high", "critical"}
    assert page.problems() == []


def test_an_analyst_acknowledges_an_alert_with_a_click(page: Page, server: Server) -> None:
    target = server.alert_ids[0]
    rows = open_dashboard(page, server, server.analyst)
    assert all(r["button"] for r in rows)
    page.evaluate(
        f"document.querySelector('#alerts [data-alert-id=\"{target}\"] button.acknowledge').click()"
    )
    page.wait_for(
        f"!!document.querySelector('#alerts [data-alert-id=\"{target}\"] .acknowledged')",
        "the alert shown acknowledged",
    )
    row = next(r for r in page.evaluate(ALERT_ROWS) if r["id"] == target)
    assert row["button"] is False
    assert str(row["acknowledged"]).startswith("Acknowledged by Dana (comms)")
    engine = make_engine(sqlite_url(server.data_dir))
    try:
        with engine.connect() as conn:
            stored = get_alert(conn, target)
    finally:
        engine.dispose()
    assert stored.acknowledged_by == "Dana (comms)"
    assert page.problems() == []
