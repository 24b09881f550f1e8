"""RSS and Atom feeds (Google Alerts, blogs, news sites), polled politely.

Each feed is polled on its own interval with a conditional request (``If-None-Match`` /
``If-Modified-Since`` from the last answer), so an unchanged feed costs a 304. Entries
are deduplicated by id against the ids seen in earlier polls (kept, bounded, in the
checkpoint), their HTML is reduced to text, and Google Alerts' redirect links
(``https://www.google.com/url?...&url=<article>``) are unwrapped to the article.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import feedparser  # type: ignore[import-untyped]
import httpx

from services.core.models import Author, Mention
from services.core.sources import Feed, RssConfig
from services.ingest.sources.base import Batch, Checkpoint, Connector, Runtime
from services.ingest.sources.errors import GarbageError
from services.ingest.sources.http import check_status, make_client, network_error
from services.ingest.sources.protocol import InvalidRecord, SourceItem
from services.ingest.sources.text import (
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    bounded_id,
    html_to_text,
    http_url,
    lang_tag,
    mention_text,
    short,
)

MAX_FEED_BYTES = 10 * 1024 * 1024
# Ids remembered per feed: well above any feed's length, so a feed that keeps its old
# entries never re-delivers them; stored as short digests to keep checkpoints small.
MAX_SEEN_PER_FEED = 1000
_GLOBAL_ID = ("http://", "https://", "tag:", "urn:")


# ------------------------------------------------------------------- pure mapping


def unwrap_redirect(link: str) -> str:
    """The target of a Google redirect link (as Google Alerts feeds use), else ``link``."""
    try:
        parts = urlsplit(link)
    except ValueError:
        return link
    host = (parts.hostname or "").lower()
    google = host == "google.com" or host.startswith(("www.google.", "google."))
    if google and parts.path == "/url":
        query = parse_qs(parts.query)
        for key in ("url", "q"):
            target = (query.get(key) or [""])[0]
            if target.startswith(("http://", "https://")):
                return target
    return link


def entry_key(entry: Mapping[str, Any]) -> str | None:
    """What identifies an entry within its feed: its id, else its link, else its title."""
    for field in ("id", "link", "title"):
        value = entry.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _entry_time(entry: Mapping[str, Any]) -> datetime | None:
    for field in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(field)
        if isinstance(value, time.struct_time):
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, OSError, ValueError):
                continue
    return None


def mention_from_entry(
    entry: Mapping[str, Any], feed: Mapping[str, Any], feed_url: str, now: datetime
) -> SourceItem | None:
    """One feed entry as a mention (``None`` if it has nothing to identify it by).

    ``feed`` is feedparser's feed-level data. The text is the title and the content (or
    summary) as text; the time is the entry's (else ``now``: feeds without dates exist);
    the author is the entry's author, else the feed. Entry ids that are not globally
    unique (not a URL, ``tag:`` or ``urn:``) are prefixed by a digest of the feed URL.
    """
    key = entry_key(entry)
    if key is None:
        return None
    position = f"{feed_url} entry {key[:200]}"
    prefix = "" if key.startswith(_GLOBAL_ID) else f"{_digest(feed_url)[:10]}:"
    title = html_to_text(entry.get("title") or "")
    contents = entry.get("content") or []
    body_html = ""
    if contents and isinstance(contents[0], Mapping):
        body_html = str(contents[0].get("value") or "")
    body_html = body_html or str(entry.get("summary") or "")
    body = html_to_text(body_html)
    if body == title:
        body = ""
    text = mention_text(title, body)
    if not text:
        return InvalidRecord(position, "text: the entry has no title, content or summary")
    link = unwrap_redirect(str(entry.get("link") or ""))
    host = urlsplit(feed_url).hostname or "feed"
    feed_title = short(str(feed.get("title") or ""), MAX_NAME_CHARS)
    author_name = short(str(entry.get("author") or ""), MAX_NAME_CHARS)
    author_id = author_name or feed_title or host
    language = (
        contents[0].get("language") if contents and isinstance(contents[0], Mapping) else None
    )
    return Mention(
        id=bounded_id(key, prefix),
        source="rss",
        url=http_url(link),
        text=text,
        lang=lang_tag(language)
        or lang_tag(entry.get("language"))
        or lang_tag(feed.get("language")),
        created_at=_entry_time(entry) or now,
        author=Author(
            id=bounded_id(f"{host}/{author_id}")[:MAX_ID_CHARS],
            handle=(author_name or feed_title or host)[:MAX_ID_CHARS],
            name=author_name or feed_title,
        ),
    )


def new_items(
    parsed: Mapping[str, Any], feed_url: str, seen: list[str], now: datetime
) -> tuple[list[SourceItem], list[str]]:
    """The entries of a parsed feed not seen before, and the updated list of seen ids
    (digests, oldest first, at most ``MAX_SEEN_PER_FEED``)."""
    known = set(seen)
    items: list[SourceItem] = []
    added: list[str] = []
    feed = parsed.get("feed") or {}
    for entry in parsed.get("entries") or []:
        key = entry_key(entry)
        if key is None:
            items.append(
                InvalidRecord(f"{feed_url} entry", "id: the entry has no id, link or title")
            )
            continue
        digest = _digest(key)
        if digest in known:
            continue
        known.add(digest)
        added.append(digest)
        item = mention_from_entry(entry, feed, feed_url, now)
        if item is not None:
            items.append(item)
    updated = (seen + added)[-MAX_SEEN_PER_FEED:]
    return items, updated


def parse_feed(body: bytes, feed_url: str, content_type: str) -> Mapping[str, Any]:
    """feedparser's result; ``GarbageError`` if the body is no feed at all."""
    parsed = feedparser.parse(
        body, response_headers={"content-location": feed_url, "content-type": content_type}
    )
    if parsed.get("bozo") and not parsed.get("entries") and not parsed.get("version"):
        raise GarbageError(f"{feed_url}: not an RSS or Atom feed ({parsed.get('bozo_exception')})")
    result: Mapping[str, Any] = parsed
    return result


# --------------------------------------------------------------------- the shell


class FeedConnector(Connector):
    """Checkpoint: ``{"feeds": {url: {"etag", "modified", "seen": [digest, ...]}}}``."""

    kind = "rss"

    def __init__(
        self,
        config: RssConfig,
        runtime: Runtime,
        *,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        super().__init__(config.name, runtime)
        self.config = config
        # Feeds are read without credentials: no host gets an Authorization header.
        self._client_factory = client_factory or (lambda: make_client(runtime.urls))

    async def batches(self, checkpoint: Checkpoint | None) -> AsyncGenerator[Batch, None]:
        clock, sleep = self.runtime.clock, self.runtime.sleep
        stored = dict((checkpoint or {}).get("feeds") or {})
        state: dict[str, dict[str, Any]] = {
            feed.url: dict(stored.get(feed.url) or {}) for feed in self.config.feeds
        }
        start = clock.now()
        due = {feed.url: start for feed in self.config.feeds}
        by_url = {feed.url: feed for feed in self.config.feeds}
        async with self._client_factory() as client:
            while True:
                url = min(due, key=lambda u: due[u])
                wait = (due[url] - clock.now()).total_seconds()
                if wait > 0:
                    await sleep(wait)
                items = await self._poll(client, by_url[url], state[url])
                due[url] = clock.now() + timedelta(seconds=by_url[url].interval_s)
                yield Batch(items, {"feeds": {u: dict(s) for u, s in state.items()}})

    async def _poll(
        self, client: httpx.AsyncClient, feed: Feed, state: dict[str, Any]
    ) -> list[SourceItem]:
        """Fetch one feed; updates ``state`` (validators, seen ids) in place."""
        now = self.runtime.clock.now()
        headers = {}
        if state.get("etag"):
            headers["If-None-Match"] = str(state["etag"])
        if state.get("modified"):
            headers["If-Modified-Since"] = str(state["modified"])
        what = f"feed {urlsplit(feed.url).hostname}"
        try:
            async with client.stream("GET", feed.url, headers=headers) as response:
                if response.status_code == 304:
                    return []
                check_status(response, now, what)
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_FEED_BYTES:
                        raise GarbageError(f"{what}: larger than {MAX_FEED_BYTES} bytes")
                content_type = response.headers.get("content-type", "")
                etag = response.headers.get("etag")
                modified = response.headers.get("last-modified")
        except httpx.HTTPError as e:
            raise network_error(what, e) from e
        parsed = await asyncio.to_thread(parse_feed, body, feed.url, content_type)
        items, seen = new_items(parsed, feed.url, list(state.get("seen") or []), now)
        state["seen"] = seen
        state["etag"] = etag
        state["modified"] = modified
        return items
