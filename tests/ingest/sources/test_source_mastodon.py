"""Mastodon: status mapping, server-sent events, and the connector against a fake instance."""

from __future__ import annotations

import orjson
import pytest
from pydantic import SecretStr

from services.core.models import Mention
from services.ingest.sources.base import Batch, Credentials, Runtime
from services.ingest.sources.config import MastodonConfig
from services.ingest.sources.errors import AuthError, GarbageError, PlatformError
from services.ingest.sources.mastodon import (
    MastodonConnector,
    SseEvent,
    SseParser,
    mention_from_status,
    newer,
)
from services.ingest.sources.protocol import InvalidRecord
from tests.ingest.sources.fakes import (
    LOCAL_URLS,
    FakePlatform,
    FakeTime,
    Reply,
    fixture_bytes,
    mentions_of,
    take,
)

STATUS = orjson.loads(fixture_bytes("mastodon", "status.json"))
BOOST = orjson.loads(fixture_bytes("mastodon", "boost.json"))
SEARCH = fixture_bytes("mastodon", "search.json")


def test_a_status_maps_with_reach_threading_and_engagement() -> None:
    m = mention_from_status(STATUS, "social.example")
    assert isinstance(m, Mention)
    assert m.id == "social.example/113500000000000001"
    assert m.text == "@acmehq Der neue Export in #Acme ist super & schnell!\n\nDanke!"
    assert m.lang == "de"
    assert m.author.handle == "lena@social.example"
    assert m.author.followers == 842
    assert m.author.description == "Support lead at Initech"
    assert m.in_reply_to_id == "social.example/113499999999999999"
    assert m.metrics is not None
    assert (m.metrics.likes, m.metrics.reposts, m.metrics.replies) == (17, 5, 2)
    assert m.url == "https://social.example/@lena/113500000000000001"


def test_a_boost_is_read_as_the_boosted_post() -> None:
    m = mention_from_status(BOOST, "social.example")
    assert isinstance(m, Mention)
    assert m.id == "social.example/113500000000000040"
    assert m.author.handle == "ops@other.example" and m.author.followers == 15000
    assert m.text == "CW: outage\n\n#acme is down for everyone in EU-West <3 hours now>"


def test_media_only_posts_are_skipped_and_broken_ones_named() -> None:
    statuses = orjson.loads(SEARCH)["statuses"]
    assert mention_from_status(statuses[1], "social.example") is None
    broken = mention_from_status({**STATUS, "created_at": "never"}, "social.example")
    assert isinstance(broken, InvalidRecord) and broken.error.startswith("created_at")
    assert isinstance(mention_from_status(["not", "a", "status"], "h"), InvalidRecord)


def test_long_posts_are_capped() -> None:
    m = mention_from_status({**STATUS, "content": "<p>" + "acme " * 5000 + "</p>"}, "h")
    assert isinstance(m, Mention) and len(m.text) == 10_000


def test_sse_events_are_parsed_and_heartbeats_dropped() -> None:
    parser = SseParser()
    lines = [
        ":thump",
        "event: update",
        'data: {"a":',
        "data: 1}",
        "",
        ":thump",
        "",
        "event: delete",
    ]
    lines += ["data: 123", ""]
    events = [e for line in lines if (e := parser.feed(line)) is not None]
    assert events == [SseEvent("update", '{"a":\n1}'), SseEvent("delete", "123")]


def test_ids_compare_as_numbers() -> None:
    assert newer("100", "99") and not newer("99", "100") and newer("5", None)


def _sse(event: str, data: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def _connector(
    platform: FakePlatform,
    fake_time: FakeTime,
    token: str | None = "tok",  # noqa: S107
) -> MastodonConnector:
    config = MastodonConfig(
        name="fosstodon", instance=platform.base_url, hashtags=["acme"], keywords=["acme pricing"]
    )
    host = "127.0.0.1"
    creds = Credentials(mastodon_tokens={host: SecretStr(token)} if token else {})
    return MastodonConnector(
        config,
        Runtime(urls=LOCAL_URLS, clock=fake_time.clock, sleep=fake_time.sleep, credentials=creds),
    )


async def test_catch_up_then_stream_then_resume_after_a_disconnect(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    platform.on(
        "GET", "/api/v1/timelines/tag/acme", Reply(200, orjson.dumps([STATUS])), Reply(200, b"[]")
    )
    platform.on("GET", "/api/v2/search", Reply(200, SEARCH), Reply(200, b'{"statuses": []}'))
    stream_body = [
        b":thump\n\n",
        _sse("update", orjson.dumps(BOOST)),
        _sse("delete", b"113500000000000001"),
        b":thump\n\n",
    ]
    platform.on("GET", "/api/v1/streaming/hashtag", Reply(200, chunks=stream_body, hold=True))
    connector = _connector(platform, fake_time)
    stream = connector.batches(None)
    want = {
        "127.0.0.1/113500000000000001",  # caught up from the timeline
        "127.0.0.1/113500000000000040",  # the boost, streamed
        "127.0.0.1/113500000000000102",  # the keyword search
    }
    got: list[Batch] = []
    while {m.id for m in mentions_of(got)} != want:
        assert len(got) < 10, [m.id for m in mentions_of(got)]
        got += await take(stream, 1)
    await stream.aclose()
    stream_request = platform.hits("GET", "/api/v1/streaming/hashtag")[0]
    assert stream_request.query["tag"] == ["acme"]
    assert stream_request.headers["authorization"] == "Bearer tok"
    checkpoint = got[-1].checkpoint
    assert checkpoint is not None
    assert checkpoint["last_id"]["tag:acme"] == "113500000000000050"
    assert checkpoint["last_id"]["q:acme pricing"] == "113500000000000102"

    # The server drops the stream; the next connection asks the timeline only for what
    # came after the checkpoint.
    platform.on("GET", "/api/v1/streaming/hashtag", Reply(200, chunks=[b":thump\n\n"]))
    with pytest.raises(PlatformError, match="closed the stream"):
        async for _ in connector.batches(checkpoint):
            pass
    assert platform.hits("GET", "/api/v1/timelines/tag/acme")[-1].query["min_id"] == [
        "113500000000000050"
    ]


async def test_refused_credentials_and_garbage_are_errors(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    platform.on(
        "GET", "/api/v1/timelines/tag/acme", Reply(401, b'{"error":"The access token is invalid"}')
    )
    with pytest.raises(AuthError):
        await take(_connector(platform, fake_time).batches(None), 1)
    platform.on("GET", "/api/v1/timelines/tag/acme", Reply(200, b"<html>maintenance</html>"))
    with pytest.raises(GarbageError):
        await take(_connector(platform, fake_time).batches(None), 1)


async def test_garbage_on_the_stream_is_an_error(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    platform.on("GET", "/api/v1/timelines/tag/acme", Reply(200, b"[]"))
    platform.on("GET", "/api/v2/search", Reply(200, b'{"statuses": []}'))
    platform.on("GET", "/api/v1/streaming/hashtag", Reply(200, chunks=[_sse("update", b"{nope")]))
    with pytest.raises(GarbageError):
        async for _ in _connector(platform, fake_time).batches(None):
            pass


async def test_catch_up_pages_forward_until_the_timeline_is_current(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    def status(n: int) -> dict[str, object]:
        return {**STATUS, "id": str(113600000000000000 + n), "in_reply_to_id": None}

    full = [status(n) for n in range(40, 0, -1)]  # newest first, as Mastodon sends them
    platform.on(
        "GET",
        "/api/v1/timelines/tag/acme",
        Reply(200, orjson.dumps(full)),
        Reply(200, orjson.dumps([status(41)])),
    )
    platform.on("GET", "/api/v1/streaming/hashtag", Reply(200, hold=True))
    checkpoint = {"last_id": {"tag:acme": "113600000000000000"}}
    stream = _connector(platform, fake_time).batches(checkpoint)
    pages = await take(stream, 2)
    await stream.aclose()
    assert len(mentions_of(pages)) == 41
    asked = [r.query["min_id"][0] for r in platform.hits("GET", "/api/v1/timelines/tag/acme")]
    assert asked == ["113600000000000000", "113600000000000040"]
    assert pages[-1].checkpoint == {"last_id": {"tag:acme": "113600000000000041"}}
