"""The adjusted (spot-check-corrected) figures on the pages, in headless Chromium: the
dashboard's totals and net-sentiment chart, the executive report page and its download.

The store holds a stream scored by a deliberately biased scorer (``biased_stream``);
an analyst works the whole review queue through the API; the pages must then show the
API's corrected net sentiment with its interval and the labels behind it, the raw figure
beside it, and error bars in the chart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api.app import create_app
from services.core.auth import Role
from services.core.clock import SystemClock
from tests.fixtures.app_server import serving
from tests.fixtures.biased_stream import store_biased_stream
from tests.fixtures.browser import LAPTOP, Page
from tests.fixtures.report_data import report_state


@dataclass(frozen=True)
class Server:
    base_url: str
    viewer: str

    def get_json(self, path: str, **params: str) -> Any:
        headers = {"Authorization": f"Bearer {self.viewer}"}
        r = httpx.get(f"{self.base_url}{path}", params=params, headers=headers, timeout=30)
        r.raise_for_status()
        return r.json()


def label_everything(base_url: str, analyst: str, truth_of: dict[str, str]) -> int:
    headers = {"Authorization": f"Bearer {analyst}"}
    done = 0
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as c:
        while True:
            r = c.post("/api/v1/review/claim")
            assert r.status_code == 200, r.text
            item = r.json()["item"]
            if item is None:
                return done
            truth = truth_of[item["url"].rsplit("/", 1)[1]]
            r = c.post(f"/api/v1/review/items/{item['id']}/label", json={"label": truth})
            assert r.status_code == 200, r.text
            done += 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state = report_state(tmp_path_factory.mktemp("adjusted"), [], SystemClock())
    truth_of, _ = store_biased_stream(state.engine, state.clock)
    viewer = state.keys.create(Role.VIEWER, "viewer")[0]
    analyst = state.keys.create(Role.ANALYST, "analyst")[0]
    try:
        with serving(create_app(state), "adjusted-server") as base_url:
            assert label_everything(base_url, analyst, truth_of) > 150
            yield Server(base_url, viewer)
    finally:
        state.engine.dispose()


def signed_percent(value: float) -> str:
    """The dashboard's format of a net sentiment: a signed whole percentage."""
    pct = round(value * 100)
    return ("+" if pct > 0 else "−" if pct < 0 else "") + f"{abs(pct)}%"


def test_the_dashboard_shows_the_corrected_net_sentiment_with_its_interval(
    page: Page, server: Server
) -> None:
    page.set_viewport(*LAPTOP, mobile=False)
    page.navigate(f"{server.base_url}/login#key={server.viewer}")
    page.wait_for(
        "location.pathname === '/' && !!document.querySelector('#totals tbody tr')",
        "dashboard loaded",
    )
    since = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    api = server.get_json("/api/v1/share-of-voice", interval="6h", **{"from": since})
    acme = next(b for b in api["brands"] if b["brand"] == "Acme")
    fig = acme["adjusted"]["net_sentiment"]
    row = page.evaluate(
        """(() => { const tr = document.querySelector('#totals tr[data-brand="Acme"]');
            const net = tr.querySelector('.col-net');
            return { adjusted: net.classList.contains('adjusted'), value:
              net.querySelector('.value').textContent, ci: net.querySelector('.ci').textContent,
              labels: net.querySelector('.labels').textContent, title: net.title,
              raw: tr.querySelector('.col-raw-net').textContent }; })()"""
    )
    assert row["adjusted"], row
    assert row["value"] == signed_percent(fig["value"])
    assert row["ci"] == f" ± {round((fig['ci95'][1] - fig['ci95'][0]) * 50)}"
    assert row["labels"] == f" from {acme['adjusted']['labels']:,} labels"
    assert row["raw"] == signed_percent(acme["net_sentiment"])
    assert "95% interval" in row["title"] and "automated (raw)" in row["title"]
    # Error bars where a bucket has enough labels; hollow (raw) points elsewhere.
    bars = page.evaluate("document.querySelectorAll('#net-chart .error-bar').length")
    buckets_with = sum(
        1
        for bucket in api["buckets"]
        for b in bucket["brands"]
        if b["adjusted"] is not None and b["adjusted"]["net_sentiment"] is not None
    )
    assert buckets_with > 0 and bars == buckets_with


def test_the_report_page_and_its_download_show_the_corrected_figures(
    page: Page, server: Server, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()
    params = f"brand=Acme&from={today - timedelta(days=6)}&to={today}"
    page.set_viewport(*LAPTOP, mobile=False)
    page.navigate(f"{server.base_url}/login#key={server.viewer}")
    page.wait_for("location.pathname === '/'", "logged in")
    page.navigate(f"{server.base_url}/reports/executive?{params}")
    page.wait_for("!!document.querySelector('#kpi-net .kpi-value')", "report rendered")
    report = server.get_json(
        "/api/v1/reports/executive",
        brand="Acme",
        **{
            "from": f"{today - timedelta(days=6)}T00:00:00Z",
            "to": f"{today + timedelta(days=1)}T00:00:00Z",
        },
    )
    fig = report["net_sentiment"]["adjusted"]
    shown = page.evaluate(
        """(() => { const k = document.querySelector('#kpi-net .adjusted');
            const row = document.querySelector('#sov-table tr[data-brand="Globex"]');
            return { kpi: k && k.textContent, title: k && k.title,
                     globex: row.querySelector('.col-net').textContent,
                     raw: row.querySelector('.col-raw-net').textContent }; })()"""
    )
    value = f"{100 * fig['net_sentiment']['value']:+.1f}%".replace("-", "−")
    half = f"{50 * (fig['net_sentiment']['ci95'][1] - fig['net_sentiment']['ci95'][0]):.1f}"
    assert shown["kpi"] is not None, "the net sentiment KPI is not the corrected one"
    assert value in shown["kpi"] and f"± {half}" in shown["kpi"]
    assert f"from {fig['labels']:,} labels" in shown["kpi"]
    assert "automated (raw)" in shown["title"]
    assert "±" in shown["globex"] and "labels" in shown["globex"]
    assert "±" not in shown["raw"]

    r = httpx.get(
        f"{server.base_url}/reports/executive/download?{params}",
        headers={"Authorization": f"Bearer {server.viewer}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert value in r.text and f"± {half}" in r.text and f"from {fig['labels']:,} labels" in r.text
