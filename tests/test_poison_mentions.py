"""Poison among good mentions, end to end in embedded mode on SQLite and PostgreSQL
(issue 14): every good mention is stored, each poison one is refused at the edge with
the field named or, where it reaches the store, dead-lettered with the database's
reason, and the consumer never stops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from services.api.settings import ApiSettings
from services.core.auth import Role
from services.core.models import Mention
from services.core.storage.tables import brand_minute_rollups, mentions
from services.core.topics import RAW
from services.embedded import Embedded
from services.ingest.settings import IngestSettings
from services.scorer.settings import ScorerSettings
from tests.fixtures.app import TEST_BRANDS
from tests.fixtures.mentions import mention_doc
from tests.fixtures.store_refusal import POISON_PREFIX, REFUSAL_MESSAGE, install_refusal_trigger

GOOD = 1_000

# Each shape the issue names, and the field the edge must name for it.
EDGE_POISON: list[tuple[dict[str, Any], str]] = [
    (mention_doc(id="p-year-1", created_at="0001-01-01T00:30:00+01:00"), "created_at"),
    (mention_doc(id="p-year-9999", created_at="9999-12-31T23:30:00-01:00"), "created_at"),
    (mention_doc(id="p-nul-id", author={"id": "p\u0000", "handle": "p"}), "author.id"),
    (mention_doc(id="p-nul-handle", author={"id": "p", "handle": "p\u0000"}), "author.handle"),
    (mention_doc(id="p-c1-handle", author={"id": "p", "handle": "p\u0085"}), "author.handle"),
    (mention_doc(id="p-nul\u0000"), "id"),
    (mention_doc(id="p-nul-text", text="Acme\u0000 is great"), "text"),
]


def good_doc(i: int) -> dict[str, Any]:
    return mention_doc(
        id=f"good-{i}",
        text=("Acme is great", "Acme support is awful", "Globex and Acme compared")[i % 3],
        created_at=f"2026-03-02T{10 + i % 8:02d}:{i % 60:02d}:00Z",
        author={"id": f"a{i % 50}", "handle": f"h{i % 50}", "followers": i},
    )


@pytest.fixture
async def poisoned(database_url: str, tmp_path: Path) -> AsyncIterator[Embedded]:
    data_dir = tmp_path / "data"
    emb = Embedded(
        ingest=IngestSettings(data_dir=data_dir, demo=False),
        scorer=ScorerSettings(data_dir=data_dir, database_url=database_url),
        api=ApiSettings(data_dir=data_dir, database_url=database_url),
    )
    async with emb:
        install_refusal_trigger(emb.engine)
        for name, query, competitors in TEST_BRANDS:
            emb.brands.create(name, query, competitors)
        await emb.refresh_brands()
        yield emb


async def test_poison_never_stops_the_pipeline_and_every_good_mention_is_stored(
    poisoned: Embedded,
) -> None:
    emb = poisoned
    ingest_key = emb.keys.create(Role.INGEST, "poison test")[0]
    admin_key = emb.keys.create(Role.ADMIN, "poison test")[0]
    # What reaches the store and is refused there: the edge cannot foresee it.
    store_poison = [mention_doc(id=f"{POISON_PREFIX}-{i}", text="Acme rocks") for i in range(3)]
    body: list[dict[str, Any]] = [good_doc(i) for i in range(GOOD)]
    # Spread the poison through the body, so it shares batches with good mentions.
    for k, doc in enumerate([d for d, _ in EDGE_POISON] + store_poison):
        body.insert(37 + k * 97, doc)

    app = emb.create_app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        r = await client.post(
            "/api/v1/mentions",
            content=orjson.dumps(body),
            headers={"Authorization": f"Bearer {ingest_key}", "content-type": "application/json"},
        )
        assert r.status_code == 202, r.text
        answer = r.json()
        assert answer["accepted"] == GOOD + len(store_poison)
        refused = {body[x["index"]]["id"]: x["error"] for x in answer["rejected"]}
        assert set(refused) == {d["id"] for d, _ in EDGE_POISON}
        for doc, field in EDGE_POISON:
            assert refused[doc["id"]].startswith(f"{field}: "), refused

        # The same shapes already on the bus (queued before the edge refused them) go
        # to the dead-letter queue at decode, with the field named.
        producer = await emb.bus.producer()
        for doc, _ in EDGE_POISON:
            await producer.send(RAW, orjson.dumps(doc))
        await producer.send(RAW, orjson.dumps(good_doc(GOOD)))
        await emb.drain(timeout_s=120)

        assert emb.pipeline is not None
        assert emb.pipeline.progress_problem() is None
        assert (await client.get("/readyz")).status_code == 200

        with emb.engine.connect() as conn:
            stored = set(conn.execute(select(mentions.c.mention_id)).scalars())
            rolled_up = conn.execute(select(func.sum(brand_minute_rollups.c.mentions))).scalar()
        assert stored == {f"good-{i}" for i in range(GOOD + 1)}
        # Each good mention names Acme, one in three Globex too: counted once each.
        assert rolled_up == (GOOD + 1) + len(range(2, GOOD + 1, 3))

        r = await client.get(
            "/api/v1/dead-letters", headers={"Authorization": f"Bearer {admin_key}"}
        )
        letters = {orjson.loads(d["payload"])["id"]: d["reason"] for d in r.json()}
        assert set(letters) == {d["id"] for d, _ in EDGE_POISON} | {d["id"] for d in store_poison}
        for doc in store_poison:
            assert letters[doc["id"]].startswith("store refused: ")
            assert REFUSAL_MESSAGE in letters[doc["id"]]
        for doc, field in EDGE_POISON:
            assert letters[doc["id"]].startswith(f"invalid Mention: {field}: "), letters

    # Later mentions keep flowing: the consumer did not stop.
    assert emb.publisher is not None
    assert await emb.publisher.publish(Mention.model_validate(good_doc(GOOD + 1)), "http")
    await emb.drain(timeout_s=60)
    with emb.engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).where(mentions.c.mention_id == f"good-{GOOD + 1}")
            ).scalar()
            == 1
        )
