"""RSS/Atom: mapping of recorded-style feeds, and the connector against a fake feed server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from services.core.models import Mention
from services.ingest.sources.base import Runtime
from services.ingest.sources.config import Feed, RssConfig
from services.ingest.sources.errors import GarbageError, RateLimited
from services.ingest.sources.feeds import FeedConnector, new_items, parse_feed, unwrap_redirect
from services.ingest.sources.protocol import InvalidRecord, Source
from tests.ingest.sources.fakes import (
    LOCAL_URLS,
    START,
    FakePlatform,
    FakeTime,
    Reply,
    fixture_bytes,
    mentions_of,
    take,
)

ALERTS = fixture_bytes("rss", "google_alerts.atom")
BLOG = fixture_bytes("rss", "blog.rss")


def test_google_alerts_entries_become_mentions_with_unwrapped_links() -> None:
    parsed = parse_feed(ALERTS, "https://www.google.com/alerts/feeds/1/2", "application/atom+xml")
    items, seen = new_items(parsed, "https://www.google.com/alerts/feeds/1/2", [], START)
    mentions = [i for i in items if isinstance(i, Mention)]
    assert len(mentions) == 3 and len(seen) == 3
    first, french, blog = mentions
    assert first.url == "https://news.example.com/2026/11/acme-raises?utm_source=rss"
    assert first.text.startswith("Acme raises $40M to automate support & billing\n\n")
    assert "alert(" not in first.text and "<" not in first.text
    assert '"AI triage"' in first.text
    assert first.id == "tag:google.com,2013:googlealerts/feed:10000000000000000001"
    assert first.created_at == datetime(2026, 11, 20, 11, 30, tzinfo=UTC)
    assert first.author.handle == "Google Alert - acme"
    assert french.lang == "fr"
    assert french.text.startswith("L'entreprise Acme ouvre un bureau à Lyon")
    assert blog.url == "https://blog.example.org/why-we-left-acme"  # not a redirect: kept
    assert "color:red" not in blog.text


def test_rss_items_map_authors_guids_and_flag_what_cannot_be_read() -> None:
    url = "https://supportops.example.com/feed"
    items, _ = new_items(parse_feed(BLOG, url, "application/rss+xml"), url, [], START)
    mentions = [i for i in items if isinstance(i, Mention)]
    invalid = [i for i in items if isinstance(i, InvalidRecord)]
    assert [m.author.name for m in mentions][:1] == ["Dana Scully"]
    shootout, no_guid, undated = mentions
    assert shootout.lang == "en-us"
    assert "Acme: fast" in shootout.text and "evil" not in shootout.text
    # A guid that is not a URL is only unique within its feed: it gets the feed's prefix.
    assert shootout.id.endswith(":post-4711") and shootout.id != "post-4711"
    assert no_guid.id == "https://supportops.example.com/no-guid"
    assert undated.created_at == START  # no date in the feed: when it was read
    assert len(invalid) == 1 and invalid[0].error.startswith("id:")


def test_seen_entries_are_not_delivered_again() -> None:
    url = "https://www.google.com/alerts/feeds/1/2"
    parsed = parse_feed(ALERTS, url, "application/atom+xml")
    _, seen = new_items(parsed, url, [], START)
    again, seen_again = new_items(parsed, url, seen, START)
    assert again == [] and seen_again == seen


def test_a_very_long_entry_is_capped() -> None:
    body = ALERTS.replace(b"Their support", b"Their support " + b"really " * 5000)
    items, _ = new_items(
        parse_feed(body, "https://f.example/x", ""), "https://f.example/x", [], START
    )
    assert all(len(i.text) <= 10_000 for i in items if isinstance(i, Mention))
    assert any(i.text.endswith("…") for i in items if isinstance(i, Mention))


def test_garbage_is_not_a_feed() -> None:
    with pytest.raises(GarbageError, match="not an RSS or Atom feed"):
        parse_feed(b"\x00\x01<html><body>Just a page", "https://f.example/x", "text/html")


def test_redirect_unwrapping_leaves_other_links_alone() -> None:
    assert (
        unwrap_redirect("https://www.google.com/url?q=https://a.example/b") == "https://a.example/b"
    )
    assert unwrap_redirect("https://www.google.com/url?url=javascript:alert(1)").startswith(
        "https://www.google.com/url"
    )
    assert unwrap_redirect("https://example.com/url?url=https://a.example") == (
        "https://example.com/url?url=https://a.example"
    )


def _connector(
    platform: FakePlatform, fake_time: FakeTime, interval_s: float = 600
) -> FeedConnector:
    config = RssConfig(
        name="alerts",
        feeds=[
            Feed(url=f"{platform.base_url}/alerts.atom", interval_s=interval_s),
            Feed(url=f"{platform.base_url}/blog.rss", interval_s=interval_s * 2),
        ],
    )
    return FeedConnector(
        config, Runtime(urls=LOCAL_URLS, clock=fake_time.clock, sleep=fake_time.sleep)
    )


async def test_conditional_requests_dedupe_and_resume_from_the_checkpoint(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    etag = {"ETag": '"v1"', "Content-Type": "application/atom+xml"}
    platform.on(
        "GET",
        "/alerts.atom",
        lambda r: (
            Reply(304) if r.headers.get("if-none-match") == '"v1"' else Reply(200, ALERTS, etag)
        ),
    )
    platform.on(
        "GET",
        "/blog.rss",
        lambda r: (
            Reply(304)
            if r.headers.get("if-modified-since") == "Fri, 20 Nov 2026 09:00:00 GMT"
            else Reply(200, BLOG, {"Last-Modified": "Fri, 20 Nov 2026 09:00:00 GMT"})
        ),
    )
    connector = _connector(platform, fake_time)
    stream = connector.batches(None)
    first = await take(stream, 2)
    assert len(mentions_of(first)) == 6
    # Both feeds again, after their own intervals: 304s, nothing new.
    later = await take(stream, 2)
    await stream.aclose()
    assert mentions_of(later) == []
    assert 600.0 in fake_time.sleeps
    assert platform.hits("GET", "/alerts.atom")[1].headers["if-none-match"] == '"v1"'
    checkpoint = later[-1].checkpoint
    assert checkpoint is not None

    # A restart from the checkpoint: conditional from the first request, nothing repeated,
    # even when the server ignores the validators and sends the whole feed again.
    platform.on("GET", "/alerts.atom", Reply(200, ALERTS))
    restarted = _connector(platform, fake_time).batches(checkpoint)
    again = await take(restarted, 2)
    await restarted.aclose()
    assert mentions_of(again) == []
    assert platform.hits("GET", "/blog.rss")[-1].headers["if-modified-since"] == (
        "Fri, 20 Nov 2026 09:00:00 GMT"
    )


async def test_a_429_becomes_rate_limited_with_the_servers_delay(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    platform.on("GET", "/alerts.atom", Reply(429, b"slow down", {"Retry-After": "120"}))
    stream = _connector(platform, fake_time).batches(None)
    with pytest.raises(RateLimited) as caught:
        await take(stream, 1)
    assert caught.value.retry_after_s == 120.0


async def test_a_server_answering_garbage_fails_the_poll(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    platform.on("GET", "/alerts.atom", Reply(200, b"{\x00\xff not xml at all"))
    stream = _connector(platform, fake_time).batches(None)
    with pytest.raises(GarbageError):
        await take(stream, 1)


async def test_a_connector_is_a_plain_source_too(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    platform.on("GET", "/alerts.atom", Reply(200, ALERTS))
    platform.on("GET", "/blog.rss", Reply(200, BLOG))
    connector = _connector(platform, fake_time)
    assert isinstance(connector, Source)
    items = connector.items()
    got = [await asyncio.wait_for(anext(items), 10) for _ in range(7)]
    await items.aclose()  # type: ignore[attr-defined]
    assert len([i for i in got if isinstance(i, Mention)]) == 6
