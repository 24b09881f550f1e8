"""The review page in headless Chromium against ``sentimon run``: an analyst labels mentions
with the keyboard only and watches the measured accuracy move."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from services.core.clock import SystemClock
from services.core.storage.db import make_engine, sqlite_url
from services.core.storage.tables import mention_brands, mentions, review_items
from tests.fixtures.browser import Page
from tests.fixtures.live_server import HOSTILE_TEXT, LiveServer

MAIN = "document.getElementById('review')"
# Windows virtual key codes, which Chromium needs besides the key itself
KEYS = {
    "1": ("Digit1", 49),
    "2": ("Digit2", 50),
    "3": ("Digit3", 51),
    "s": ("KeyS", 83),
    "u": ("KeyU", 85),
}


def queue_for_review(server: LiveServer, how_many: int) -> list[str]:
    """Make the review queue exactly ``how_many`` stored mentions, the hostile one first,
    as the scorer's sampler would have queued them (whatever it sampled of the server's
    mentions is dropped, so the test knows the queue); returns their ids in queue order."""
    engine = make_engine(sqlite_url(server.log_path.parent / "data"))
    try:
        with engine.begin() as conn:
            conn.execute(delete(review_items))
            rows = conn.execute(
                select(
                    mentions.c.pk,
                    mentions.c.mention_id,
                    mentions.c.source,
                    mentions.c.label,
                    mentions.c.method,
                    mentions.c.confidence,
                    mention_brands.c.brand,
                )
                .join(mention_brands, mention_brands.c.mention_pk == mentions.c.pk)
                .order_by((mentions.c.mention_id != "live-hostile"), mentions.c.pk)
                .limit(how_many)
            ).all()
            conn.execute(
                insert(review_items),
                [
                    {
                        "mention_pk": r.pk,
                        "brand": r.brand,
                        "source": r.source,
                        "auto_label": r.label,
                        "auto_method": r.method,
                        "auto_confidence": r.confidence,
                        "reason": "random",
                        "weight": 50.0,
                        "reviews_required": 1,
                        "reviews_done": 0,
                        "queued_at": SystemClock().now(),
                    }
                    for r in rows
                ],
            )
        return [r.mention_id for r in rows]
    finally:
        engine.dispose()


def press(page: Page, key: str) -> None:
    """Type ``key`` once the page is ready for the next action (it drops keys meanwhile)."""
    page.wait_for(f"{MAIN}.dataset.busy === '0'", "page ready for a key")
    code, vk = KEYS[key]
    base: dict[str, Any] = {"key": key, "code": code, "windowsVirtualKeyCode": vk}
    page.send("Input.dispatchKeyEvent", {"type": "keyDown", "text": key, **base})
    page.send("Input.dispatchKeyEvent", {"type": "keyUp", **base})


def dataset(page: Page, name: str) -> str | None:
    value: str | None = page.evaluate(f"{MAIN}.dataset.{name} ?? null")
    return value


def shown(page: Page) -> dict[str, str]:
    out: dict[str, str] = page.evaluate(
        """({id: document.getElementById('review').dataset.itemId,
             text: document.getElementById('item-text').textContent,
             brand: document.getElementById('item-brand').textContent,
             author: document.getElementById('item-author-name').textContent,
             handle: document.getElementById('item-author-handle').textContent,
             auto: document.getElementById('item-auto-label').textContent,
             accuracy: document.getElementById('stat-accuracy').textContent,
             n: document.getElementById('stat-n').textContent,
             progress: document.getElementById('progress').textContent})"""
    )
    return out


def wait_labelled(page: Page, session: int, stats_n: int) -> None:
    page.wait_for(
        f"{MAIN}.dataset.session === '{session}' && {MAIN}.dataset.statsN === '{stats_n}'",
        f"{session} labelled this session, stats on {stats_n}",
    )


def test_an_analyst_labels_with_the_keyboard_and_sees_the_stats_change(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    queued = queue_for_review(live_server, 4)
    assert queued[0] == "live-hostile"
    page.navigate(f"{live_server.base_url}/login#key={live_server.keys.analyst}")
    page.wait_for("location.pathname === '/'", "logged in")
    page.navigate(f"{live_server.base_url}/review")
    page.wait_for(f"{MAIN}.dataset.itemId && {MAIN}.dataset.statsN === '0'", "first item shown")
    page.screenshot(tmp_path / "review-1-first-item.png")

    # How sure each brand's figure is, in the queue's order: as the API says.
    with live_server.client("analyst") as c:
        progress = c.get("/api/v1/review/brands").json()["brands"]
    rows = page.evaluate(
        """[...document.querySelectorAll('#brand-progress tbody tr')].map((tr) => ({
            brand: tr.dataset.brand, net: tr.querySelector('.col-net').textContent,
            why: tr.querySelector('.col-net').title,
            labels: tr.querySelector('.col-labels').textContent }))"""
    )
    assert [r["brand"] for r in rows] == [b["brand"] for b in progress]
    for row, want in zip(rows, progress, strict=True):
        assert row["labels"] == str(want["labels"])
        if want["net_sentiment"] is None:  # too few labels here: the page says why
            assert row["net"] == "–" and row["why"] == want["reason"]

    first = shown(page)
    # hostile text and author name are shown as text, never as markup
    assert first["text"] == HOSTILE_TEXT
    assert first["author"] == '<svg onload="alert(3)">' and first["handle"] == "@<b>evil</b>"
    assert (
        page.evaluate("document.querySelectorAll('#item img, #item script, #item svg').length") == 0
    )
    assert first["accuracy"] == "–" and first["n"] == "0"
    assert "0 labelled" in first["progress"] and "4 open" in first["progress"]
    # every action has its shortcut on the page
    legend = page.evaluate("document.getElementById('shortcuts').textContent")
    for hint in ("1", "2", "3", "4", "S", "U", "positive", "neutral", "negative", "skip", "undo"):
        assert hint in legend

    press(page, "2")  # neutral
    wait_labelled(page, 1, 1)
    second = shown(page)
    assert second["id"] != first["id"] and second["accuracy"] != "–"
    assert "1 labelled" in second["progress"] and "3 open" in second["progress"]
    page.screenshot(tmp_path / "review-2-after-one-label.png")

    automated = second["auto"].lower()
    press(page, "1" if automated != "positive" else "3")  # disagree with the scorer
    wait_labelled(page, 2, 2)
    after_two = shown(page)
    assert after_two["accuracy"] != second["accuracy"]

    press(page, "u")  # undo: the same mention comes back, the stats go back
    wait_labelled(page, 1, 1)
    undone = shown(page)
    assert undone["id"] == second["id"] and undone["accuracy"] == second["accuracy"]

    press(page, "s")  # skip it
    page.wait_for(f"{MAIN}.dataset.itemId !== '{second['id']}'", "another item after a skip")
    press(page, "3")
    wait_labelled(page, 2, 2)
    page.screenshot(tmp_path / "review-3-done.png")

    with live_server.client("analyst") as c:
        stats = c.get("/api/v1/review/stats").json()
    assert stats["overall"]["n"] == 2
    assert page.evaluate("document.getElementById('stat-n').textContent") == "2"
    assert page.problems() == []
    for name in ("review-1-first-item", "review-2-after-one-label", "review-3-done"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_a_viewer_key_cannot_open_the_review_page(page: Page, live_server: LiveServer) -> None:
    page.navigate(f"{live_server.base_url}/login#key={live_server.keys.viewer}")
    page.wait_for("location.pathname === '/'", "logged in")
    page.navigate(f"{live_server.base_url}/review")
    text = page.wait_for("document.body && document.body.textContent", "page loaded")
    assert "cannot review" in text
