"""The report's arithmetic, as pure functions (tests recompute these from raw mentions)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

DAY = 86_400
# A bucket is a spike when it holds at least SPIKE_RATIO × the period's median bucket and
# at least SPIKE_MIN_EXTRA mentions more than it: both, so that 1 → 3 mentions is no spike.
SPIKE_RATIO = 2.0
SPIKE_MIN_EXTRA = 10


def ratio(part: float, whole: float) -> float | None:
    return None if whole == 0 else part / whole


def net_sentiment(positive: int, negative: int) -> float | None:
    """(positive − negative) ÷ (positive + negative); ``None`` with no opinionated mention."""
    polar = positive + negative
    return None if polar == 0 else (positive - negative) / polar


def relative_change(current: float, previous: float | None) -> float | None:
    if previous is None or previous == 0:
        return None
    return (current - previous) / previous


def difference(current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None:
        return None
    return current - previous


def series_interval(start: int, end: int) -> int:
    """Bucket size for "sentiment over time": hours up to two days, days up to ~three
    months, weeks beyond (so a chart never has more than a few hundred points)."""
    span = end - start
    if span <= 2 * DAY:
        return 3600
    if span <= 93 * DAY:
        return DAY
    return 7 * DAY


def spikes(counts: Sequence[int], usable: Sequence[bool]) -> list[tuple[int, float, float]]:
    """``(index, median, ratio)`` of the buckets that are spikes. Buckets not ``usable``
    (cut by the range's ends) are neither judged nor part of the median."""
    whole = [c for c, ok in zip(counts, usable, strict=True) if ok]
    if len(whole) < 3:
        return []
    median = float(statistics.median(whole))
    out = []
    for i, (c, ok) in enumerate(zip(counts, usable, strict=True)):
        if ok and c >= SPIKE_RATIO * median and c - median >= SPIKE_MIN_EXTRA:
            out.append((i, median, c / max(median, 1.0)))
    return out
