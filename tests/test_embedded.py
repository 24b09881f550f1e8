"""The embedded runtime: a failing source is reported, not swallowed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from services.core.bus.protocol import Message
from services.core.models import Mention
from services.core.topics import RAW
from services.embedded import Embedded
from services.ingest.accept import accept
from services.ingest.sources.protocol import SourceItem
from services.scorer.steps import decode
from tests.fixtures.mentions import mention_doc


class BrokenSource:
    name = "broken"

    async def items(self) -> AsyncIterator[SourceItem]:
        yield Mention.model_validate(mention_doc(id="before-the-crash"))
        raise ConnectionError("feed went away")


async def test_a_failed_source_is_logged_and_makes_the_instance_not_ready(
    embedded: Embedded, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    task = embedded.add_source(BrokenSource())
    with pytest.raises(ConnectionError):
        await task
    await asyncio.sleep(0)  # ok-sleep: lets the task's done-callback run, waits for nothing
    assert "source:broken stopped" in caplog.text
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert any("ingest: source:broken failed" in p for p in r.json()["problems"])


async def test_a_stored_brand_that_no_longer_compiles_does_not_stop_scoring(
    embedded: Embedded, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy import update

    from services.core.storage.tables import brands

    with embedded.engine.begin() as conn:  # as if written under older, looser rules
        conn.execute(update(brands).where(brands.c.name == "Globex").values(query="globex AND"))
    await embedded.refresh_brands()
    assert "brand 'Globex' is not tracked until fixed" in caplog.text
    assert embedded.pipeline is not None
    assert [b.name for b in embedded.pipeline.matchers.matcher.brands] == ["Acme", "United"]


async def test_the_scorer_parses_only_what_the_ingest_did_not_send_itself(
    embedded: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[bytes] = []
    parse = decode.decode_json_model

    def counting(model: type[Mention], message: Message) -> Mention:
        parsed.append(message.value)
        return parse(model, message)

    monkeypatch.setattr(decode, "decode_json_model", counting)
    sent: list[SourceItem] = [
        Mention.model_validate(mention_doc(id=f"sent-{i}", text="Acme is great")) for i in range(5)
    ]
    await accept(sent, channel="http", publisher=embedded.publisher, metrics=embedded.metrics)
    # Produced another way (as a replayed journal or Kafka delivers): new objects.
    other = orjson.dumps(mention_doc(id="other", text="Acme is fine"))
    producer = await embedded.bus.producer()
    try:
        await producer.send(RAW, other)
        await producer.send(RAW, b"{not json")
    finally:
        await producer.close()
    await embedded.drain(timeout_s=30)

    assert sorted(parsed) == sorted([other, b"{not json"])
    assert len(embedded.trusted) == 0  # each entry went as its message was decoded
    sample = embedded.registry.get_sample_value
    assert sample("sentimon_mentions_stored_total") == 6
    assert sample("sentimon_dlq_messages_total", {"topic": RAW, "reason": "invalid_json"}) == 1
