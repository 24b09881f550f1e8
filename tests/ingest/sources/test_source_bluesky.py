"""Bluesky: Jetstream event mapping, and the connector against a local Jetstream
(``websockets.serve`` on 127.0.0.1) replaying recorded-style events from a cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from services.core.brands import BrandDefinition
from services.core.models import Mention
from services.ingest.sources.base import Runtime, StaticBrands
from services.ingest.sources.bluesky import BlueskyConnector, mention_from_event, subscribe_url
from services.ingest.sources.config import BlueskyConfig
from services.ingest.sources.errors import PlatformError, RateLimited
from services.ingest.sources.protocol import InvalidRecord
from tests.ingest.sources.fakes import (
    LOCAL_URLS,
    FakeTime,
    fixture_bytes,
    mentions_of,
    take,
    until_error,
)

LINES = [line for line in fixture_bytes("bluesky", "jetstream.jsonl").splitlines() if line]
EVENTS = [orjson.loads(line) for line in LINES]
BRANDS = StaticBrands([BrandDefinition("Acme", '"acme" OR @acmehq')])


def test_posts_map_with_threading_and_language() -> None:
    first = mention_from_event(EVENTS[0])
    assert isinstance(first, Mention)
    assert first.id == "at://did:plc:eygmaihciaxprqvxpfvl6flk/app.bsky.feed.post/3lbqo2vuowo2b"
    assert (
        first.url == "https://bsky.app/profile/did:plc:eygmaihciaxprqvxpfvl6flk/post/3lbqo2vuowo2b"
    )
    assert first.lang == "en" and first.conversation_id == first.id
    reply = mention_from_event(EVENTS[2])
    assert isinstance(reply, Mention)
    assert reply.lang == "ja" and reply.text == "「Acme」のサポートは最高でした"
    assert reply.in_reply_to_id == first.id and reply.conversation_id == first.id


def test_deletes_reposts_identity_and_account_events_are_not_mentions() -> None:
    assert [mention_from_event(e) for e in EVENTS[3:7]] == [None, None, None, None]


def test_naive_times_bad_languages_and_missing_text() -> None:
    naive = mention_from_event(EVENTS[7])
    assert isinstance(naive, Mention)
    assert naive.lang is None
    assert naive.created_at.timestamp() == pytest.approx(1763640000.000008)
    broken = mention_from_event(EVENTS[8])
    assert isinstance(broken, InvalidRecord) and broken.error.startswith("commit.record.text")
    long = mention_from_event(
        {**EVENTS[0], "commit": {**EVENTS[0]["commit"], "record": {"text": "acme " * 3000}}}
    )
    assert isinstance(long, Mention) and len(long.text) == 10_000


def test_the_cursor_resumes_just_after_the_last_event() -> None:
    url = subscribe_url("wss://jetstream.example/subscribe", 1763640000000003)
    assert parse_qs(urlsplit(url).query) == {
        "wantedCollections": ["app.bsky.feed.post"],
        "cursor": ["1763640000000004"],
    }


@dataclass
class FakeJetstream:
    """Replays ``lines`` from the requested cursor, then closes (or keeps the socket open)."""

    lines: list[bytes]
    hold: bool = False
    refuse_with: HTTPStatus | None = None
    cursors: list[int | None] = field(default_factory=list)
    server: Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/subscribe"

    def _refuse(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse_with is not None:
            return connection.respond(self.refuse_with, "go away\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        self.cursors.append(cursor)
        for line in self.lines:
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                event = None
            time_us = event.get("time_us", 0) if isinstance(event, dict) else 0
            if cursor is None or time_us == 0 or time_us >= cursor:
                await ws.send(line.decode())
        if self.hold:
            await ws.wait_closed()


@pytest.fixture
async def jetstream() -> AsyncIterator[FakeJetstream]:
    fake = FakeJetstream(LINES)
    async with serve(fake._handler, "127.0.0.1", 0, process_request=fake._refuse) as server:
        fake.server = server
        yield fake


def _connector(fake: FakeJetstream, fake_time: FakeTime) -> BlueskyConnector:
    config = BlueskyConfig(name="bsky", endpoint=fake.url, checkpoint_every_s=0)
    return BlueskyConnector(
        config,
        Runtime(urls=LOCAL_URLS, clock=fake_time.clock, sleep=fake_time.sleep, brands=BRANDS),
    )


async def test_the_firehose_is_filtered_by_the_brands_and_resumes_from_its_cursor(
    jetstream: FakeJetstream, fake_time: FakeTime
) -> None:
    connector = _connector(jetstream, fake_time)
    got, error = await until_error(connector.batches(None))
    assert isinstance(error, PlatformError) and "closed the stream" in str(error)
    texts = [m.text for m in mentions_of(got)]
    assert texts == [
        "Switched our whole team to Acme this week and the inbox finally makes sense",
        "「Acme」のサポートは最高でした",
        "acme acme acme, no offset on my clock",
    ]  # "Nice weather in Lisbon" matched no brand
    assert any(isinstance(i, InvalidRecord) for b in got for i in b.items)
    assert got[-1].checkpoint == {"cursor": 1763640000000009}

    # Reconnect from a checkpoint in the middle: only what came after it, once.
    resumed, error = await until_error(connector.batches({"cursor": 1763640000000003}))
    assert isinstance(error, PlatformError)
    assert jetstream.cursors == [None, 1763640000000004]
    assert [m.text for m in mentions_of(resumed)] == ["acme acme acme, no offset on my clock"]


async def test_garbage_messages_are_counted_and_the_stream_goes_on(
    jetstream: FakeJetstream, fake_time: FakeTime
) -> None:
    jetstream.lines = [b"\x00garbage{", b"[1,2,3]", LINES[0]]
    got, error = await until_error(_connector(jetstream, fake_time).batches(None))
    assert isinstance(error, PlatformError)
    invalid = [i for b in got for i in b.items if isinstance(i, InvalidRecord)]
    assert [i.error for i in invalid] == ["body: not JSON", "body: expected a JSON object"]
    assert len(mentions_of(got)) == 1


async def test_a_refused_connection_is_rate_limited_or_an_error(
    jetstream: FakeJetstream, fake_time: FakeTime
) -> None:
    jetstream.refuse_with = HTTPStatus.TOO_MANY_REQUESTS
    with pytest.raises(RateLimited):
        await take(_connector(jetstream, fake_time).batches(None), 1)
    jetstream.refuse_with = HTTPStatus.BAD_GATEWAY
    with pytest.raises(PlatformError) as caught:
        await take(_connector(jetstream, fake_time).batches(None), 1)
    assert caught.value.status == 502
