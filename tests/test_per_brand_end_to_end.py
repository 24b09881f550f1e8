"""Issue 16, end to end: a mention naming two brands goes through the whole embedded
pipeline (ingest, scorer, store, API) and each brand's figures count the sentiment toward
that brand, not one label for the mention. The truth is stated by hand, per pair."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.api.settings import ApiSettings
from services.core.auth import Role
from services.embedded import Embedded
from services.ingest.settings import IngestSettings
from services.ingest.sources.file import FileSource
from services.scorer.settings import ScorerSettings
from tests.fixtures.app import TEST_BRANDS
from tests.fixtures.mentions import mention_doc

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
# (text, {brand: the sentiment toward it, as a reader judges it})
CASES = (
    (
        "Acme support is terrible, but Globex has been fantastic.",
        {"Acme": "negative", "Globex": "positive"},
    ),
    ("Globex is great. Acme is awful and slow.", {"Globex": "positive", "Acme": "negative"}),
    ("Globex shipped a wonderful release today", {"Globex": "positive"}),
)
WINDOW = {"from": START.isoformat(), "to": (START + timedelta(hours=2)).isoformat()}


@pytest.fixture
async def lexicon_app(tmp_path: Path) -> AsyncIterator[tuple[Embedded, httpx.AsyncClient, str]]:
    data_dir = tmp_path / "data"
    emb = Embedded(
        ingest=IngestSettings(data_dir=data_dir, demo=False),
        scorer=ScorerSettings(data_dir=data_dir, scorer_mode="lexicon"),
        api=ApiSettings(data_dir=data_dir),
    )
    async with emb:
        for name, query, competitors in TEST_BRANDS:
            emb.brands.create(name, query, competitors)
        await emb.refresh_brands()
        key = emb.keys.create(Role.VIEWER, "viewer")[0]
        transport = httpx.ASGITransport(app=emb.create_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield emb, c, key


async def _get(client: httpx.AsyncClient, key: str, path: str, **params: str) -> Any:
    r = await client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return r.json()


def _truth(brand: str) -> tuple[int, int, int]:
    labels = [t[brand] for _, t in CASES if brand in t]
    return labels.count("positive"), labels.count("neutral"), labels.count("negative")


async def test_a_two_brand_mention_counts_for_each_brand_its_own_sentiment(
    lexicon_app: tuple[Embedded, httpx.AsyncClient, str], tmp_path: Path
) -> None:
    emb, client, key = lexicon_app
    path = tmp_path / "mentions.jsonl"
    docs = [
        mention_doc(id=f"pb-{i}", text=text, created_at=(START + timedelta(minutes=i)).isoformat())
        for i, (text, _) in enumerate(CASES)
    ]
    path.write_bytes(b"\n".join(orjson.dumps(d) for d in docs) + b"\n")
    emb.add_source(FileSource(path))
    await emb.drain(timeout_s=60)

    # Stored with two different labels, one per brand.
    items = (await _get(client, key, "/api/v1/mentions", limit="10"))["items"]
    two = next(m for m in items if m["id"] == "pb-0")
    assert {b: v["label"] for b, v in two["sentiment_by_brand"].items()} == CASES[0][1]
    assert all(v["targeted"] for v in two["sentiment_by_brand"].values())
    for brand in ("Acme", "Globex"):
        listed = await _get(client, key, "/api/v1/mentions", brand=brand, limit="10")
        got = {m["id"]: m["sentiment"]["label"] for m in listed["items"]}
        want = {f"pb-{i}": t[brand] for i, (_, t) in enumerate(CASES) if brand in t}
        assert got == want, brand

    sov = await _get(client, key, "/api/v1/share-of-voice", brands="Acme,Globex", **WINDOW)
    rows = {r["brand"]: r for r in sov["brands"]}
    for brand in ("Acme", "Globex"):
        row = rows[brand]
        assert (row["positive"], row["neutral"], row["negative"]) == _truth(brand), brand

    for brand in ("Acme", "Globex"):
        pos, neu, neg = _truth(brand)
        series = await _get(client, key, "/api/v1/sentiment", brand=brand, interval="1h", **WINDOW)
        assert sum(p["negative"] for p in series["series"]) == neg, brand
        assert sum(p["positive"] for p in series["series"]) == pos, brand
        report = await _get(client, key, "/api/v1/reports/executive", brand=brand, **WINDOW)
        net = report["net_sentiment"]
        assert (net["positive"], net["neutral"], net["negative"]) == (pos, neu, neg), brand
