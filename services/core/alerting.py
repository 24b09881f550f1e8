"""What an alert rule is, shared by the services that store, evaluate and serve rules.

The statistics that judge a window live in the alerts service
(``services/alerts/detection.py``); the store and the API need only the rule's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
