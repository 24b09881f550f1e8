"""Reddit: new posts and comments of chosen subreddits, and new results of searches,
through the official API with an app's OAuth credentials (application-only grant).

The subreddits are read together (``/r/a+b/new``, ``/r/a+b/comments``); each search is
``/search?sort=new``. Every poll takes the newest 100 of each listing and keeps what was
not seen (ids kept, bounded, in the checkpoint). Reddit's rate-limit headers
(``X-Ratelimit-Remaining``/``-Reset``) are honoured before they turn into 429s.
Deleted and removed posts and comments are skipped.
"""

from __future__ import annotations

import html
from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson

from services.core.models import Author, Engagement, Mention
from services.core.sources import RedditConfig
from services.ingest.sources.base import Batch, Checkpoint, Connector, Runtime
from services.ingest.sources.errors import AuthError, GarbageError
from services.ingest.sources.http import check_status, make_client, network_error
from services.ingest.sources.protocol import InvalidRecord, SourceItem
from services.ingest.sources.text import (
    bounded_id,
    clean_text,
    count,
    from_epoch,
    http_url,
    mention_text,
)

PAGE_LIMIT = 100
MAX_SEEN_PER_LISTING = 1000
_GONE = frozenset({"[deleted]", "[removed]"})


# ------------------------------------------------------------------- pure mapping


def _plain(text: object) -> str:
    """Reddit's markdown as text; entities decoded (Reddit escapes ``&<>`` unless asked
    for ``raw_json=1``, and a proxy or an old client may not ask)."""
    return clean_text(html.unescape(str(text or "")))


def mention_from_thing(thing: object) -> SourceItem | None:
    """A listing child (``t3`` post or ``t1`` comment) as a mention; ``None`` for a
    deleted or removed one, or another kind of thing."""
    if not isinstance(thing, Mapping) or not isinstance(thing.get("data"), Mapping):
        return InvalidRecord("reddit listing child", "body: expected {kind, data}")
    kind, data = thing.get("kind"), thing["data"]
    if kind not in ("t1", "t3"):
        return None
    name = data.get("name")
    position = f"reddit {str(name)[:64]}"
    if not isinstance(name, str) or not name:
        return InvalidRecord(position, "name: missing")
    author = data.get("author")
    if not isinstance(author, str) or author in _GONE or data.get("removed_by_category"):
        return None
    created = from_epoch(data.get("created_utc"))
    if created is None:
        return InvalidRecord(position, "created_utc: missing or invalid")
    if kind == "t3":
        body = _plain(data.get("selftext"))
        if body in _GONE:
            body = ""
        text = mention_text(_plain(data.get("title")), body)
        in_reply_to: str | None = None
        conversation: str | None = name
        metrics = Engagement(
            likes=count(data.get("score")),
            reposts=count(data.get("num_crossposts")),
            replies=count(data.get("num_comments")),
        )
    else:
        body = _plain(data.get("body"))
        if body in _GONE:
            return None
        text = mention_text(body)
        parent: object
        parent, link = data.get("parent_id"), data.get("link_id")
        in_reply_to = parent if isinstance(parent, str) and parent else None
        conversation = link if isinstance(link, str) and link else None
        metrics = Engagement(likes=count(data.get("score")))
    if not text:
        return None
    permalink = data.get("permalink")
    url = http_url(f"https://www.reddit.com{permalink}") if isinstance(permalink, str) else None
    author_id = data.get("author_fullname")
    return Mention(
        id=bounded_id(name),
        source="reddit",
        url=url,
        text=text,
        created_at=created,
        author=Author(
            id=bounded_id(author_id if isinstance(author_id, str) and author_id else author),
            handle=bounded_id(author),
        ),
        in_reply_to_id=bounded_id(in_reply_to) if in_reply_to else None,
        conversation_id=bounded_id(conversation) if conversation else None,
        metrics=metrics,
    )


def listing_children(body: bytes, what: str) -> list[Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise GarbageError(f"{what}: not JSON: {e}") from e
    data = doc.get("data") if isinstance(doc, Mapping) and doc.get("kind") == "Listing" else None
    children = data.get("children") if isinstance(data, Mapping) else None
    if not isinstance(children, list):
        raise GarbageError(f"{what}: expected a Listing")
    return children


def new_things(children: list[Any], seen: list[str]) -> tuple[list[SourceItem], list[str]]:
    """The children not seen before (oldest first) and the updated seen names."""
    known = set(seen)
    items: list[SourceItem] = []
    added: list[str] = []
    for child in reversed(children):  # listings are newest first
        data = child.get("data") if isinstance(child, Mapping) else None
        name = data.get("name") if isinstance(data, Mapping) else None
        if isinstance(name, str):
            if name in known:
                continue
            known.add(name)
            added.append(name)
        item = mention_from_thing(child)
        if item is not None:
            items.append(item)
    return items, (seen + added)[-MAX_SEEN_PER_LISTING:]


def wait_for_quota(headers: Mapping[str, str]) -> float:
    """Seconds to wait before the next request by Reddit's ``X-Ratelimit-*`` headers
    (0 while requests remain)."""
    try:
        remaining = float(headers.get("x-ratelimit-remaining", "1"))
        reset = float(headers.get("x-ratelimit-reset", "0"))
    except ValueError:
        return 0.0
    if remaining >= 1 or reset != reset:
        return 0.0
    return min(max(reset, 0.0), 600.0)


# --------------------------------------------------------------------- the shell


class RedditConnector(Connector):
    """Checkpoint: ``{"listings": {key: {"seen": [fullname, ...]}}}``."""

    kind = "reddit"

    def __init__(
        self,
        config: RedditConfig,
        runtime: Runtime,
        *,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        super().__init__(config.name, runtime)
        self.config = config
        # The app's credentials and tokens go to Reddit's own hosts only (checked again
        # per request: a configuration stored before the check existed is held to it too).
        self._client_factory = client_factory or (
            lambda: make_client(
                runtime.urls, credential_hosts=runtime.urls.credential_hosts_for("reddit")
            )
        )
        self._token: str | None = None
        self._token_expires: datetime | None = None
        self._pause_s = 0.0

    def listings(self) -> list[tuple[str, str, dict[str, str]]]:
        """``(checkpoint key, path, query)`` of every listing this source reads."""
        out: list[tuple[str, str, dict[str, str]]] = []
        if self.config.subreddits:
            subs = "+".join(self.config.subreddits)
            out.append(("new", f"/r/{subs}/new", {}))
            if self.config.comments:
                out.append(("comments", f"/r/{subs}/comments", {}))
        for query in self.config.searches:
            out.append((f"search:{query}", "/search", {"q": query, "sort": "new", "type": "link"}))
        return out

    async def batches(self, checkpoint: Checkpoint | None) -> AsyncGenerator[Batch, None]:
        stored = dict((checkpoint or {}).get("listings") or {})
        state: dict[str, dict[str, Any]] = {k: dict(v) for k, v in stored.items()}
        async with self._client_factory() as client:
            while True:
                for key, path, params in self.listings():
                    if self._pause_s > 0:
                        pause, self._pause_s = self._pause_s, 0.0
                        await self.runtime.sleep(pause)
                    children = await self._get(client, path, params)
                    entry = state.setdefault(key, {})
                    items, entry["seen"] = new_things(children, list(entry.get("seen") or []))
                    yield Batch(items, {"listings": {k: dict(v) for k, v in state.items()}})
                await self.runtime.sleep(self.config.interval_s)

    async def _get(self, client: httpx.AsyncClient, path: str, params: dict[str, str]) -> list[Any]:
        what = "reddit"
        for attempt in (1, 2):
            token = await self._access_token(client)
            try:
                response = await client.get(
                    self.config.api_base.rstrip("/") + path,
                    params={**params, "limit": str(PAGE_LIMIT), "raw_json": "1"},
                    headers={
                        "Authorization": f"bearer {token}",
                        "User-Agent": self.runtime.credentials.reddit_user_agent,
                    },
                )
            except httpx.HTTPError as e:
                raise network_error(what, e) from e
            self._pause_s = wait_for_quota(response.headers)
            if response.status_code == 401 and attempt == 1:
                self._token = None  # expired early: get a new one, once
                continue
            check_status(response, self.runtime.clock.now(), what)
            return listing_children(response.content, what)
        raise AssertionError("unreachable")

    async def _access_token(self, client: httpx.AsyncClient) -> str:
        now = self.runtime.clock.now()
        if self._token and self._token_expires and now < self._token_expires:
            return self._token
        creds = self.runtime.credentials
        if not creds.reddit_client_id or creds.reddit_client_secret is None:
            raise AuthError(
                "reddit: no app credentials (SENTIMON_REDDIT_CLIENT_ID and "
                "SENTIMON_REDDIT_CLIENT_SECRET)"
            )
        try:
            response = await client.post(
                self.config.auth_url,
                data={"grant_type": "client_credentials"},
                auth=(creds.reddit_client_id, creds.reddit_client_secret.get_secret_value()),
                headers={"User-Agent": creds.reddit_user_agent},
            )
        except httpx.HTTPError as e:
            raise network_error("reddit auth", e) from e
        check_status(response, now, "reddit auth")
        try:
            doc = orjson.loads(response.content)
        except orjson.JSONDecodeError as e:
            raise GarbageError("reddit auth: not JSON") from e
        token = doc.get("access_token") if isinstance(doc, Mapping) else None
        if not isinstance(token, str) or not token:
            raise AuthError("reddit auth: no access_token in the answer")
        expires_in = doc.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        # Renew a minute early rather than have a request refused.
        self._token_expires = now + timedelta(seconds=max(lifetime - 60.0, 30.0))
        self._token = token
        return token
