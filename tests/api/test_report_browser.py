"""The executive report page in headless Chromium: laptop and phone widths (screenshots
in the test's tmp dir), print layout, the link from the dashboard, and the downloaded
HTML opened from a file with no request going anywhere.

The server is the API app over a store filled with the report fixture set, served by
uvicorn in a thread on 127.0.0.1 (no pipeline: the page reads what is stored).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api.app import create_app
from services.core.auth import Role
from services.core.clock import SystemClock
from tests.fixtures.app_server import serving
from tests.fixtures.browser import LAPTOP, PHONE, Page, png_size
from tests.fixtures.report_data import END, START, fixture_set, report_state

# The page takes dates, its "to" day included: the same period as the API's [START, END).
PARAMS = f"brand=Acme&from={START.date()}&to={(END - timedelta(days=1)).date()}"
HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@dataclass(frozen=True)
class ReportServer:
    base_url: str
    viewer: str

    def get(self, path: str, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.viewer}"}
        return httpx.get(f"{self.base_url}{path}", params=params, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def report_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportServer]:
    mentions = fixture_set()
    # A hostile author and text among the top negative mentions: shown as text, never run.
    worst = max(
        (
            f
            for f in mentions
            if f.label == "negative" and "Acme" in f.brands and START <= f.created_at < END
        ),
        key=lambda f: f.followers,
    )
    mentions[mentions.index(worst)] = type(worst)(**{**worst.__dict__, "text": f"acme {HOSTILE}"})
    # The real clock: the dashboard, opened on the way, asks for "the last 7 days".
    state = report_state(tmp_path_factory.mktemp("report-server"), mentions, SystemClock())
    viewer = state.keys.create(Role.VIEWER, "report viewer")[0]
    try:
        with serving(create_app(state), "report-server") as base_url:
            yield ReportServer(base_url, viewer)
    finally:
        state.engine.dispose()


def log_in(page: Page, server: ReportServer) -> None:
    page.navigate(f"{server.base_url}/login#key={server.viewer}")
    page.wait_for("location.pathname === '/'", "logged in, on the dashboard")


def open_report(page: Page, server: ReportServer) -> None:
    page.navigate(f"{server.base_url}/reports/executive?{PARAMS}")
    page.wait_for("!!document.querySelector('#kpi-volume .kpi-value')", "report rendered")


def visible(page: Page, selector: str) -> Any:
    return page.evaluate(
        f"[...document.querySelectorAll({selector!r})].map((e) => e.getClientRects().length > 0)"
    )


def test_the_report_on_a_laptop_and_a_phone(
    page: Page, report_server: ReportServer, tmp_path: Path
) -> None:
    api = report_server.get(
        "/api/v1/reports/executive", brand="Acme", to=END.isoformat(), **{"from": START.isoformat()}
    ).json()
    log_in(page, report_server)
    # The dashboard links to the report.
    page.evaluate("document.getElementById('report-link').click()")
    page.wait_for(
        "location.pathname === '/reports/executive' && !!document.querySelector('h1')",
        "report opened from the dashboard",
    )
    open_report(page, report_server)

    for name, (width, height), mobile in (("laptop", LAPTOP, False), ("phone", PHONE, True)):
        page.set_viewport(width, height, mobile=mobile)
        page.wait_for(f"window.innerWidth === {width}", f"{name} width applied")
        shot = page.screenshot(tmp_path / f"report-{name}.png", full_page=True)
        assert png_size(shot)[0] == width
        # Nothing wider than the screen: no sideways scrolling of the whole page.
        assert page.evaluate("document.documentElement.scrollWidth") <= width, name
        # The chart drawn for this width is the one shown.
        wide, narrow = visible(page, ".wide-only"), visible(page, ".narrow-only")
        assert len(wide) == len(narrow) == 3
        assert all(wide) != mobile and all(narrow) == mobile, (name, wide, narrow)

    # The figures on the page are the API's.
    assert (
        page.evaluate("document.querySelector('#kpi-volume .kpi-value').textContent")
        == f"{api['volume']['mentions']:,}"
    )
    rows = page.evaluate(
        """[...document.querySelectorAll('#sov-table tbody tr')].map(
            (tr) => [tr.dataset.brand, tr.querySelector('.col-share').textContent])"""
    )
    assert rows == [
        [b["brand"], f"{100 * b['share_of_mentions']:.1f}%"]
        for b in api["share_of_voice"]["brands"]
    ]
    bars = page.evaluate("document.querySelectorAll('#sov .wide-only svg rect[fill]').length")
    assert bars == 4 * len(api["share_of_voice"]["brands"])
    # The hostile mention is shown as text, and nothing ran.
    texts = page.evaluate(
        "[...document.querySelectorAll('#top-negative .rep-text')].map((e) => e.textContent)"
    )
    assert any(HOSTILE in t for t in texts)
    assert page.evaluate("document.querySelectorAll('#report img, #report script').length") == 0
    assert page.problems() == []
    # Nothing from elsewhere (data: URLs are Chromium's own icons for the date inputs).
    elsewhere = [
        u for u in page.request_urls() if not u.startswith((report_server.base_url, "data:"))
    ]
    assert elsewhere == []

    # Printable: the form goes, the report stays, and it prints to PDF pages.
    page.send("Emulation.setEmulatedMedia", {"media": "print"})
    assert visible(page, ".rep-form") == [False]
    assert all(visible(page, ".card"))
    pdf = base64.b64decode(page.send("Page.printToPDF", {"printBackground": True})["data"])
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))
    assert pdf.startswith(b"%PDF") and pages >= 2, pages  # a long report: several pages
    (tmp_path / "report.pdf").write_bytes(pdf)


def test_the_download_opens_from_a_file_with_no_request_anywhere(
    page: Page, report_server: ReportServer, tmp_path: Path
) -> None:
    r = report_server.get(f"/reports/executive/download?{PARAMS}")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    path = tmp_path / "report.html"
    path.write_bytes(r.content)
    url = path.as_uri()
    page.navigate(url)
    page.wait_for("!!document.querySelector('#kpi-volume .kpi-value')", "download rendered")
    page.set_viewport(*LAPTOP, mobile=False)
    page.screenshot(tmp_path / "download-laptop.png", full_page=True)
    # Every request the file made is the file itself: no CSS, font, image or script fetched.
    assert page.request_urls() == [url]
    # Its inline CSS was applied (the CSP allows exactly that stylesheet, by hash).
    assert page.evaluate("getComputedStyle(document.querySelector('.kpi')).display") == "flex"
    assert page.evaluate("document.querySelectorAll('svg.chart-svg').length") == 6
    assert page.problems() == []
