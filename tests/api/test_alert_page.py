"""The alert page (``/alerts/{id}``) and the explained alert in the API: its sentence,
story, drivers, rising terms and chart, hostile texts shown as text, in headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, update

from services.alerts.evaluator import AlertEvaluator
from services.alerts.settings import AlertSettings
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.api.state import AppState
from services.core.auth import Role
from services.core.clock import FrozenClock
from services.core.metrics import Metrics
from services.core.storage.alerts import list_alerts
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.storage.keys import KeyStore
from services.core.storage.tables import alerts
from services.core.storage.writer import MentionWriter
from tests.alerts.test_evaluator import BURST_START, add_rules, burst_records, load_rollups
from tests.fixtures.app_server import serving
from tests.fixtures.browser import Page
from tests.fixtures.synthetic_traffic import BRANDS, T0, synthetic_timeline

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@dataclass(frozen=True)
class AlertServer:
    base_url: str
    viewer: str
    alert_id: int
    doc: dict[str, object]


@pytest.fixture(scope="module")
def alert_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertServer]:
    root = tmp_path_factory.mktemp("alert-page")
    engine: Engine = make_engine(f"sqlite:///{root / 't.db'}")
    migrate(engine)
    clock = FrozenClock(datetime.fromtimestamp(T0, UTC))
    brands = BrandStore(engine, clock)
    for b in BRANDS:
        brands.create(b.name, f'"{b.name.lower()}"')
    load_rollups(engine, synthetic_timeline(days=11, seed=7))
    MentionWriter(engine, clock).write(burst_records(40))
    clock.advance(BURST_START + timedelta(minutes=30) - clock.now())
    add_rules(engine, clock)
    AlertEvaluator(engine, AlertSettings(), clock, Metrics(CollectorRegistry())).evaluate_once()
    with engine.connect() as conn:
        alert = list_alerts(conn, kind="negative_spike")[0]
    # Hostile texts where the page shows stored words: shown as text, never run.
    doc = dict(alert.doc)
    doc["summary"] = f"{doc['summary']} {HOSTILE}"
    doc["story"] = {**doc["story"], "sample_text": HOSTILE, "first_author": HOSTILE}
    doc["top_terms"] = [{**doc["top_terms"][0], "term": HOSTILE}, *doc["top_terms"][1:]]
    with engine.begin() as conn:
        conn.execute(
            update(alerts).where(alerts.c.id == alert.id).values(doc=orjson.dumps(doc).decode())
        )
    state = AppState(
        settings=ApiSettings(data_dir=root),
        engine=engine,
        clock=clock,
        metrics=Metrics(CollectorRegistry()),
        keys=KeyStore(engine, clock),
        brands=brands,
    )
    viewer = state.keys.create(Role.VIEWER, "alert viewer")[0]
    try:
        with serving(create_app(state), "alert-page-server") as base_url:
            yield AlertServer(base_url, viewer, alert.id, doc)
    finally:
        engine.dispose()


def get(server: AlertServer, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.viewer}"}
    return httpx.get(f"{server.base_url}{path}", headers=headers, timeout=30)


def test_the_api_serves_the_sentence_and_the_story(alert_server: AlertServer) -> None:
    one = get(alert_server, f"/api/v1/alerts/{alert_server.alert_id}").json()
    assert one["summary"] == alert_server.doc["summary"]
    assert one["story"] == alert_server.doc["story"]
    assert one["drivers"]["top_authors"]
    listed = get(alert_server, "/api/v1/alerts?kind=negative_spike").json()["items"][0]
    assert listed["summary"] == one["summary"] and listed["story"] == one["story"]


def test_the_page_needs_a_session_and_names_a_missing_alert(alert_server: AlertServer) -> None:
    r = httpx.get(f"{alert_server.base_url}/alerts/{alert_server.alert_id}", timeout=30)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert get(alert_server, "/alerts/999999").status_code == 404


def test_the_alert_page_in_chromium(page: Page, alert_server: AlertServer, tmp_path: Path) -> None:
    page.navigate(f"{alert_server.base_url}/login#key={alert_server.viewer}")
    page.wait_for("location.pathname === '/'", "logged in")
    page.navigate(f"{alert_server.base_url}/alerts/{alert_server.alert_id}")
    page.wait_for("!!document.getElementById('alert-summary')", "alert page rendered")
    page.screenshot(tmp_path / "alert.png", full_page=True)
    text = page.evaluate("document.getElementById('alert-summary').textContent")
    assert text == alert_server.doc["summary"]
    assert HOSTILE in page.evaluate("document.getElementById('story-text').textContent")
    assert HOSTILE in page.evaluate("document.querySelector('.story-author').textContent")
    terms = page.evaluate("[...document.querySelectorAll('.term')].map((e) => e.textContent)")
    assert terms[0].startswith(HOSTILE)
    assert page.evaluate("document.querySelectorAll('#alert img, #alert script').length") == 0
    # The chart: one column per window of the expectation, the alert's marked, the line drawn.
    expectation = alert_server.doc["expectation"]
    assert isinstance(expectation, list)
    assert page.evaluate("document.querySelectorAll('#alert-chart svg rect').length") == len(
        expectation
    )
    assert page.evaluate("document.querySelectorAll('#alert-chart rect.alert-window').length") == 1
    assert page.evaluate("document.querySelectorAll('#alert-chart path.expected-line').length") == 1
    drivers = page.evaluate("document.querySelectorAll('#alert-drivers .driver').length")
    assert drivers == len(alert_server.doc["drivers"]["top_authors"])  # type: ignore[index]
    assert page.problems() == []
