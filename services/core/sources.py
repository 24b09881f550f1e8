"""Sources, as the ingest runs them and the API manages them: what an admin configures
per source (``sources.yaml`` entries and ``/api/v1/sources`` bodies share these models),
and how each source is doing.

Credentials are never part of a source's configuration or status: they come from the
ingest settings (environment), see ``docs/sources.md``.

Every URL of a source is held to the outgoing-URL policy of webhooks
(:mod:`services.core.urls`: no loopback, private or link-local address unless the operator
allows it), and the URLs that receive platform credentials (X's and Reddit's
``api_base``, Reddit's ``auth_url``) must be on the platform's own hosts, over HTTPS,
unless the operator names another host (``SENTIMON_SOURCE_CREDENTIAL_HOSTS``):
:func:`check_source_urls` when a source is configured, and the ingest again before every
request (a name can be re-pointed after it was checked).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from services.core.models import JsonBool, JsonFloat, JsonInt
from services.core.urls import Resolver, WebhookUrlError, check_webhook_url, resolve_host

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
    enabled: JsonBool = True


class Feed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: HttpUrl
    interval_s: JsonFloat = Field(default=900.0, ge=60.0, le=86_400.0)


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
    search_interval_s: JsonFloat = Field(default=300.0, ge=30.0, le=86_400.0)
    # Some instances serve streaming from another host (their /api/v1/instance says which).
    streaming: HttpUrl | None = None


class BlueskyConfig(_Base):
    """The Bluesky Jetstream firehose, filtered by the tracked brands' queries."""

    kind: Literal["bluesky"] = "bluesky"
    endpoint: WsUrl = "wss://jetstream2.us-east.bsky.network/subscribe"
    checkpoint_every_s: JsonFloat = Field(default=5.0, ge=0.0, le=3600.0)


class RedditConfig(_Base):
    """New posts and comments of subreddits, and new results of searches."""

    kind: Literal["reddit"] = "reddit"
    subreddits: list[Subreddit] = Field(default_factory=list, max_length=100)
    searches: list[Word] = Field(default_factory=list, max_length=50)
    comments: JsonBool = True
    interval_s: JsonFloat = Field(default=120.0, ge=10.0, le=86_400.0)
    api_base: HttpUrl = "https://oauth.reddit.com"
    auth_url: HttpUrl = "https://www.reddit.com/api/v1/access_token"


class XConfig(_Base):
    """The X API v2 filtered stream, with one rule per tracked brand."""

    kind: Literal["x"] = "x"
    api_base: HttpUrl = "https://api.x.com"
    rule_tag_prefix: Annotated[str, StringConstraints(pattern=r"^[\w.:-]{1,32}$")] = "sentimon:"
    # After a disconnection, fetch what was missed since the checkpoint's last id with the
    # recent search (same rules; covers up to 7 days, counts against the search quota).
    recover_with_search: JsonBool = True
    max_rule_chars: JsonInt = Field(default=512, ge=64, le=4096)


SourceConfig = Annotated[
    RssConfig | MastodonConfig | BlueskyConfig | RedditConfig | XConfig,
    Field(discriminator="kind"),
]
SOURCE_CONFIG: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)

PLATFORM_HOSTS: Mapping[str, frozenset[str]] = {
    "x": frozenset({"api.x.com", "api.twitter.com"}),
    "reddit": frozenset({"www.reddit.com", "oauth.reddit.com"}),
}
"""The hosts each platform's credentials may be sent to (over HTTPS), by source kind."""


class SourceUrlError(ValueError):
    """A source URL Sentimon may not read from or send credentials to; the message starts
    with the field (``feeds[0].url: ...``)."""


@dataclass(frozen=True, slots=True)
class SourceUrlPolicy:
    """Where sources may read from: the operator's choices (``SENTIMON_SOURCE_ALLOW_*``,
    ``SENTIMON_SOURCE_CREDENTIAL_HOSTS``); strict by default."""

    allow_loopback: bool = False
    allow_private: bool = False
    # Hosts besides the platforms' own that may receive platform credentials (a proxy, a
    # test double); over plain HTTP too, since the operator named them.
    credential_hosts: frozenset[str] = frozenset()
    resolve: Resolver = field(default=resolve_host, compare=False)

    def credential_hosts_for(self, kind: str) -> frozenset[str]:
        """Every host that may receive the credentials of ``kind`` (``x``, ``reddit``)."""
        return PLATFORM_HOSTS.get(kind, frozenset()) | self.credential_hosts

    def credentials_problem(self, kind: str, url: str) -> str | None:
        """Why ``url`` may not receive the credentials of ``kind``, or ``None``."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host in self.credential_hosts:
            return None
        own = PLATFORM_HOSTS.get(kind, frozenset())
        if host not in own:
            return (
                f"{host!r} is not a host of {kind} ({', '.join(sorted(own))}), and Sentimon "
                f"sends the {kind} credentials only there (an operator may allow another "
                "with SENTIMON_SOURCE_CREDENTIAL_HOSTS)"
            )
        if parts.scheme != "https":
            return f"the {kind} credentials are sent over https only"
        return None

    def check(self, url: str, *, unresolved_ok: bool = False) -> list[str]:
        """The addresses ``url`` (``http(s)``, or ``ws(s)`` judged as ``http(s)``) may be
        reached at; ``WebhookUrlError`` if the policy refuses it."""
        return check_webhook_url(
            http_form(url),
            allow_loopback=self.allow_loopback,
            allow_private=self.allow_private,
            resolve=self.resolve,
            unresolved_ok=unresolved_ok,
        )


def http_form(url: str) -> str:
    """``url`` with a ``ws``/``wss`` scheme read as ``http``/``https``."""
    for ws, http in (("ws://", "http://"), ("wss://", "https://")):
        if url[: len(ws)].lower() == ws:
            return http + url[len(ws) :]
    return url


def source_urls(config: SourceConfig) -> list[tuple[str, str, bool]]:
    """``(field, url, carries credentials)`` for every URL of ``config``."""
    if isinstance(config, RssConfig):
        return [(f"feeds[{i}].url", feed.url, False) for i, feed in enumerate(config.feeds)]
    if isinstance(config, MastodonConfig):
        urls = [("instance", config.instance, False)]
        if config.streaming is not None:
            urls.append(("streaming", config.streaming, False))
        return urls
    if isinstance(config, BlueskyConfig):
        return [("endpoint", config.endpoint, False)]
    if isinstance(config, RedditConfig):
        return [("api_base", config.api_base, True), ("auth_url", config.auth_url, True)]
    return [("api_base", config.api_base, True)]


def check_source_urls(config: SourceConfig, policy: SourceUrlPolicy) -> None:
    """Refuse a configuration with a URL the policy refuses, or that would send platform
    credentials to a host other than the platform's (see the module's docstring).

    Resolves the hosts (blocking). A name that does not resolve now is let through: the
    check before each request refuses it if it comes to resolve somewhere refused.
    Raises ``SourceUrlError`` naming the field.
    """
    for name, url, credentials in source_urls(config):
        if credentials and (problem := policy.credentials_problem(config.kind, url)):
            raise SourceUrlError(f"{name}: {problem}")
        try:
            policy.check(url, unresolved_ok=True)
        except WebhookUrlError as e:
            raise SourceUrlError(f"{name}: {e}") from e


def check_all_source_urls(configs: Iterable[SourceConfig], policy: SourceUrlPolicy) -> None:
    """:func:`check_source_urls` for each; the message names the source too."""
    for config in configs:
        try:
            check_source_urls(config, policy)
        except SourceUrlError as e:
            raise SourceUrlError(f"source {config.name!r}: {e}") from e


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
