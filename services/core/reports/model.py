"""The executive report as data: what ``GET /api/v1/reports/executive`` returns and the
page renders. Every share names its denominator; ``None`` means "no data to divide by"."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.core.adjusted import Adjusted


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class AdjustedFigure(_Out):
    value: float
    ci95: tuple[float, float] = Field(description="95 % interval")


class AdjustedShares(_Out):
    positive: AdjustedFigure
    neutral: AdjustedFigure
    negative: AdjustedFigure


class AdjustedFigures(_Out):
    """Sentiment corrected by the analysts' spot checks, each figure with its 95 % interval
    (``services.core.adjusted``)."""

    labels: int = Field(description="Analyst labels of this brand in this period behind it")
    mentions: AdjustedFigure = Field(description="Mentions truly about the brand")
    shares: AdjustedShares
    net_sentiment: AdjustedFigure | None


class Corrected(_Out):
    """A figure that carries its spot-check-corrected version beside the raw one."""

    adjusted: AdjustedFigures | None = Field(
        default=None,
        description="Sentiment corrected by the analysts' spot checks, with 95 % intervals "
        "(null when there are too few labels: see adjusted_reason).",
    )
    adjusted_reason: str | None = Field(
        default=None, description="Why `adjusted` is null; null when it is given."
    )


def corrected(result: Adjusted | str) -> dict[str, Any]:
    """``adjusted`` and ``adjusted_reason`` of a figure, as keyword arguments."""
    if isinstance(result, str):
        return {"adjusted": None, "adjusted_reason": result}
    return {"adjusted": AdjustedFigures.model_validate(result.as_dict()), "adjusted_reason": None}


class Period(_Out):
    from_: str = Field(serialization_alias="from")
    to: str


class Denominator(_Out):
    """What a share is a share of: the quantity, its total, and in words."""

    of: str
    total: int
    description: str


class Volume(_Out):
    mentions: int
    previous: int | None
    change: float | None = Field(description="(mentions − previous) ÷ previous")


class BrandShare(Corrected):
    brand: str
    subject: bool = Field(description="The brand the report is about (the others: its competitors)")
    mentions: int
    reach: int
    engagement: int
    share_of_mentions: float | None
    share_of_reach: float | None
    share_of_engagement: float | None
    previous_share_of_mentions: float | None
    net_sentiment: float | None


class ShareOfVoice(_Out):
    brands: list[BrandShare]
    denominators: dict[str, Denominator]


class NetSentiment(Corrected):
    value: float | None
    previous: float | None
    change: float | None = Field(description="value − previous, in the same −1…1 units")
    positive: int
    neutral: int
    negative: int
    denominator: Denominator


class SentimentPoint(_Out):
    start: str
    partial: bool
    mentions: int
    positive: int
    neutral: int
    negative: int
    net_sentiment: float | None


class SentimentOverTime(_Out):
    interval_seconds: int
    series: list[SentimentPoint]


class Spike(_Out):
    start: str
    mentions: int
    baseline: float = Field(description="Median mentions per bucket in the period")
    ratio: float


class Alert(_Out):
    """An alert raised in the period, as the alerts store keeps it."""

    id: str
    kind: str
    raised_at: str
    window_start: str
    window_end: str
    observed: float
    expected: float
    summary: str
    # medium | high | critical: the p-value against the rule's sensitivity (docs/alerts.md)
    severity: str = "medium"


class MentionItem(_Out):
    id: str
    source: str
    url: str | None
    text: str
    created_at: str
    author_handle: str
    author_name: str | None
    author_role: str
    followers: int
    engagement: int
    label: str = Field(
        description="The sentiment toward the report's brand (an analyst's label once one counts)"
    )
    score: float = Field(description="The automated score toward the report's brand, −1…1")


class Voice(_Out):
    author_id: str
    handle: str
    name: str | None
    role: str
    followers: int
    mentions: int
    engagement: int
    replies: int
    positive: int
    negative: int
    net_sentiment: float | None
    influence: float


class RoleFigures(_Out):
    role: str
    mentions: int
    share_of_brand_mentions: float | None
    net_sentiment: float | None
    positive: int
    negative: int


class DecisionMakers(Corrected):
    """The first-class figure: what decision makers say about the brand and its set."""

    mentions: int
    share_of_brand_mentions: float | None
    share_of_voice: list[BrandShare]
    net_sentiment: float | None
    previous_net_sentiment: float | None
    change: float | None
    denominators: dict[str, Denominator]


class Conversation(_Out):
    mentions_in_conversation: int
    share: float | None
    previous_share: float | None
    denominator: Denominator
    min_reach: int
    unanswered_negative: list[MentionItem]


class Term(_Out):
    term: str
    count: int
    previous_count: int
    rate: float
    previous_rate: float


class Terms(_Out):
    rising_terms: list[Term]
    rising_themes: list[Term]
    top_terms: list[tuple[str, int]]
    sample: dict[str, int] = Field(description="Mentions sampled in each period for the terms")


class StoryItem(_Out):
    """Mentions that repeat one text (syndicated, retweeted, copied): one story."""

    size: int = Field(description="Mentions of the sample that repeat it")
    first_mention_id: str
    first_source: str
    first_author: str = Field(description="The first poster's handle, without @")
    first_posted_at: str
    first_url: str | None
    combined_reach: int = Field(description="Author followers summed over its mentions")
    sample_text: str
    share_of_window: float = Field(description="size ÷ the mentions sampled")


class Stories(_Out):
    """The period's largest stories (``services.core.stories``: near-duplicate texts
    clustered), each counted once with its combined reach."""

    stories: list[StoryItem]
    sample: int = Field(description="Mentions of the period the stories were looked for in")
    min_size: int = Field(description="Fewest mentions a story has")


class Accuracy(_Out):
    """Measured accuracy from analysts' spot checks, with its uncertainty."""

    accuracy: float | None
    low: float | None
    high: float | None
    reviewed: int
    note: str


class LanguageShare(_Out):
    """Mentions of the brand in one language (ISO 639-1; ``None``: undetermined, or
    stored before languages were detected)."""

    language: str | None
    mentions: int
    share: float | None
    scored: bool = Field(description="Whether the scorer reads this language")


class LanguageMix(_Out):
    """The languages the brand's mentions of the period are written in, most first."""

    languages: list[LanguageShare]
    other_languages: int = Field(description="Mentions in languages beyond those listed")
    unscored: int = Field(
        description="Mentions in languages the scorer cannot read: counted in volume, "
        "left out of every sentiment figure"
    )
    denominator: Denominator


class Responsiveness(_Out):
    """How the brand answers: its own accounts' replies to negative mentions of it."""

    owned_handles: list[str] = Field(description="The brand's own accounts, as listed now")
    owned_mentions: int = Field(
        description="Mentions by the brand's own accounts in the period: stored, left out "
        "of every figure of the brand"
    )
    negative_mentions: int
    answered: int = Field(
        description="Negative mentions an owned account replied to (at any time since)"
    )
    share_answered: float | None
    median_seconds_to_first_answer: float | None
    denominators: dict[str, Denominator]
    note: str | None = Field(default=None, description="Why a figure is null, if one is")


class ExecutiveReport(_Out):
    brand: str
    competitors: list[str]
    period: Period
    previous_period: Period | None
    generated_at: str
    volume: Volume
    share_of_voice: ShareOfVoice
    net_sentiment: NetSentiment
    sentiment_over_time: SentimentOverTime
    spikes: list[Spike]
    alerts: list[Alert] | None = Field(
        description="Alerts raised in the period; null when this instance keeps no alerts"
    )
    top_positive: list[MentionItem]
    top_negative: list[MentionItem]
    top_voices: list[Voice]
    top_decision_maker_voices: list[Voice]
    decision_makers: DecisionMakers
    roles: list[RoleFigures]
    conversation: Conversation
    terms: Terms
    stories: Stories | None = Field(
        default=None, description="Stories of the period: repeated texts, one story each"
    )
    responsiveness: Responsiveness | None = None
    language_mix: LanguageMix
    accuracy: Accuracy | None = Field(
        description="Measured accuracy from spot checks; null when none are available"
    )
    notes: list[str]
