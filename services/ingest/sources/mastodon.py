"""Mastodon: hashtags streamed live over server-sent events, keywords searched.

On (re)start every hashtag is caught up from its timeline (``min_id`` = the last id in
the checkpoint), then streamed from ``/api/v1/streaming/hashtag``; keywords are polled
with ``/api/v2/search`` (``type=statuses``, ``min_id``) every ``search_interval_s``.
Boosts are read as the boosted post; ``delete`` events are ignored (what was stored
stays stored). Status ids are local to an instance, so mention ids are
``<instance host>/<status id>``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from services.core.models import Author, Engagement, Mention
from services.core.sources import MastodonConfig
from services.ingest.sources.base import (
    Batch,
    Checkpoint,
    Connector,
    Producer,
    Runtime,
    merge_batches,
)
from services.ingest.sources.errors import GarbageError, PlatformError
from services.ingest.sources.http import check_status, lines, make_client, network_error
from services.ingest.sources.protocol import InvalidRecord, SourceItem
from services.ingest.sources.text import (
    MAX_DESCRIPTION_CHARS,
    MAX_NAME_CHARS,
    bounded_id,
    count,
    html_to_text,
    http_url,
    lang_tag,
    mention_text,
    parse_time,
    short,
)

PAGE_LIMIT = 40
MAX_CATCH_UP_PAGES = 25  # 1,000 posts per hashtag after a restart; older ones are skipped
STREAM_READ_TIMEOUT_S = 90.0  # Mastodon sends a heartbeat comment every ~15 s


# ------------------------------------------------------------------- pure mapping


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str


class SseParser:
    """Server-sent events (the WHATWG format) from lines; comments (``:thump``) dropped."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> SseEvent | None:
        """Take one line (without its end); an event once a blank line completes one."""
        if not line:
            if not self._data and not self._event:
                return None
            event = SseEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        return None


def newer(a: str | None, b: str | None) -> bool:
    """Whether status id ``a`` is after ``b`` (ids are decimal strings; longer is newer)."""
    if a is None:
        return False
    if b is None:
        return True
    return (len(a), a) > (len(b), b)


def mention_from_status(status: object, host: str) -> SourceItem | None:
    """A Mastodon ``Status`` entity as a mention; a boost as the boosted post; ``None``
    for a post without text (media only)."""
    if not isinstance(status, Mapping):
        return InvalidRecord(f"{host} status", "body: expected a status object")
    reblog = status.get("reblog")
    if isinstance(reblog, Mapping):
        status = reblog
    sid = status.get("id")
    position = f"{host} status {str(sid)[:64]}"
    account = status.get("account")
    created = parse_time(status.get("created_at"))
    if not isinstance(sid, str) or not sid:
        return InvalidRecord(position, "id: missing")
    if not isinstance(account, Mapping) or not account.get("id"):
        return InvalidRecord(position, "account: missing")
    if created is None:
        return InvalidRecord(position, "created_at: missing or not an ISO 8601 time")
    text = mention_text(
        html_to_text(str(status.get("spoiler_text") or "")),
        html_to_text(str(status.get("content") or "")),
    )
    if not text:
        return None
    acct = str(account.get("acct") or account.get("username") or account["id"])
    if "@" not in acct:
        acct = f"{acct}@{host}"
    reply_to = status.get("in_reply_to_id")
    return Mention(
        id=bounded_id(f"{host}/{sid}"),
        source="mastodon",
        url=http_url(status.get("url")) or http_url(status.get("uri")),
        text=text,
        lang=lang_tag(status.get("language")),
        created_at=created,
        author=Author(
            id=bounded_id(acct),
            handle=bounded_id(acct),
            name=short(str(account.get("display_name") or ""), MAX_NAME_CHARS),
            followers=count(account.get("followers_count")),
            description=short(html_to_text(str(account.get("note") or "")), MAX_DESCRIPTION_CHARS),
        ),
        in_reply_to_id=bounded_id(f"{host}/{reply_to}")
        if isinstance(reply_to, str) and reply_to
        else None,
        metrics=Engagement(
            likes=count(status.get("favourites_count")),
            reposts=count(status.get("reblogs_count")),
            replies=count(status.get("replies_count")),
        ),
    )


def statuses_from(body: bytes, what: str) -> list[Any]:
    """The list of statuses in a timeline answer, or a search answer's ``statuses``."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise GarbageError(f"{what}: not JSON: {e}") from e
    if isinstance(data, Mapping):
        data = data.get("statuses")
    if not isinstance(data, list):
        raise GarbageError(f"{what}: expected a list of statuses")
    return data


# --------------------------------------------------------------------- the shell


class MastodonConnector(Connector):
    """Checkpoint: ``{"last_id": {"tag:<hashtag>": id, "q:<keyword>": id}}``."""

    kind = "mastodon"

    def __init__(
        self,
        config: MastodonConfig,
        runtime: Runtime,
        *,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        super().__init__(config.name, runtime)
        self.config = config
        self._base = config.instance.rstrip("/")
        self._stream_base = (config.streaming or config.instance).rstrip("/")
        self._host = (urlsplit(config.instance).hostname or "mastodon").lower()
        token = runtime.credentials.mastodon_tokens.get(self._host)
        self._headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        # The instance's token goes to the instance, and to its streaming host only when
        # that is the instance or one of its subdomains (streaming.mastodon.social).
        stream_host = (urlsplit(self._stream_base).hostname or "").lower()
        token_hosts = {self._host}
        if stream_host == self._host or stream_host.endswith("." + self._host):
            token_hosts.add(stream_host)
        self._stream_headers = self._headers if stream_host in token_hosts else {}
        self._client_factory = client_factory or (
            lambda: make_client(
                runtime.urls, credential_hosts=token_hosts, read_timeout_s=STREAM_READ_TIMEOUT_S
            )
        )

    async def batches(self, checkpoint: Checkpoint | None) -> AsyncGenerator[Batch, None]:
        last_ids: dict[str, str] = {
            str(k): str(v) for k, v in dict((checkpoint or {}).get("last_id") or {}).items()
        }
        async with self._client_factory() as client:
            # Catch up on every hashtag first: the stream only carries what comes next.
            # From a checkpoint, page forward (min_id) until the timeline is caught up.
            for tag in self.config.hashtags:
                url = f"{self._base}/api/v1/timelines/tag/{quote(tag)}"
                resuming = f"tag:{tag}" in last_ids
                for _ in range(MAX_CATCH_UP_PAGES if resuming else 1):
                    batch, read = await self._page(client, url, {}, f"tag:{tag}", last_ids)
                    yield batch
                    if read < PAGE_LIMIT:
                        break
            producers: list[Producer] = [
                self._stream_producer(client, tag, last_ids) for tag in self.config.hashtags
            ]
            if self.config.keywords:
                producers.append(self._search_producer(client, last_ids))
            async for batch in merge_batches(producers):
                yield batch

    async def _page(
        self,
        client: httpx.AsyncClient,
        url: str,
        params: dict[str, str],
        key: str,
        last_ids: dict[str, str],
    ) -> tuple[Batch, int]:
        """One page after ``last_ids[key]``, and how many statuses it held."""
        params = {**params, "limit": str(PAGE_LIMIT)}
        if key in last_ids:
            params["min_id"] = last_ids[key]
        what = f"mastodon {self._host}"
        try:
            response = await client.get(url, params=params, headers=self._headers)
        except httpx.HTTPError as e:
            raise network_error(what, e) from e
        check_status(response, self.runtime.clock.now(), what)
        statuses = statuses_from(response.content, what)
        return self._batch(statuses, key, last_ids), len(statuses)

    def _batch(self, statuses: list[Any], key: str, last_ids: dict[str, str]) -> Batch:
        items: list[SourceItem] = []
        for status in statuses:
            sid = status.get("id") if isinstance(status, Mapping) else None
            if isinstance(sid, str) and newer(sid, last_ids.get(key)):
                last_ids[key] = sid
            item = mention_from_status(status, self._host)
            if item is not None:
                items.append(item)
        return Batch(items, {"last_id": dict(last_ids)})

    def _search_producer(self, client: httpx.AsyncClient, last_ids: dict[str, str]) -> Producer:
        async def run(queue: asyncio.Queue[Batch | BaseException]) -> None:
            url = f"{self._base}/api/v2/search"
            while True:
                for keyword in self.config.keywords:
                    params = {"q": keyword, "type": "statuses", "resolve": "false"}
                    batch, _ = await self._page(client, url, params, f"q:{keyword}", last_ids)
                    await queue.put(batch)
                await self.runtime.sleep(self.config.search_interval_s)

        return run

    def _stream_producer(
        self, client: httpx.AsyncClient, tag: str, last_ids: dict[str, str]
    ) -> Producer:
        async def run(queue: asyncio.Queue[Batch | BaseException]) -> None:
            url = f"{self._stream_base}/api/v1/streaming/hashtag"
            what = f"mastodon stream {self._host} #{tag}"
            parser = SseParser()
            try:
                async with client.stream(
                    "GET", url, params={"tag": tag}, headers=self._stream_headers
                ) as response:
                    check_status(response, self.runtime.clock.now(), what)
                    async for raw in lines(response):
                        event = parser.feed(raw.decode("utf-8", "replace"))
                        if event is None or event.event != "update":
                            continue  # heartbeats, deletes, edits of what we have
                        try:
                            status = orjson.loads(event.data)
                        except orjson.JSONDecodeError as e:
                            raise GarbageError(f"{what}: an update that is not JSON") from e
                        await queue.put(self._batch([status], f"tag:{tag}", last_ids))
            except httpx.HTTPError as e:
                raise network_error(what, e) from e
            raise PlatformError(f"{what}: the server closed the stream", 0)

        return run
