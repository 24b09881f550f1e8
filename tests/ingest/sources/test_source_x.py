"""X: rules from brand queries, tweet mapping, the documented backoff, and the connector
against a fake API v2 (rules, filtered stream, recent search)."""

from __future__ import annotations

import orjson
import pytest
from pydantic import SecretStr

from services.core.brands import BrandDefinition
from services.core.models import Mention
from services.ingest.sources.base import Batch, Credentials, Runtime, StaticBrands
from services.ingest.sources.config import XConfig
from services.ingest.sources.errors import AuthError, GarbageError, PlatformError, RateLimited
from services.ingest.sources.x import (
    XConnector,
    desired_rules,
    mention_from_tweet,
    rule_changes,
    rule_from_query,
    x_backoff_s,
)
from tests.ingest.sources.fakes import (
    LOCAL_URLS,
    FakePlatform,
    FakeTime,
    Reply,
    fixture_bytes,
    mentions_of,
    take,
    until_error,
)

LONG = "Acme " + "thread " * 2000
STREAM_LINES = [
    line.replace(b"NOTE_TWEET_PLACEHOLDER", LONG.encode())
    for line in fixture_bytes("x", "stream.ndjson").split(b"\n")
]
PAYLOADS = [orjson.loads(line) for line in STREAM_LINES if line.strip()]
TOKEN = "AAAAAAAAAAAAAAAAAAAAAbearer-secret"
BRANDS = StaticBrands(
    [
        BrandDefinition("Acme", '("acme" OR @acmehq OR #acme) AND NOT "acme anvils"'),
        BrandDefinition("Globex", '"globex corp" OR @globexcorp'),
    ]
)


def test_brand_queries_become_x_rules() -> None:
    assert rule_from_query('("acme" OR @acmehq OR #acme) AND NOT "acme anvils"') == (
        '("acme" OR @acmehq OR #acme) -"acme anvils"'
    )
    assert rule_from_query('"globex corp" OR @globexcorp') == '"globex corp" OR @globexcorp'
    # X refuses a negated group: NOT is pushed onto each term.
    assert rule_from_query("acme AND NOT (anvil OR coyote)") == "acme -anvil -coyote"
    assert rule_from_query("acme AND NOT (anvil AND coyote)") == "acme (-anvil OR -coyote)"
    assert rule_from_query("node.js") == '"node.js"'


def test_rules_are_synced_without_touching_foreign_ones() -> None:
    desired, skipped = desired_rules(BRANDS.definitions(), "sentimon:", 512)
    assert skipped == []
    current = [
        {"id": "1", "value": '("acme" OR @acmehq OR #acme) -"acme anvils"', "tag": "sentimon:Acme"},
        {"id": "2", "value": "old rule", "tag": "sentimon:Initech"},
        {"id": "3", "value": "cats", "tag": "someone else"},
    ]
    delete, add = rule_changes(current, desired, "sentimon:")
    assert delete == ["2"]
    assert add == [{"value": '"globex corp" OR @globexcorp', "tag": "sentimon:Globex"}]
    _, too_long = desired_rules(BRANDS.definitions(), "sentimon:", 20)
    assert too_long == ["Acme", "Globex"]


def test_tweets_map_with_reach_replies_retweets_and_long_posts() -> None:
    plain, retweet, reply, long = (mention_from_tweet(p["data"], p["includes"]) for p in PAYLOADS)
    assert isinstance(plain, Mention)
    assert plain.text == "Loving the new @acmehq dashboard & reports"
    assert plain.author.handle == "dana_ops" and plain.author.followers == 5120
    assert plain.author.verified and plain.author.description == "VP Support @ Initech"
    assert plain.metrics is not None and (plain.metrics.likes, plain.metrics.reposts) == (25, 5)
    assert plain.url == "https://x.com/dana_ops/status/1859000000000000001"
    assert isinstance(retweet, Mention)
    assert retweet.id == "1858999999999999000" and retweet.author.handle == "ops_watch"
    assert isinstance(reply, Mention)
    assert reply.lang == "es" and reply.in_reply_to_id == "1858999999999999000"
    assert reply.conversation_id == "1858999999999999000"
    assert isinstance(long, Mention)
    assert long.lang is None and len(long.text) == 10_000 and long.text.startswith("Acme thread")
    # A retweet whose original is not included cannot be read.
    assert mention_from_tweet(PAYLOADS[1]["data"], {}) is None


def test_the_documented_reconnect_backoff() -> None:
    network = PlatformError("x", 0)
    http = PlatformError("x", 503)
    assert [x_backoff_s(network, n) for n in (1, 2, 3, 100)] == [0.25, 0.5, 0.75, 16.0]
    assert [x_backoff_s(http, n) for n in (1, 2, 3, 7, 100)] == [5.0, 10.0, 20.0, 320.0, 320.0]
    limited = RateLimited("x", 0.0)
    assert [x_backoff_s(limited, n) for n in (1, 2, 3)] == [60.0, 120.0, 240.0]
    assert x_backoff_s(RateLimited("x", 900.0), 1) == 900.0


def _connector(
    platform: FakePlatform, fake_time: FakeTime, token: str | None = TOKEN
) -> XConnector:
    creds = Credentials(x_bearer_token=SecretStr(token) if token else None)
    return XConnector(
        XConfig(name="x", api_base=platform.base_url),
        Runtime(
            urls=LOCAL_URLS,
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            credentials=creds,
            brands=BRANDS,
        ),
    )


RULES = "/2/tweets/search/stream/rules"
STREAM = "/2/tweets/search/stream"
SEARCH = "/2/tweets/search/recent"


def _serve_rules(platform: FakePlatform) -> None:
    existing = {"data": [{"id": "2", "value": "old", "tag": "sentimon:Initech"}], "meta": {}}
    platform.on("GET", RULES, Reply(200, orjson.dumps(existing)))
    platform.on("POST", RULES, Reply(200, b'{"meta": {"summary": {"created": 2}}}'))


async def test_rules_stream_reconnect_and_recovery_from_the_checkpoint(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    _serve_rules(platform)
    chunks = [b"\r\n", *(line + b"\r\n" for line in STREAM_LINES), b"\r\n"]
    platform.on("GET", STREAM, Reply(200, chunks=chunks))
    connector = _connector(platform, fake_time)
    got, closed = await until_error(connector.batches(None))
    assert isinstance(closed, PlatformError) and "closed the stream" in str(closed)
    assert connector.backoff_s(closed, 1) == 0.25
    assert len(mentions_of(got)) == 4
    assert got[-1].checkpoint == {"last_id": "1859000000000000004"}
    posts = [orjson.loads(r.body) for r in platform.hits("POST", RULES)]
    assert posts[0] == {"delete": {"ids": ["2"]}}
    assert {r["tag"] for r in posts[1]["add"]} == {"sentimon:Acme", "sentimon:Globex"}
    stream_request = platform.hits("GET", STREAM)[0]
    assert stream_request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "author_id" in stream_request.query["expansions"][0]

    # Reconnect from the checkpoint: what was posted meanwhile comes from the recent
    # search (two pages), then the stream resumes.
    page1 = {
        "data": [
            {
                "id": "1859000000000000006",
                "text": "acme again",
                "author_id": "9",
                "created_at": "2026-11-20T12:05:00.000Z",
            }
        ],
        "includes": {"users": [{"id": "9", "username": "nine"}]},
        "meta": {"next_token": "p2"},
    }
    page2 = {
        "data": [
            {
                "id": "1859000000000000005",
                "text": "acme meanwhile",
                "author_id": "9",
                "created_at": "2026-11-20T12:04:00.000Z",
            }
        ],
        "meta": {},
    }
    platform.on(
        "GET",
        SEARCH,
        lambda r: Reply(200, orjson.dumps(page2 if "next_token" in r.query else page1)),
    )
    platform.on("GET", STREAM, Reply(200, chunks=[b"\r\n"], hold=True))
    resumed = connector.batches(got[-1].checkpoint)
    recovered: list[Batch] = []
    while not recovered or recovered[-1].checkpoint is None:
        recovered += await take(resumed, 1)
    await resumed.aclose()
    assert {m.id for m in mentions_of(recovered)} == {"1859000000000000005", "1859000000000000006"}
    assert recovered[-1].checkpoint == {"last_id": "1859000000000000006"}
    searches = platform.hits("GET", SEARCH)
    assert searches[0].query["since_id"] == ["1859000000000000004"]
    assert {s.query["query"][0] for s in searches} >= {'"globex corp" OR @globexcorp'}


async def test_stream_errors_garbage_429_and_missing_token(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    _serve_rules(platform)
    disconnect = orjson.dumps(
        {"errors": [{"title": "operational-disconnect", "disconnect_type": "UpstreamUncleanly"}]}
    )
    platform.on("GET", STREAM, Reply(200, chunks=[disconnect + b"\r\n"]))
    with pytest.raises(PlatformError, match="operational-disconnect"):
        await take(_connector(platform, fake_time).batches(None), 1)
    platform.on("GET", STREAM, Reply(200, chunks=[b"<html>oops</html>\r\n"]))
    with pytest.raises(GarbageError):
        await take(_connector(platform, fake_time).batches(None), 1)
    platform.on(
        "GET", STREAM, Reply(429, b'{"title":"ConnectionException"}', {"Retry-After": "900"})
    )
    with pytest.raises(RateLimited) as limited:
        await take(_connector(platform, fake_time).batches(None), 1)
    assert limited.value.retry_after_s == 900.0
    with pytest.raises(AuthError, match="SENTIMON_X_BEARER_TOKEN"):
        await take(_connector(platform, fake_time, token=None).batches(None), 1)
