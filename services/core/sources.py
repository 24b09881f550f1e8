"""Sources, as the ingest runs them and the API manages them: what an admin configures
per source (``sources.yaml`` entries and ``/api/v1/sources`` bodies share these models),
and how each source is doing.

Credentials are never part of a source's configuration or status: they come from the
ingest settings (environment), see ``docs/sources.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

MAX_SOURCES = 50
"""Source names label metrics, so their number is bounded."""

SourceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
HttpUrl = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s/]+\S*$")]
WsUrl = Annotated[str, StringConstraints(max_length=2048, pattern=r"^wss?://[^\s/]+\S*$")]
Word = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Tag = Annotated[str, StringConstraints(pattern=r"^\w{1,100}$")]
Subreddit = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{2,21}$")]


class _Base(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: SourceName
    enabled: bool = True


class Feed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: HttpUrl
    interval_s: float = Field(default=900.0, ge=60.0, le=86_400.0)


class RssConfig(_Base):
    """RSS/Atom feeds (Google Alerts, blogs, news), each polled on its own interval."""

    kind: Literal["rss"] = "rss"
    feeds: list[Feed] = Field(min_length=1, max_length=500)


class MastodonConfig(_Base):
    """One Mastodon instance: hashtags streamed live, keywords searched periodically."""

    kind: Literal["mastodon"] = "mastodon"
    instance: HttpUrl
    hashtags: list[Tag] = Field(default_factory=list, max_length=50)
    keywords: list[Word] = Field(default_factory=list, max_length=50)
    search_interval_s: float = Field(default=300.0, ge=30.0, le=86_400.0)
    # Some instances serve streaming from another host (their /api/v1/instance says which).
    streaming: HttpUrl | None = None


class BlueskyConfig(_Base):
    """The Bluesky Jetstream firehose, filtered by the tracked brands' queries."""

    kind: Literal["bluesky"] = "bluesky"
    endpoint: WsUrl = "wss://jetstream2.us-east.bsky.network/subscribe"
    checkpoint_every_s: float = Field(default=5.0, ge=0.0, le=3600.0)


class RedditConfig(_Base):
    """New posts and comments of subreddits, and new results of searches."""

    kind: Literal["reddit"] = "reddit"
    subreddits: list[Subreddit] = Field(default_factory=list, max_length=100)
    searches: list[Word] = Field(default_factory=list, max_length=50)
    comments: bool = True
    interval_s: float = Field(default=120.0, ge=10.0, le=86_400.0)
    api_base: HttpUrl = "https://oauth.reddit.com"
    auth_url: HttpUrl = "https://www.reddit.com/api/v1/access_token"


class XConfig(_Base):
    """The X API v2 filtered stream, with one rule per tracked brand."""

    kind: Literal["x"] = "x"
    api_base: HttpUrl = "https://api.x.com"
    rule_tag_prefix: Annotated[str, StringConstraints(pattern=r"^[\w.:-]{1,32}$")] = "sentimon:"
    # After a disconnection, fetch what was missed since the checkpoint's last id with the
    # recent search (same rules; covers up to 7 days, counts against the search quota).
    recover_with_search: bool = True
    max_rule_chars: int = Field(default=512, ge=64, le=4096)


SourceConfig = Annotated[
    RssConfig | MastodonConfig | BlueskyConfig | RedditConfig | XConfig,
    Field(discriminator="kind"),
]
SOURCE_CONFIG: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)

SourceState = Literal["pending", "starting", "running", "backoff", "stopped", "disabled"]
"""``pending``: configured and enabled, not yet picked up by an ingest (no status yet)."""


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """How one source is doing, as its ingest last wrote it. ``lag_seconds``: age of the
    newest mention it delivered, at delivery (how far behind the platform it reads).
    Counters count since the ingest last (re)started the source."""

    name: str
    kind: str
    state: SourceState
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    next_attempt_at: datetime | None = None
    lag_seconds: float | None = None
    mentions_accepted: int = 0
    mentions_duplicate: int = 0
    records_invalid: int = 0
