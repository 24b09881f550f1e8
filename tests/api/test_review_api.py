"""/api/v1/review: claim, label, skip, undo, stats, audit — and labels reflected in the
share-of-voice and sentiment figures, with their measured accuracy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from services.core.models import Mention, Sentiment
from services.core.spotcheck import SpotCheck
from services.core.storage.tables import mentions, review_items
from services.core.storage.writer import MentionWriter, ScoredRecord
from services.embedded import Embedded
from services.scorer.process import scored_document
from tests.fixtures.app import Keys
from tests.fixtures.mentions import mention_doc

API = "/api/v1/review"
HOSTILE = '<img src=x onerror=alert(1)> Acme "quoted" & <script>alert(2)</script>'
SCORES = {"positive": 0.6, "neutral": 0.0, "negative": -0.7}


def write(
    embedded: Embedded, rows: list[tuple[str, str, tuple[str, ...], str]], reviews: int = 1
) -> None:
    """Store scored mentions sampled for review: (id, text, brands, automated label)."""
    now = embedded.clock.now()
    records = []
    for i, (mid, text, brands, label) in enumerate(rows):
        raw = orjson.dumps(
            mention_doc(
                id=mid,
                text=text,
                created_at=(now - timedelta(minutes=10 + i)).isoformat(),
                author={"id": f"a{i}", "handle": f"h{i}", "name": "<b>Bo</b>", "followers": 1000},
            )
        )
        s = Sentiment(
            label=label,
            score=SCORES[label],
            confidence=0.7,
            method="lexicon",
            lexicon_compound=SCORES[label],
        )
        doc = scored_document(raw, brands, s, True, now)
        spot = SpotCheck("random", 50.0, reviews)
        records.append(
            ScoredRecord(Mention.model_validate_json(raw), brands, s, True, now, doc, spot)
        )
    MentionWriter(embedded.engine, embedded.clock).write(records)


async def claim(client: httpx.AsyncClient, keys: Keys, role: str = "analyst") -> dict[str, Any]:
    r = await client.post(f"{API}/claim", headers=keys.header(role))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def label(
    client: httpx.AsyncClient, keys: Keys, item_id: int, value: str, role: str = "analyst"
) -> httpx.Response:
    return await client.post(
        f"{API}/items/{item_id}/label", json={"label": value}, headers=keys.header(role)
    )


async def brand_figures(client: httpx.AsyncClient, keys: Keys, brand: str) -> dict[str, Any]:
    r = await client.get("/api/v1/share-of-voice", headers=keys.header("viewer"))
    assert r.status_code == 200, r.text
    sov = r.json()
    [row] = [b for b in sov["brands"] if b["brand"] == brand]
    r = await client.get(
        "/api/v1/sentiment", params={"brand": brand}, headers=keys.header("viewer")
    )
    assert r.status_code == 200, r.text
    return {"sov": row, "sov_accuracy": sov["accuracy"], "sentiment": r.json()}


async def test_only_analysts_and_admins_review(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    for role in ("viewer", "ingest"):
        r = await client.post(f"{API}/claim", headers=keys.header(role))
        assert r.status_code == 403, r.text
        assert "review" in r.json()["detail"]
    assert (await client.post(f"{API}/claim")).status_code == 401
    assert (await claim(client, keys, "admin"))["item"] is None
    assert (await client.get(f"{API}/stats", headers=keys.header("viewer"))).status_code == 403


async def test_a_label_overrides_the_figures_with_the_measured_accuracy_beside_them(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    write(
        embedded, [("m1", HOSTILE, ("Acme",), "positive"), ("m2", "Acme ok", ("Acme",), "positive")]
    )
    before = await brand_figures(client, keys, "Acme")
    assert before["sov"]["positive"] == 2 and before["sov"]["negative"] == 0
    assert before["sov_accuracy"] is None and before["sentiment"]["accuracy"] is None

    got = await claim(client, keys)
    item = got["item"]
    assert got["progress"] == {"open_items": 2, "labelled_by_you": 0}
    # the mention comes back as it was stored: text, never rendered or escaped here
    assert item["text"] == HOSTILE and item["author"]["name"] == "<b>Bo</b>"
    assert item["brand"] == "Acme" and item["brands"] == ["Acme"]
    assert item["automated"] == {"label": "positive", "method": "lexicon", "confidence": 0.7}
    assert item["author"]["followers"] == 1000 and item["reason"] == "random"

    r = await label(client, keys, item["id"], "negative")
    assert r.status_code == 200, r.text
    assert r.json()["progress"] == {"open_items": 1, "labelled_by_you": 1}
    counted = embedded.registry.get_sample_value(
        "sentimon_review_labels_total", {"label": "negative", "action": "label"}
    )
    assert counted == 1.0

    after = await brand_figures(client, keys, "Acme")
    assert (after["sov"]["positive"], after["sov"]["negative"]) == (1, 1)
    assert after["sov"]["net_sentiment"] == 0.0
    total = after["sentiment"]["total"]
    assert (total["positive"], total["negative"], total["mentions"]) == (1, 1, 2)
    # one label, and it disagreed with the automated one
    for accuracy in (after["sov_accuracy"], after["sentiment"]["accuracy"]):
        assert accuracy["accuracy"] == 0.0 and accuracy["n"] == 1
        lo, hi = accuracy["ci95"]
        assert lo == 0.0 and 0.79 < hi < 0.80  # Wilson on 0 of 1: (0, z²/(1+z²))
    globex = await client.get(
        "/api/v1/sentiment", params={"brand": "Globex"}, headers=keys.header("viewer")
    )
    assert globex.json()["accuracy"] is None  # no label applies to Globex

    r = await client.post(f"{API}/undo", headers=keys.header("analyst"))
    assert r.status_code == 200, r.text
    assert r.json()["item"]["id"] == item["id"]  # handed back, to label again
    undone = {"label": "negative", "action": "undo"}
    assert embedded.registry.get_sample_value("sentimon_review_labels_total", undone) == 1.0
    restored = await brand_figures(client, keys, "Acme")
    assert restored["sov"] == before["sov"] and restored["sov_accuracy"] is None
    counts = ("mentions", "positive", "neutral", "negative", "mean_score", "net_sentiment")
    for key in counts:  # (the range's start moves with the clock)
        assert restored["sentiment"]["total"][key] == before["sentiment"]["total"][key]


async def test_irrelevant_takes_the_mention_out_of_that_brand_only(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    write(embedded, [("both", "Acme and Globex", ("Acme", "Globex"), "neutral")])
    acme_item = (await claim(client, keys))["item"]
    assert acme_item["brand"] == "Acme" and acme_item["brands"] == ["Acme", "Globex"]
    assert (await label(client, keys, acme_item["id"], "irrelevant")).status_code == 200
    acme = await brand_figures(client, keys, "Acme")
    globex = await brand_figures(client, keys, "Globex")
    assert acme["sov"]["mentions"] == 0 and acme["sov"]["reach"] == 0
    assert globex["sov"]["mentions"] == 1 and globex["sov"]["share"] == 1.0
    r = await client.get(
        "/api/v1/mentions", params={"brand": "Acme"}, headers=keys.header("viewer")
    )
    assert r.json()["items"] == []
    # irrelevant is a verdict on the brand match, not on the sentiment
    assert acme["sov_accuracy"] is None
    stats = (await client.get(f"{API}/stats", headers=keys.header("analyst"))).json()
    assert stats["brand_match_precision"]["value"] == 0.0
    assert stats["brand_match_precision"]["n"] == 1


async def test_stats_skip_and_audit(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    write(
        embedded,
        [
            ("s1", "Acme one", ("Acme",), "positive"),
            ("s2", "Acme two", ("Acme",), "negative"),
            ("s3", "Acme three", ("Acme",), "neutral"),
        ],
    )
    verdicts = {"s1": "positive", "s2": "negative", "s3": "positive"}
    skipped = None
    while (item := (await claim(client, keys))["item"]) is not None:
        mid = orjson_id(item)
        if mid == "s3" and skipped is None:
            r = await client.post(f"{API}/items/{item['id']}/skip", headers=keys.header("analyst"))
            assert r.status_code == 204
            skipped = item["id"]
            continue
        assert (await label(client, keys, item["id"], verdicts[mid])).status_code == 200
    # the skipped item went to nobody else yet; the admin takes it
    other = (await claim(client, keys, "admin"))["item"]
    assert other["id"] == skipped
    assert (await label(client, keys, other["id"], "positive", "admin")).status_code == 200

    stats = (await client.get(f"{API}/stats", headers=keys.header("analyst"))).json()
    # s1 P/P, s2 N/N, s3 U/P → 2/3
    assert stats["labelled_items"] == 3
    assert stats["overall"]["accuracy"]["value"] == pytest.approx(2 / 3)
    assert stats["overall"]["recall"]["positive"]["value"] == pytest.approx(0.5)
    assert stats["overall"]["precision"]["neutral"]["value"] == 0.0
    assert set(stats["by_method"]) == {"lexicon"} and set(stats["by_source"]) == {"x"}
    assert stats["by_brand"]["Acme"]["accuracy"]["n"] == 3
    assert stats["human_agreement"]["accuracy"] is None  # nothing double-labelled

    r = await client.get(f"{API}/audit", headers=keys.header("analyst"))
    entries = r.json()
    assert len(entries) == 3
    assert {(e["analyst"], e["action"], e["before"], e["after"]) for e in entries} == {
        ("test analyst", "label", None, "positive"),
        ("test analyst", "label", None, "negative"),
        ("test admin", "label", None, "positive"),
    }


def orjson_id(item: dict[str, Any]) -> str:
    return {"Acme one": "s1", "Acme two": "s2", "Acme three": "s3"}[item["text"]]


async def test_double_review_measures_human_agreement(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    write(embedded, [("d1", "Acme double", ("Acme",), "neutral")], reviews=2)
    first = (await claim(client, keys))["item"]
    assert first["reviews_required"] == 2
    assert (await label(client, keys, first["id"], "negative")).status_code == 200
    assert (await claim(client, keys))["item"] is None  # not twice to the same analyst
    second = (await claim(client, keys, "admin"))["item"]
    assert second["id"] == first["id"] and second["reviews_done"] == 1
    assert (await label(client, keys, second["id"], "negative", "admin")).status_code == 200
    stats = (await client.get(f"{API}/stats", headers=keys.header("analyst"))).json()
    assert stats["human_agreement"]["accuracy"]["value"] == 1.0
    assert stats["human_agreement"]["n"] == 1


async def test_hostile_and_wrong_input_gets_a_clear_error(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    write(embedded, [("h1", HOSTILE, ("Acme",), "neutral")])
    item = (await claim(client, keys))["item"]
    h = keys.header("analyst")
    for body in (
        {"label": "<script>alert(1)</script>"},
        {"label": "Positive"},
        {"label": None},
        {},
    ):
        r = await client.post(f"{API}/items/{item['id']}/label", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["field"] == "body.label"
        assert "<script>" not in r.text
    r = await client.post(
        f"{API}/items/{item['id']}/label", json={"label": "neutral", "extra": 1}, headers=h
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.extra"
    r = await client.post(f"{API}/items/not-a-number/label", json={"label": "neutral"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "path.item_id"
    r = await client.post(f"{API}/items/99999/label", json={"label": "neutral"}, headers=h)
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "item_id"
    r = await client.post(
        f"{API}/items/{item['id']}/label",
        content=b"{not json",
        headers=h | {"content-type": "application/json"},
    )
    assert r.status_code == 422
    # the admin never claimed it: a conflict, not a silent label
    r = await label(client, keys, item["id"], "neutral", "admin")
    assert r.status_code == 409 and "not claimed by you" in r.json()["detail"]
    r = await client.post(f"{API}/undo", headers=keys.header("admin"))
    assert r.status_code == 404 and "nothing to undo" in r.json()["detail"]
    r = await client.get(f"{API}/audit", params={"limit": "0"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.limit"


async def test_the_pipeline_queues_what_it_samples_once(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    docs = [
        mention_doc(id=f"p{i}", text=f"Acme and Globex, take {i}", conversation_id=f"p{i}")
        for i in range(120)
    ]
    for _ in range(2):  # the second push is all duplicates
        r = await client.post("/api/v1/mentions", json=docs, headers=keys.header("ingest"))
        assert r.status_code == 202, r.text
        await embedded.drain()
    with embedded.engine.connect() as conn:
        flagged = conn.execute(
            select(func.count()).select_from(mentions).where(mentions.c.spot_check)
        ).scalar_one()
        queued = conn.execute(select(func.count()).select_from(review_items)).scalar_one()
    assert flagged > 0  # a 10 % rate on 120 mentions (fixed ids: deterministic)
    assert queued == 2 * flagged  # one item per matched brand


async def test_the_review_page_is_served_to_analysts_with_a_strict_policy(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    r = await client.get("/review")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert (await client.post("/login", json={"key": keys.analyst})).status_code == 204
    page = await client.get("/review")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert '<script src="/static/review.js">' in page.text and "<script>" not in page.text
    assert "test analyst" in page.text
    dashboard = await client.get("/")
    assert 'href="/review"' in dashboard.text
    await client.post("/logout")
    assert (await client.post("/login", json={"key": keys.viewer})).status_code == 204
    assert (await client.get("/review")).status_code == 403
    assert 'href="/review"' not in (await client.get("/")).text
