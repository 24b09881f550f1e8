"""The mention contracts: pydantic mirrors of ``schemas/mention.v1.json`` and
``schemas/scored_mention.v1.json``.

The JSON Schema files are the contract between services (and with anyone who pushes
mentions to the API); these models are how Python code reads and writes it. A test
validates the same documents against both so they cannot drift apart.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

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
# A verdict's label: a sentiment, or "unscored" for a mention in a language the scorer
# cannot read (counted in volume, left out of every sentiment figure).
VerdictLabel = Literal["positive", "neutral", "negative", "unscored"]
ScoringMethod = Literal["lexicon", "transformer", "none"]

MAX_TEXT_CHARS = 10_000

# What the store can hold, refused at the edge with the field named: a mention that
# passes validation must never fail the database write (issue 14: one such mention used
# to stall scoring for good). The instant, in UTC, falls in [1900, 2100): older or later
# times are data errors, and some (year 1 at +01:00) do not even convert to UTC.
MIN_CREATED_AT = datetime(1900, 1, 1, tzinfo=UTC)
MAX_CREATED_AT = datetime(2100, 1, 1, tzinfo=UTC)
# C0 and C1 control characters, DEL and bidirectional controls. PostgreSQL's text cannot
# hold NUL at all; the others in an identifier are never legitimate: they break logs,
# headers and metrics, or make a handle read as another.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# In free text, NUL and the C1 controls: never legitimate in UTF-8 text (C1 is mojibake),
# and PostgreSQL's text cannot hold NUL. Bidirectional marks stay: right-to-left writing
# uses them, and pages escape what they show.
_NOT_IN_TEXT = re.compile(r"[\x00\x80-\x9f]")


def _no_control_characters(value: str) -> str:
    if (m := _CONTROL.search(value)) is not None:
        raise ValueError(
            f"control character U+{ord(m.group()):04X} at position {m.start()}: "
            "identifiers must be printable, without bidirectional controls"
        )
    return value


def _no_nul(value: str) -> str:
    if (m := _NOT_IN_TEXT.search(value)) is not None:
        raise ValueError(
            f"contains the control character U+{ord(m.group()):04X} at position {m.start()}"
        )
    return value


def storable_time(value: datetime) -> datetime:
    """``value`` if its UTC instant lies in [1900, 2100); raises ``ValueError`` otherwise."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not MIN_CREATED_AT <= utc < MAX_CREATED_AT:
        raise ValueError(
            f"{value.isoformat()} is outside the supported range: "
            "1900-01-01T00:00:00Z to 2099-12-31T23:59:59Z"
        )
    return value


Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256),
    AfterValidator(_no_control_characters),
]
ShortText = Annotated[str, StringConstraints(max_length=512), AfterValidator(_no_nul)]
Url = Annotated[
    str,
    StringConstraints(max_length=2048, pattern=r"^https?://\S+$"),
    AfterValidator(_no_control_characters),
]
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?")


def _rfc3339_text(value: object) -> object:
    """Only RFC 3339 text (or a datetime, from our own code): lax parsing read
    ``1733313600`` and ``"1733313600"`` as Unix times."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise ValueError("give an RFC 3339 time with an offset, e.g. 2026-01-31T09:30:00Z")
    return value


StorableTime = Annotated[
    AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(storable_time)
]
LangTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]
# A mention's language as the scorer decided it: an ISO 639-1 code, lower case.
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
# Strict: a count is a JSON integer, never true or "1000" (lax parsing took both).
Count = Annotated[int, Field(ge=0, le=10**12, strict=True)]
# A time given as a query parameter or in a request body: RFC 3339 text with an offset.
Rfc3339Time = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]


def _json_number(value: object) -> object:
    """Numbers as JSON has them: lax parsing read ``"5"`` and ``true`` as 5 and 1."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number")
    return value


# Request fields as their JSON types: ``0`` is not a boolean and ``"5"`` not a number
# (an integer may be written ``5.0``, as JSON Schema allows).
JsonBool = Annotated[bool, Field(strict=True)]
JsonInt = Annotated[int, BeforeValidator(_json_number)]
JsonFloat = Annotated[float, BeforeValidator(_json_number)]


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Author(_Contract):
    """Who wrote a mention; ``followers`` is the author's reach on that platform."""

    id: Identifier
    handle: Identifier
    name: ShortText | None = None
    followers: Count = 0
    description: (
        Annotated[str, StringConstraints(max_length=2000), AfterValidator(_no_nul)] | None
    ) = None
    verified: Annotated[bool, Field(strict=True)] = False


class Engagement(_Contract):
    """Engagement counters as the platform reported them when the mention was read."""

    likes: Count = 0
    reposts: Count = 0
    replies: Count = 0


class Mention(_Contract):
    """A raw mention as a source delivered it (``mention.v1``); ``(source, id)`` is unique."""

    id: Identifier
    source: SourceName
    url: Url | None = None
    text: Annotated[
        str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS), AfterValidator(_no_nul)
    ]
    lang: LangTag | None = None
    created_at: StorableTime
    author: Author
    in_reply_to_id: Identifier | None = None
    conversation_id: Identifier | None = None
    metrics: Engagement | None = None

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
    """The scorer's verdict. ``score`` is signed polarity, ``confidence`` how sure the method is.

    An unscored mention (a language the scorer cannot read) has label ``unscored``,
    method ``none``, and 0 for ``score``, ``confidence`` and ``lexicon_compound``."""

    label: VerdictLabel
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


class BrandSentiment(_Contract):
    """The sentiment a mention expresses toward one of the brands it names.

    A mention naming one brand has that brand's verdict equal to the mention's own
    (``targeted`` false). A mention naming several is scored once per brand (issue 16):
    by the target-aware model (method ``transformer``) or, where the model is off or
    had no room, by the lexicon on the clauses naming the brand (method ``lexicon``);
    ``targeted`` is then true."""

    label: VerdictLabel
    score: Annotated[float, Field(ge=-1.0, le=1.0)]
    confidence: Annotated[float, Field(ge=0.0, le=1.0)]
    method: ScoringMethod
    targeted: bool = False

    @classmethod
    def of(cls, sentiment: Sentiment, *, targeted: bool = False) -> BrandSentiment:
        return cls(
            label=sentiment.label,
            score=sentiment.score,
            confidence=sentiment.confidence,
            method=sentiment.method,
            targeted=targeted,
        )


class ScoredMention(Mention):
    """A mention after scoring (``scored_mention.v1``): matched brands and sentiment added."""

    brands: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]]
    sentiment: Sentiment
    # The sentiment toward each matched brand, when the mention names two or more
    # (issue 16); absent (None): every brand gets ``sentiment`` (see ``sentiment_for``).
    sentiment_by_brand: dict[str, BrandSentiment] | None = None
    spot_check: bool = False
    scored_at: AwareDatetime
    # The language the scorer read it in: the source's ``lang`` when it names an ISO 639-1
    # language, else detected; None when it could not tell (then read as English), and in
    # documents stored before languages were detected.
    language: LanguageCode | None = None

    def sentiment_for(self, brand: str) -> BrandSentiment:
        """The verdict toward ``brand``: its own if scored per brand, else the mention's."""
        if self.sentiment_by_brand is not None and brand in self.sentiment_by_brand:
            return self.sentiment_by_brand[brand]
        return BrandSentiment.of(self.sentiment)
