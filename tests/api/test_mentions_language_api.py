"""Languages through the whole service: a Spanish mention pushed to the API is stored
unscored, counted in volume, left out of net sentiment and the review queue; ``lang``
filters the mentions (422 naming ``lang`` for a code that is none); the executive report
shows the language mix, in its JSON and on its page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.api.settings import ApiSettings
from services.core.storage.tables import mentions, review_items
from services.embedded import Embedded
from services.ingest.settings import IngestSettings
from services.scorer.settings import ScorerSettings
from tests.fixtures.app import TEST_BRANDS, Keys
from tests.fixtures.mentions import mention_doc

SPANISH = "Acme es un desastre, el servicio al cliente es terrible y nadie responde"
GERMAN = "Acme ist wirklich großartig, der Kundendienst hat sofort geholfen"
DOCS = [
    mention_doc(id="es", text=SPANISH, lang=None, created_at="2026-03-02T10:01:00Z"),
    mention_doc(id="de", text=GERMAN, lang="de-DE", created_at="2026-03-02T10:02:00Z"),
    mention_doc(id="en-1", text="Acme is wonderful, I love it", lang=None),
    mention_doc(id="en-2", text="Acme is awful and broken", lang="en"),
]
RANGE = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-03T00:00:00Z"}


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Embedded]:
    """Every scored mention is sampled for review: an unscored one must still not be."""
    data_dir = tmp_path / "data"
    emb = Embedded(
        ingest=IngestSettings(data_dir=data_dir, demo=False),
        scorer=ScorerSettings(data_dir=data_dir, spot_check_rate=1.0),
        api=ApiSettings(data_dir=data_dir),
    )
    async with emb:
        for name, query, competitors in TEST_BRANDS:
            emb.brands.create(name, query, competitors)
        await emb.refresh_brands()
        yield emb


@pytest.fixture
async def stored(client: httpx.AsyncClient, keys: Keys, embedded: Embedded) -> None:
    r = await client.post("/api/v1/mentions", json=DOCS, headers=keys.header("ingest"))
    assert r.status_code == 202 and r.json()["accepted"] == 4, r.text
    await embedded.drain()


async def get(client: httpx.AsyncClient, keys: Keys, path: str, **params: str) -> Any:
    r = await client.get(path, params=params, headers=keys.header("viewer"))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.usefixtures("stored")
async def test_a_spanish_mention_is_stored_unscored_and_counted_in_volume_only(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    items = {m["id"]: m for m in (await get(client, keys, "/api/v1/mentions"))["items"]}
    assert items["es"]["language"] == "es"
    assert items["es"]["sentiment"]["label"] == "unscored"
    assert items["es"]["sentiment"]["method"] == "none"
    assert not items["es"]["spot_check"]
    assert items["de"]["language"] == "de"  # the source's tag, trusted
    assert items["de"]["sentiment"]["label"] == "unscored"
    assert [items[i]["sentiment"]["label"] for i in ("en-1", "en-2")] == ["positive", "negative"]
    assert items["en-1"]["language"] == "en"

    sov = await get(client, keys, "/api/v1/share-of-voice", brands="Acme", **RANGE)
    [acme] = sov["brands"]
    assert acme["mentions"] == 4  # volume counts every language
    assert (acme["positive"], acme["neutral"], acme["negative"]) == (1, 0, 1)
    assert acme["net_sentiment"] == 0.0  # (1 − 1) ÷ 2: the Spanish "desastre" is not in it

    with embedded.engine.connect() as conn:
        queued = conn.execute(
            select(mentions.c.mention_id).join(
                review_items, review_items.c.mention_pk == mentions.c.pk
            )
        ).scalars()
        assert sorted(queued) == ["en-1", "en-2"]  # sampled at rate 1, yet not "es" or "de"


@pytest.mark.usefixtures("stored")
async def test_lang_filters_the_mentions(client: httpx.AsyncClient, keys: Keys) -> None:
    async def ids(**params: str) -> list[str]:
        return sorted(
            m["id"] for m in (await get(client, keys, "/api/v1/mentions", **params))["items"]
        )

    assert await ids(lang="es") == ["es"]
    assert await ids(lang="DE") == ["de"]
    assert await ids(lang="en", brand="Acme") == ["en-1", "en-2"]
    assert await ids(lang="fr") == []
    assert await ids(label="unscored") == ["de", "es"]


@pytest.mark.parametrize("bad", ["xx", "english", "e", "es-ES", "1"])
async def test_an_unknown_language_code_is_422_naming_lang(
    client: httpx.AsyncClient, keys: Keys, bad: str
) -> None:
    r = await client.get("/api/v1/mentions", params={"lang": bad}, headers=keys.header("viewer"))
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["lang"], r.json()
    assert "unknown language code" in r.json()["detail"]


@pytest.mark.usefixtures("stored")
async def test_the_report_shows_the_language_mix(client: httpx.AsyncClient, keys: Keys) -> None:
    report = await get(client, keys, "/api/v1/reports/executive", brand="Acme", **RANGE)
    mix = report["language_mix"]
    assert [(x["language"], x["mentions"], x["scored"]) for x in mix["languages"]] == [
        ("en", 2, True),
        ("de", 1, False),
        ("es", 1, False),
    ]
    assert mix["languages"][0]["share"] == 0.5
    assert (mix["unscored"], mix["other_languages"], mix["denominator"]["total"]) == (2, 0, 4)
    assert report["volume"]["mentions"] == 4
    assert report["net_sentiment"]["value"] == 0.0

    r = await client.post("/login", json={"key": keys.viewer})
    assert r.status_code == 204
    page = await client.get(
        "/reports/executive", params={"brand": "Acme", "from": "2026-03-02", "to": "2026-03-02"}
    )
    assert page.status_code == 200, page.text
    section = page.text.split('id="languages"', 1)[1].split("</section>", 1)[0]
    assert "es" in section and "unscored" in section
