"""The dashboard in a real browser, end to end, against ``sentimon run``.

Debian's headless Chromium, driven over the DevTools protocol on a pipe
(``tests/fixtures/browser.py``). Without Chromium these tests fail, and say how to install it.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.app import TEST_BRANDS
from tests.fixtures.browser import LAPTOP, PAGE_TIMEOUT_S, PHONE, Page, png_size
from tests.fixtures.live_server import HOSTILE_TEXT, LiveServer, wait_until
from tests.fixtures.mentions import mention_doc

REFRESH_S = 15
UPDATED = "Number(document.getElementById('dashboard')?.dataset.updated || 0)"


def log_in(page: Page, server: LiveServer, role: str = "viewer") -> None:
    page.navigate(f"{server.base_url}/login#key={getattr(server.keys, role)}")
    page.wait_for(f"location.pathname === '/' && {UPDATED} > 0", "dashboard loaded")


def table_rows(page: Page) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.evaluate(
        """[...document.querySelectorAll('#totals tbody tr')].map((tr) => ({
            brand: tr.querySelector('th').textContent,
            mentions: tr.querySelector('.col-mentions').textContent,
            share: tr.querySelector('.col-share').textContent,
            net: tr.querySelector('.col-raw-net').textContent,
            positive: tr.querySelector('.col-positive').textContent,
            neutral: tr.querySelector('.col-neutral').textContent,
            negative: tr.querySelector('.col-negative').textContent,
        }))"""
    )
    return rows


def percent(text: str) -> float | None:
    if text == "–":
        return None
    return float(text.rstrip("%").replace("−", "-").replace("+", ""))


def assert_totals_match(page: Page, server: LiveServer, hours: int, interval: str) -> None:
    since = (datetime.now(UTC) - timedelta(hours=hours)).isoformat()
    api = server.get_json("/api/v1/share-of-voice", interval=interval, **{"from": since})
    expected = {b["brand"]: b for b in api["brands"]}
    rows = {r["brand"]: r for r in table_rows(page)}
    assert set(rows) == set(expected) == {name for name, _, _ in TEST_BRANDS}
    for name, want in expected.items():
        got = rows[name]
        assert want["mentions"] > 0, want
        for field in ("mentions", "positive", "neutral", "negative"):
            assert int(got[field].replace(",", "")) == want[field], (name, field, got, want)
        share = percent(got["share"])
        assert share is not None and abs(share - 100 * want["share"]) <= 0.05 + 1e-9, (got, want)
        net = percent(got["net"])
        if want["net_sentiment"] is None:
            assert net is None, (got, want)
        else:
            assert net is not None and abs(net - 100 * want["net_sentiment"]) <= 0.5 + 1e-9


def test_the_login_link_lands_on_the_dashboard_and_the_key_leaves_no_trace(
    page: Page, live_server: LiveServer
) -> None:
    key = live_server.keys.viewer
    log_in(page, live_server)

    assert page.evaluate("location.href") == f"{live_server.base_url}/"
    assert key not in page.evaluate("location.href + document.documentElement.outerHTML")
    urls = page.request_urls()
    assert any(u.endswith("/api/v1/share-of-voice") or "share-of-voice?" in u for u in urls)
    assert [u for u in urls if key in u] == []
    # Nothing is loaded from anywhere else: the product runs offline.
    assert [u for u in urls if not u.startswith(live_server.base_url)] == []
    cookies = page.send("Network.getCookies", {"urls": [live_server.base_url]})["cookies"]
    session = next(c for c in cookies if c["name"] == "sentimon_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert "sentimon_session" not in page.evaluate("document.cookie")
    assert page.problems() == []


def test_a_bad_key_stays_on_the_login_page_with_the_error_shown(
    page: Page, live_server: LiveServer
) -> None:
    page.navigate(f"{live_server.base_url}/login#key=smk_00000000_not-a-real-key")
    error = page.wait_for(
        "!document.getElementById('login-error').hidden && "
        "document.getElementById('login-error').textContent",
        "login error shown",
    )
    assert "unknown or revoked" in error
    assert page.evaluate("location.href") == f"{live_server.base_url}/login"


def test_an_ingest_key_is_told_it_cannot_open_the_dashboard(
    page: Page, live_server: LiveServer
) -> None:
    page.navigate(f"{live_server.base_url}/login#key={live_server.keys.ingest}")
    error = page.wait_for(
        "!document.getElementById('login-error').hidden && "
        "document.getElementById('login-error').textContent",
        "login error shown",
    )
    assert "cannot open the dashboard" in error and "ingest" in error
    # The session opened for the probe was closed again.
    page.navigate(f"{live_server.base_url}/")
    page.wait_for("location.pathname === '/login'", "redirected to the login page")


def test_every_brand_is_shown_and_the_totals_match_the_api(
    page: Page, live_server: LiveServer
) -> None:
    log_in(page, live_server)
    brands = {name for name, _, _ in TEST_BRANDS}
    legend = page.evaluate(
        "[...document.querySelectorAll('#sov-legend .legend-name')].map((e) => e.textContent)"
    )
    assert set(legend) == brands
    assert_totals_match(page, live_server, hours=24 * 7, interval="6h")
    # One colour per brand, the same in the bars and the lines.
    colours = page.evaluate(
        """({bars: [...new Set([...document.querySelectorAll('#sov-chart rect')]
                .map((r) => r.getAttribute('fill')))],
             lines: [...document.querySelectorAll('#net-chart path')]
                .map((p) => p.getAttribute('stroke'))})"""
    )
    assert len(colours["bars"]) == len(brands)
    assert set(colours["lines"]) <= set(colours["bars"]) and colours["lines"]

    before = page.evaluate(UPDATED)
    page.evaluate("document.querySelector('label[for=range-24h]').click()")
    page.wait_for(f"{UPDATED} > {before}", "refreshed for the 24 h range")
    assert page.evaluate("location.search") == "?range=24h"
    assert page.evaluate("document.getElementById('status').textContent").startswith(
        "Last 24 hours"
    )
    assert_totals_match(page, live_server, hours=24, interval="1h")
    assert page.problems() == []


def test_a_hostile_mention_is_shown_as_text(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server)
    hostile = json.dumps(HOSTILE_TEXT)
    found = page.evaluate(
        f"""(() => {{
            const item = [...document.querySelectorAll('#mentions .mention')]
                .find((li) => li.querySelector('.mention-text').textContent === {hostile});
            return item && {{
                name: item.querySelector('.author-name').textContent,
                handle: item.querySelector('.author-handle').textContent,
                bio: item.querySelector('.author-bio').textContent,
                label: item.querySelector('.badge').textContent,
            }};
        }})()"""
    )
    assert found is not None, "the hostile mention is not listed"
    assert found.pop("label") in {"positive", "neutral", "negative"}
    assert found == {
        "name": '<svg onload="alert(3)">',
        "handle": "@<b>evil</b>",
        "bio": "<iframe src=javascript:alert(4)></iframe>",
    }
    injected = page.evaluate(
        "document.querySelectorAll('#mentions img, #mentions script, #mentions iframe, "
        "#mentions b, #mentions svg').length"
    )
    assert injected == 0
    assert page.problems() == []


def test_mentions_filter_by_brand_and_sentiment(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server)

    def choose(select_id: str, value: str) -> None:
        before = page.evaluate(UPDATED)
        page.evaluate(
            f"""(() => {{
                const s = document.getElementById('{select_id}');
                s.value = '{value}';
                s.dispatchEvent(new Event('change', {{bubbles: true}}));
            }})()"""
        )
        page.wait_for(f"{UPDATED} > {before}", f"mentions filtered by {select_id}={value}")

    def shown() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = page.evaluate(
            """[...document.querySelectorAll('#mentions .mention')].map((li) => ({
                label: li.dataset.label,
                brands: [...li.querySelectorAll('.brand-chip')].map((c) => c.textContent)}))"""
        )
        return items

    choose("filter-brand", "Globex")
    assert shown() and all("Globex" in m["brands"] for m in shown())
    choose("filter-label", "negative")
    api = live_server.get_json("/api/v1/mentions", brand="Globex", label="negative", limit="25")
    assert len(shown()) == len(api["items"]) > 0
    assert all(m["label"] == "negative" and "Globex" in m["brands"] for m in shown())


def test_new_mentions_appear_without_a_reload(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server)
    assert f"refreshes every {REFRESH_S} s" in page.evaluate(
        "document.getElementById('status').textContent"
    )
    text = "Acme just shipped the feature we asked for. Great news!"
    live_server.push_mentions(
        [mention_doc(id="live-new", text=text, created_at=datetime.now(UTC).isoformat())]
    )
    page.wait_for(
        f"[...document.querySelectorAll('.mention-text')].some((p) => p.textContent === "
        f"{json.dumps(text)})",
        "the new mention shown by the auto-refresh",
        timeout_s=REFRESH_S + 10,
    )


def test_an_api_error_is_shown_and_clears_when_the_api_recovers(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    log_in(page, live_server)
    page.send("Fetch.enable", {"patterns": [{"urlPattern": "*/api/v1/share-of-voice*"}]})
    page.evaluate("document.querySelector('label[for=range-30d]').click()")
    paused = wait_until(
        lambda: page.events("Fetch.requestPaused"), timeout_s=PAGE_TIMEOUT_S, what="request"
    )
    body = json.dumps({"detail": "database: locked for maintenance"}).encode()
    page.send(
        "Fetch.fulfillRequest",
        {
            "requestId": paused[0]["requestId"],
            "responseCode": 503,
            "responseHeaders": [{"name": "Content-Type", "value": "application/json"}],
            "body": base64.b64encode(body).decode(),
        },
    )
    page.send("Fetch.disable")
    error = page.wait_for(
        "!document.getElementById('error').hidden && document.getElementById('error').textContent",
        "the API error shown",
    )
    assert "database: locked for maintenance" in error and "HTTP 503" in error
    assert "update failed" in page.evaluate("document.getElementById('status').textContent")
    # The figures loaded before stay on screen.
    assert len(table_rows(page)) == len(TEST_BRANDS)
    page.screenshot(tmp_path / "dashboard-api-error.png")

    before = page.evaluate(UPDATED)
    page.evaluate("document.querySelector('label[for=range-7d]').click()")
    page.wait_for(f"{UPDATED} > {before}", "refreshed after the API recovered")
    assert page.evaluate("document.getElementById('error').hidden") is True


def test_logout_ends_the_session(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server)
    page.evaluate("document.getElementById('logout').click()")
    page.wait_for("location.pathname === '/login'", "back on the login page")
    page.navigate(f"{live_server.base_url}/")
    page.wait_for("location.pathname === '/login'", "redirected to the login page")
    cookies = page.send("Network.getCookies", {"urls": [live_server.base_url]})["cookies"]
    assert [c for c in cookies if c["name"] == "sentimon_session"] == []


@pytest.mark.parametrize(("size", "mobile"), [(LAPTOP, False), (PHONE, True)])
def test_screenshots_on_a_laptop_and_a_phone(
    page: Page, live_server: LiveServer, tmp_path: Path, size: tuple[int, int], mobile: bool
) -> None:
    width, height = size
    page.set_viewport(width, height, mobile=mobile)
    log_in(page, live_server)
    # The charts are drawn at the width of their box; wait for a redraw after a resize.
    page.wait_for(
        """[...document.querySelectorAll('.chart')].every((c) => {
            const s = c.querySelector('svg');
            return s && Number(s.getAttribute('width')) === Math.max(260, c.clientWidth);
        })""",
        "charts drawn at the viewport's width",
    )
    # Nothing wider than the screen: no sideways scrolling of the page.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot = page.screenshot(tmp_path / f"dashboard-{width}x{height}.png")
    assert png_size(shot) == (width, height) and len(shot) > 10_000
    full = page.screenshot(tmp_path / f"dashboard-{width}x{height}-full.png", full_page=True)
    assert png_size(full)[0] == width and png_size(full)[1] >= height
    assert page.problems() == []
