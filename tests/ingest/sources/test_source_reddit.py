"""Reddit: listing mapping, and the connector against a fake OAuth + API server."""

from __future__ import annotations

import base64

import orjson
import pytest
from pydantic import SecretStr

from services.core.models import Mention
from services.ingest.sources.base import Credentials, Runtime
from services.ingest.sources.config import RedditConfig
from services.ingest.sources.errors import AuthError, GarbageError, RateLimited
from services.ingest.sources.reddit import (
    RedditConnector,
    listing_children,
    new_things,
    wait_for_quota,
)
from tests.ingest.sources.fakes import (
    LOCAL_URLS,
    FakePlatform,
    FakeTime,
    Reply,
    fixture_bytes,
    mentions_of,
    take,
)

TOKEN = fixture_bytes("reddit", "token.json")
NEW = fixture_bytes("reddit", "new.json")
COMMENTS = fixture_bytes("reddit", "comments.json")
EMPTY = b'{"kind": "Listing", "data": {"children": []}}'
SECRET = "s3cr3t-reddit-app-secret"


def test_posts_and_comments_map_with_threads_and_skip_deleted_ones() -> None:
    posts, seen = new_things(listing_children(NEW, "t"), [])
    comments, _ = new_things(listing_children(COMMENTS, "t"), [])
    assert [m.id for m in posts if isinstance(m, Mention)] == ["t3_1gv0003", "t3_1gv0001"]
    assert seen == ["t3_1gv0003", "t3_1gv0002", "t3_1gv0001"]  # the deleted one too
    review = posts[1]
    assert isinstance(review, Mention)
    assert review.text.startswith("Acme after 3 months: an honest review\n\nWe moved 40 agents")
    assert "SSO setup & the price" in review.text
    assert review.author.handle == "helpdesk_hero" and review.author.id == "t2_abc123"
    assert review.conversation_id == "t3_1gv0001"
    assert review.url == (
        "https://www.reddit.com/r/sysadmin/comments/1gv0001/acme_after_3_months_an_honest_review/"
    )
    assert review.metrics is not None and review.metrics.replies == 23
    assert isinstance(posts[0], Mention) and posts[0].metrics is not None
    assert posts[0].metrics.likes == 0  # a negative score is no likes
    assert [m.id for m in comments if isinstance(m, Mention)] == ["t1_lx00001", "t1_lx00003"]
    reply = comments[1]
    assert isinstance(reply, Mention)
    assert reply.in_reply_to_id == "t1_lx00001" and reply.conversation_id == "t3_1gv0001"
    assert isinstance(comments[0], Mention)
    assert comments[0].text == "Acme support answered me in 5 minutes & fixed it."


def test_rate_limit_headers_say_when_to_wait() -> None:
    assert wait_for_quota({"x-ratelimit-remaining": "57.0", "x-ratelimit-reset": "300"}) == 0
    assert wait_for_quota({"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "42"}) == 42
    assert wait_for_quota({"x-ratelimit-remaining": "zero"}) == 0


def test_garbage_listings_are_refused() -> None:
    for body in (b"<html>", b"[]", b'{"kind": "Listing", "data": {}}'):
        with pytest.raises(GarbageError):
            listing_children(body, "reddit")


def _connector(
    platform: FakePlatform, fake_time: FakeTime, secret: str | None = SECRET
) -> RedditConnector:
    config = RedditConfig(
        name="reddit",
        subreddits=["sysadmin", "helpdesk"],
        searches=['"acme"'],
        api_base=platform.base_url,
        auth_url=f"{platform.base_url}/api/v1/access_token",
    )
    creds = Credentials(
        reddit_client_id="app-id",
        reddit_client_secret=SecretStr(secret) if secret else None,
        reddit_user_agent="test:sentimon:0.1 (by /u/tester)",
    )
    return RedditConnector(
        config,
        Runtime(urls=LOCAL_URLS, clock=fake_time.clock, sleep=fake_time.sleep, credentials=creds),
    )


async def test_polls_dedupe_honour_quota_and_resume(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    platform.on("POST", "/api/v1/access_token", Reply(200, TOKEN))
    quota = {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "42", "X-Ratelimit-Used": "100"}
    platform.on("GET", "/r/sysadmin+helpdesk/new", Reply(200, NEW))
    platform.on("GET", "/r/sysadmin+helpdesk/comments", Reply(200, COMMENTS, quota))
    platform.on("GET", "/search", Reply(200, NEW))
    connector = _connector(platform, fake_time)
    stream = connector.batches(None)
    first = await take(stream, 3)
    assert len(mentions_of(first)) == 4 + 2  # the search found the same posts again
    assert fake_time.sleeps == [42.0]  # out of quota: waited for the reset
    second = await take(stream, 3)
    await stream.aclose()
    assert mentions_of(second) == []  # the same listings again: nothing new
    assert fake_time.sleeps == [42.0, 120.0, 42.0]  # the interval between rounds
    auth = platform.hits("POST", "/api/v1/access_token")
    assert len(auth) == 1  # the token is reused until it expires
    assert (
        auth[0].headers["authorization"]
        == "Basic " + base64.b64encode(f"app-id:{SECRET}".encode()).decode()
    )
    assert auth[0].body == b"grant_type=client_credentials"
    listing = platform.hits("GET", "/search")[0]
    assert listing.query["q"] == ['"acme"'] and listing.query["sort"] == ["new"]
    assert listing.headers["user-agent"] == "test:sentimon:0.1 (by /u/tester)"
    assert listing.headers["authorization"].startswith("bearer eyJ")

    checkpoint = second[-1].checkpoint
    assert checkpoint is not None
    more = orjson.loads(COMMENTS)
    more["data"]["children"].insert(0, {**more["data"]["children"][0]})
    more["data"]["children"][0]["data"] = {
        **more["data"]["children"][0]["data"],
        "name": "t1_lx00009",
        "body": "New since the restart",
    }
    platform.on("GET", "/r/sysadmin+helpdesk/comments", Reply(200, orjson.dumps(more)))
    restarted = _connector(platform, fake_time).batches(checkpoint)
    again = await take(restarted, 3)
    await restarted.aclose()
    assert [m.id for m in mentions_of(again)] == ["t1_lx00009"]


async def test_an_expired_token_is_renewed_once(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    platform.on("POST", "/api/v1/access_token", Reply(200, TOKEN))
    platform.on("GET", "/r/sysadmin+helpdesk/new", Reply(401, b"{}"), Reply(200, NEW))
    stream = _connector(platform, fake_time).batches(None)
    await take(stream, 1)
    await stream.aclose()
    assert len(platform.hits("POST", "/api/v1/access_token")) == 2


async def test_429_missing_and_refused_credentials(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    platform.on("POST", "/api/v1/access_token", Reply(200, TOKEN))
    platform.on("GET", "/r/sysadmin+helpdesk/new", Reply(429, b"", {"Retry-After": "7"}))
    with pytest.raises(RateLimited) as caught:
        await take(_connector(platform, fake_time).batches(None), 1)
    assert caught.value.retry_after_s == 7.0
    with pytest.raises(AuthError, match="SENTIMON_REDDIT_CLIENT_SECRET"):
        await take(_connector(platform, fake_time, secret=None).batches(None), 1)
    platform.on("POST", "/api/v1/access_token", Reply(401, b'{"error": "invalid_grant"}'))
    with pytest.raises(AuthError) as refused:
        await take(_connector(platform, fake_time).batches(None), 1)
    assert SECRET not in str(refused.value)
