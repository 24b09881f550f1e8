"""Poison on the raw topic reaches the dead-letter table with its reason, and operators
can read it; the good messages around it are stored."""

from __future__ import annotations

import httpx
import orjson

from services.core.topics import RAW
from services.embedded import Embedded
from tests.fixtures.app import Keys
from tests.fixtures.mentions import mention_doc


async def test_poison_is_dead_lettered_and_listed_for_admins(
    embedded: Embedded, client: httpx.AsyncClient, keys: Keys
) -> None:
    producer = await embedded.bus.producer()
    await producer.send(RAW, orjson.dumps(mention_doc(id="good-1", text="Acme is great")))
    await producer.send(RAW, b"\xff not json at all")
    await producer.send(RAW, orjson.dumps(mention_doc(id="naive", created_at="2026-01-01T00:00")))
    await producer.send(RAW, orjson.dumps(mention_doc(id="good-2", text="Acme is awful")))
    await embedded.drain()

    r = await client.get("/api/v1/dead-letters", headers=keys.header("admin"))
    assert r.status_code == 200, r.text
    # Unkeyed, so they went to different partitions: order them by reason.
    letters = sorted(r.json(), key=lambda d: d["reason"])
    reasons = [d["reason"] for d in letters]
    assert len(letters) == 2
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1].startswith("invalid Mention: created_at: naive datetime")
    assert all(d["topic"] == RAW for d in letters)
    assert '"id":"naive"' in letters[1]["payload"]

    r = await client.get("/api/v1/mentions", headers=keys.header("viewer"))
    assert sorted(m["id"] for m in r.json()["items"]) == ["good-1", "good-2"]
    assert (
        await client.get("/api/v1/dead-letters", headers=keys.header("viewer"))
    ).status_code == 403

    # Redelivered dead letters (same position) are kept once.
    from services.core.bus.protocol import Message
    from services.core.storage.deadletters import store_dead_letters

    again = Message(
        RAW,
        0,
        letters[0]["offset"],
        None,
        b"x",
        headers=(
            ("dlq.topic", RAW.encode()),
            ("dlq.partition", str(letters[0]["partition"]).encode()),
            ("dlq.offset", str(letters[0]["offset"]).encode()),
            ("dlq.reason", b"again"),
        ),
    )
    store_dead_letters(embedded.engine, [again], embedded.clock.now())
    r = await client.get("/api/v1/dead-letters", headers=keys.header("admin"))
    assert len(r.json()) == 2


def test_dead_letters_with_nul_bytes_are_kept_on_every_database(database_url: str) -> None:
    # PostgreSQL's text cannot hold NUL: a sink that passed the bytes on would fail on
    # this letter forever and keep every later one out.
    from services.core.bus.protocol import Message
    from services.core.clock import SystemClock
    from services.core.storage.db import make_engine, migrate
    from services.core.storage.deadletters import list_dead_letters, store_dead_letters

    engine = make_engine(database_url)
    migrate(engine)
    letter = Message(
        RAW, 0, 7, None, b'{"id":"x\x00y"}\x00', headers=(("dlq.reason", b"bad\x00reason"),)
    )
    store_dead_letters(engine, [letter], SystemClock().now())
    (kept,) = list_dead_letters(engine)
    assert kept["payload"] == '{"id":"x\ufffdy"}\ufffd'
    assert kept["reason"] == "bad\ufffdreason"
    engine.dispose()
