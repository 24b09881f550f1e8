"""The embedded runtime: a failing source is reported, not swallowed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from services.core.models import Mention
from services.embedded import Embedded
from services.ingest.sources.protocol import SourceItem
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
