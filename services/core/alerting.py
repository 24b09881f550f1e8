"""What an alert rule is, shared by the services that store, evaluate and serve rules:
its kinds and parameters, the one pydantic model the API and the CLI validate rules with
(so both refuse the same definitions with the same messages, naming the field), and
the webhook event types.

The statistics that judge a window live in the alerts service
(``services/alerts/detection.py``); the store and the API need only the rule's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from services.core.models import JsonBool, JsonFloat, JsonInt, Rfc3339Time


class AlertKind(StrEnum):
    NEGATIVE_SPIKE = "negative_spike"
    NEGATIVE_SHARE = "negative_share"
    VOLUME_SPIKE = "volume_spike"


@dataclass(frozen=True, slots=True)
class RuleParams:
    """What a rule asks; see ``docs/alerts.md`` for the defaults and how to tune them."""

    kind: AlertKind
    window_s: int = 900
    baseline_days: int = 7
    sensitivity: float = 1e-5
    min_count: int = 10
    warmup_days: float = 3.0
    cooldown_s: int = 3600


BrandName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[^/,]+$"),
]


WINDOW_MINUTES = tuple(m for m in range(5, 1441) if 1440 % m == 0)
"""The windows a rule may test: those that divide a day."""


class RuleSpec(BaseModel):
    """An alert rule as users write it (minutes and days, not seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brand: BrandName
    kind: AlertKind = Field(
        description="negative_spike: count of negative mentions; negative_share: share of "
        "negative among all mentions; volume_spike: count of all mentions"
    )
    window_minutes: JsonInt = Field(
        default=15,
        ge=5,
        le=1440,
        description="Window tested; must divide a day (5, 10, 15, …).",
        json_schema_extra={"enum": list(WINDOW_MINUTES)},
    )
    baseline_days: JsonInt = Field(
        default=7, ge=1, le=28, description="Days before the window the expectation is read from."
    )
    sensitivity: JsonFloat = Field(
        default=1e-5,
        gt=0,
        le=0.01,
        description="A window alerts when its p-value is below this: raise it to hear sooner "
        "and more often, lower it for fewer alerts.",
    )
    min_count: JsonInt = Field(
        default=10,
        ge=1,
        le=1_000_000,
        description="Fewest mentions counted (negatives for the negative kinds) to alert.",
    )
    warmup_days: JsonFloat = Field(
        default=3.0,
        ge=0,
        le=28,
        description="No alerts until the baseline holds this much data; at most baseline_days.",
        # Checked when left out too: the default (3) exceeds a baseline of 1 or 2 days.
        validate_default=True,
    )
    cooldown_minutes: JsonInt = Field(
        default=60, ge=0, le=10_080, description="No repeat of this rule within this time."
    )
    enabled: JsonBool = True

    @field_validator("window_minutes")
    @classmethod
    def _divides_a_day(cls, v: int) -> int:
        if 1440 % v:
            raise PydanticCustomError(
                "window_minutes", "must divide a day (1440 minutes) evenly, e.g. 5, 10, 15, 30, 60"
            )
        return v

    @field_validator("warmup_days")
    @classmethod
    def _within_baseline(cls, v: float, info: ValidationInfo) -> float:
        baseline = info.data.get("baseline_days")
        if baseline is not None and v > baseline:
            raise PydanticCustomError("warmup_days", "must not exceed baseline_days")
        return v

    def params(self) -> RuleParams:
        return RuleParams(
            kind=self.kind,
            window_s=self.window_minutes * 60,
            baseline_days=self.baseline_days,
            sensitivity=self.sensitivity,
            min_count=self.min_count,
            warmup_days=self.warmup_days,
            cooldown_s=self.cooldown_minutes * 60,
        )

    @classmethod
    def of(cls, brand: str, params: RuleParams, enabled: bool) -> RuleSpec:
        return cls(
            brand=brand,
            kind=params.kind,
            window_minutes=params.window_s // 60,
            baseline_days=params.baseline_days,
            sensitivity=params.sensitivity,
            min_count=params.min_count,
            warmup_days=params.warmup_days,
            cooldown_minutes=params.cooldown_s // 60,
            enabled=enabled,
        )


EVENT_TYPES = tuple(f"alert.{k.value}" for k in AlertKind)


# --- hygiene (issue 17 §5): severity, snoozes ---------------------------------------------


class Severity(StrEnum):
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_STEP = 100.0
"""Each grade above ``medium`` is a p-value this many times further below the rule's
sensitivity: with the default 1e-5, ``high`` below 1e-7 and ``critical`` below 1e-9."""


def severity(p_value: float, sensitivity: float) -> Severity:
    """How far past its rule's threshold an alert's window was. Pure.

    Relative to the rule's ``sensitivity`` (the p-value below which it fires), so a
    rule tuned to hear sooner does not call everything it hears critical:
    ``medium`` p < sensitivity, ``high`` p < sensitivity / 100, ``critical``
    p < sensitivity / 10,000.
    """
    if p_value < sensitivity / SEVERITY_STEP**2:
        return Severity.CRITICAL
    if p_value < sensitivity / SEVERITY_STEP:
        return Severity.HIGH
    return Severity.MEDIUM


MAX_SNOOZE = timedelta(days=90)


class SnoozeSpec(BaseModel):
    """A snooze as users write it: silent until ``until``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    until: Rfc3339Time = Field(
        description="RFC 3339 time with an offset, in the future and at most 90 days ahead. "
        "Windows that end before it are never alerted, not even after it."
    )


def snooze_problem(until: datetime, now: datetime) -> str | None:
    """Why ``until`` cannot end a snooze that starts ``now`` (``None`` if it can). Pure."""
    if until <= now:
        return "must be in the future"
    if until - now > MAX_SNOOZE:
        return f"must be at most {MAX_SNOOZE.days} days ahead"
    return None


def snoozed(snoozed_until: datetime | None, now: datetime, window_end: datetime) -> bool:
    """Whether a snooze lasting to ``snoozed_until`` silences, at ``now``, the window
    ending at ``window_end``. Pure.

    While the snooze lasts, every window is silent. After it, a window that ended during
    it stays silent for good (a snooze skips its windows, it does not postpone them); the
    window in progress when it ends is tested as usual.
    """
    if snoozed_until is None:
        return False
    return now < snoozed_until or window_end <= snoozed_until
