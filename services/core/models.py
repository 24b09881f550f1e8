"""The mention contracts: pydantic mirrors of ``schemas/mention.v1.json`` and
``schemas/scored_mention.v1.json``.

The JSON Schema files are the contract between services (and with anyone who pushes
mentions to the API); these models are how Python code reads and writes it. A test
validates the same documents against both so they cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

SOURCES: tuple[str, ...] = (
    "x",
    "mastodon",
    "bluesky",
    "reddit",
    "rss",
    "web",
    "linkedin",
    "http",
    "file",
    "demo",
)

SourceName = Literal[
    "x", "mastodon", "bluesky", "reddit", "rss", "web", "linkedin", "http", "file", "demo"
]
SentimentLabel = Literal["positive", "neutral", "negative"]
ScoringMethod = Literal["lexicon", "transformer"]

MAX_TEXT_CHARS = 10_000

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ShortText = Annotated[str, StringConstraints(max_length=512)]
Url = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://\S+$")]
LangTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]
Count = Annotated[int, Field(ge=0, le=10**12)]


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Author(_Contract):
    """Who wrote a mention; ``followers`` is the author's reach on that platform."""

    id: Identifier
    handle: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    name: ShortText | None = None
    followers: Count = 0
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    verified: bool = False


class Metrics(_Contract):
    """Engagement counters as the platform reported them when the mention was read."""

    likes: Count = 0
    reposts: Count = 0
    replies: Count = 0


class Mention(_Contract):
    """A raw mention as a source delivered it (``mention.v1``); ``(source, id)`` is unique."""

    id: Identifier
    source: SourceName
    url: Url | None = None
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
    lang: LangTag | None = None
    created_at: AwareDatetime
    author: Author
    in_reply_to_id: Identifier | None = None
    conversation_id: Identifier | None = None
    metrics: Metrics | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key: the same key stored twice is stored once."""
        return (self.source, self.id)

    @property
    def reach(self) -> int:
        return self.author.followers

    @property
    def engagement(self) -> int:
        m = self.metrics
        return 0 if m is None else m.likes + m.reposts + m.replies


class Sentiment(_Contract):
    """The scorer's verdict. ``score`` is signed polarity, ``confidence`` how sure the method is."""

    label: SentimentLabel
    score: Annotated[float, Field(ge=-1.0, le=1.0)]
    confidence: Annotated[float, Field(ge=0.0, le=1.0)]
    method: ScoringMethod
    lexicon_compound: Annotated[float, Field(ge=-1.0, le=1.0)]
    # Which model gave the verdict (the lexicon's or the transformer's); None only in
    # documents stored before it was recorded.
    model_version: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    # Routed to the transformer but scored by the lexicon, because the transformer could
    # not keep up (overload policy "lexicon").
    fallback: bool = False


class ScoredMention(Mention):
    """A mention after scoring (``scored_mention.v1``): matched brands and sentiment added."""

    brands: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]]
    sentiment: Sentiment
    spot_check: bool = False
    scored_at: AwareDatetime

    @classmethod
    def from_mention(
        cls,
        mention: Mention,
        *,
        brands: list[str],
        sentiment: Sentiment,
        spot_check: bool,
        scored_at: datetime,
    ) -> ScoredMention:
        return cls.model_construct(
            **dict(mention),
            brands=brands,
            sentiment=sentiment,
            spot_check=spot_check,
            scored_at=scored_at,
        )
