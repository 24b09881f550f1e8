"""What the scorer decided about a mention sampled for the analysts' spot check.

Shared by the scorer (``services.scorer.sampling`` makes the decision) and storage (the
writer queues the mention for review), so it lives in core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SampleReason = Literal["random", "uncertainty"]


@dataclass(frozen=True, slots=True)
class SpotCheck:
    """A sampled mention: why, its weight (1 / inclusion probability, so statistics can be
    re-weighted to the whole stream), and how many analysts must label it."""

    reason: SampleReason
    weight: float
    reviews_required: int


# For a record flagged without the sampler's details (older producers, tests).
UNWEIGHTED = SpotCheck(reason="random", weight=1.0, reviews_required=1)
