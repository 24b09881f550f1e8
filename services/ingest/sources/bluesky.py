"""Bluesky through Jetstream: the network's posts as a JSON websocket firehose, kept
when they match a tracked brand.

Jetstream (https://github.com/bluesky-social/jetstream) sends one JSON event per
message, each with ``time_us``, its position in the stream. The checkpoint is the
``time_us`` of the last event read, matched or not; a restart reconnects with
``cursor`` just after it, so nothing is skipped and nothing read twice. The cursor is
checkpointed with every batch of matches, and at least every ``checkpoint_every_s``.
Jetstream carries no author profile (followers, handle): the author is the DID.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from services.core.models import Author, Mention
from services.core.sources import BlueskyConfig
from services.core.urls import WebhookUrlError
from services.ingest.sources.base import Batch, Checkpoint, Connector, Runtime
from services.ingest.sources.errors import AuthError, PlatformError, RateLimited, UrlRefused
from services.ingest.sources.protocol import InvalidRecord, SourceItem
from services.ingest.sources.text import bounded_id, lang_tag, mention_text, obj, parse_time

POST = "app.bsky.feed.post"
MAX_MESSAGE_BYTES = 1_048_576


# ------------------------------------------------------------------- pure mapping


def event_cursor(event: object) -> int | None:
    value = event.get("time_us") if isinstance(event, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def mention_from_event(event: object) -> SourceItem | None:
    """A Jetstream event as a mention: only the creation of a post is one (deletes,
    likes, reposts, identity and account events are ``None``)."""
    if not isinstance(event, Mapping) or event.get("kind") != "commit":
        return None
    commit = event.get("commit")
    if not isinstance(commit, Mapping) or commit.get("collection") != POST:
        return None
    if commit.get("operation") != "create":
        return None  # an update or a delete: Sentimon keeps what it stored
    did, rkey = event.get("did"), commit.get("rkey")
    position = f"jetstream event {event.get('time_us')}"
    record = commit.get("record")
    if not isinstance(did, str) or not did or not isinstance(rkey, str) or not rkey:
        return InvalidRecord(position, "did/commit.rkey: missing")
    if not isinstance(record, Mapping):
        return InvalidRecord(position, "commit.record: missing")
    raw_text = record.get("text")
    if not isinstance(raw_text, str):
        return InvalidRecord(position, "commit.record.text: missing")
    text = mention_text(raw_text.strip())
    if not text:
        return None  # an image or a quote with no words
    created = parse_time(record.get("createdAt"))
    if created is None:
        cursor = event_cursor(event)
        created = datetime.fromtimestamp(cursor / 1e6, UTC) if cursor else None
    if created is None:
        return InvalidRecord(position, "commit.record.createdAt: missing or invalid")
    langs = record.get("langs")
    reply = obj(record.get("reply"))
    parent = _uri(reply.get("parent"))
    root = _uri(reply.get("root"))
    uri = f"at://{did}/{POST}/{rkey}"
    return Mention(
        id=bounded_id(uri),
        source="bluesky",
        url=f"https://bsky.app/profile/{did}/post/{rkey}" if len(did) + len(rkey) < 1900 else None,
        text=text,
        lang=lang_tag(langs[0]) if isinstance(langs, list) and langs else None,
        created_at=created,
        author=Author(id=bounded_id(did), handle=bounded_id(did)),
        in_reply_to_id=parent,
        conversation_id=root or (None if parent else bounded_id(uri)),
    )


def _uri(ref: Any) -> str | None:
    if isinstance(ref, Mapping) and isinstance(ref.get("uri"), str) and ref["uri"]:
        return bounded_id(ref["uri"])
    return None


def subscribe_url(endpoint: str, cursor: int | None) -> str:
    params: dict[str, str | int] = {"wantedCollections": POST}
    if cursor is not None:
        params["cursor"] = cursor + 1
    sep = "&" if "?" in endpoint else "?"
    return f"{endpoint}{sep}{urlencode(params)}"


# --------------------------------------------------------------------- the shell


class BlueskyConnector(Connector):
    """Checkpoint: ``{"cursor": <time_us of the last event read>}``."""

    kind = "bluesky"

    def __init__(self, config: BlueskyConfig, runtime: Runtime) -> None:
        super().__init__(config.name, runtime)
        self.config = config

    async def batches(self, checkpoint: Checkpoint | None) -> AsyncGenerator[Batch, None]:
        clock, brands = self.runtime.clock, self.runtime.brands
        stored = (checkpoint or {}).get("cursor")
        cursor = stored if isinstance(stored, int) and not isinstance(stored, bool) else None
        url = subscribe_url(self.config.endpoint, cursor)
        what = "bluesky jetstream"
        pending: list[SourceItem] = []
        flushed_at = clock.now()
        try:
            addresses = await asyncio.to_thread(self.runtime.urls.check, url)
        except WebhookUrlError as e:
            raise UrlRefused(f"{what}: {e}") from e
        # Connect to the address just checked (the URL's host still names the server for
        # the Host header and TLS); no proxy from the environment.
        address = addresses[0].split("%", 1)[0]
        try:
            async with connect(
                url, max_size=MAX_MESSAGE_BYTES, open_timeout=30, host=address, proxy=None
            ) as ws:
                async for message in ws:
                    try:
                        event = orjson.loads(message)
                    except orjson.JSONDecodeError:
                        pending.append(InvalidRecord(f"{what} message", "body: not JSON"))
                        continue
                    if not isinstance(event, dict):
                        pending.append(
                            InvalidRecord(f"{what} message", "body: expected a JSON object")
                        )
                        continue
                    position = event_cursor(event)
                    if position is not None:
                        cursor = position
                    item = mention_from_event(event)
                    if isinstance(item, InvalidRecord) or (
                        isinstance(item, Mention) and brands.matches(item.text)
                    ):
                        pending.append(item)
                    now = clock.now()
                    every = self.config.checkpoint_every_s
                    if pending or (now - flushed_at).total_seconds() >= every:
                        yield Batch(pending, None if cursor is None else {"cursor": cursor})
                        pending = []
                        flushed_at = now
        except InvalidStatus as e:
            status = e.response.status_code
            if status == 429:
                raise RateLimited(f"{what}: rate limited (HTTP 429)", 60.0) from e
            if status in (401, 403):
                raise AuthError(f"{what}: HTTP {status}") from e
            raise PlatformError(f"{what}: HTTP {status} on connect", status) from e
        except (WebSocketException, OSError, TimeoutError) as e:
            raise PlatformError(f"{what}: connection lost: {type(e).__name__}", 0) from e
        except ValueError as e:  # websockets refuses a cross-origin redirect when pinned
            raise PlatformError(f"{what}: a redirect to another host is not followed", 0) from e
        if pending:
            yield Batch(pending, None if cursor is None else {"cursor": cursor})
        raise PlatformError(f"{what}: the server closed the stream", 0)
