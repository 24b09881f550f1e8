"""What the evaluator adds to an alert so that it explains itself (issue 17 §4). Pure.

``explain`` adds to the document built by ``alert_document``: ``story`` (the largest
cluster of near-duplicate mentions of the window, ``services.core.stories``, or ``None``),
``drivers`` (top authors, the share of the one author and of the one source with most),
``expectation`` (what the baseline expected in each window around the alert, for the
alert page's chart) and ``summary`` (one sentence, ``services.core.explanation``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from services.alerts.detection import (
    GUARD_S,
    AlertKind,
    RuleParams,
    WindowSeries,
    profile_expectation,
    seasonal_period,
)
from services.core import stories
from services.core.explanation import summarise

WINDOWS_BEFORE = 24  # windows of the chart before the alert's
WINDOWS_AFTER = 8


def explain(
    doc: dict[str, Any], posts: Sequence[stories.Post], expectation: list[dict[str, Any]]
) -> dict[str, Any]:
    """``doc`` with ``story``, ``drivers``, ``expectation`` and ``summary`` added;
    ``posts`` are the window's mentions the alert counted (negative ones, or all for
    ``volume_spike``)."""
    story = stories.largest_story(posts)
    out = dict(doc)
    out["story"] = None if story is None else story.as_dict(len(posts))
    out["drivers"] = stories.drivers(posts)
    out["expectation"] = expectation
    out["summary"] = summarise(out)
    return out


def expectation_around(
    params: RuleParams,
    series: WindowSeries,
    data_since: int | None,
    expected_share: float,
    *,
    before: int = WINDOWS_BEFORE,
    after: int = WINDOWS_AFTER,
) -> list[dict[str, Any]]:
    """``[{start, expected}]`` for the windows from ``before`` windows before the tested
    one (the last of ``series``) to ``after`` after it: the baseline's time-of-day (or
    week) profile, as ``judge_window`` computes the tested window's, in the alert's unit;
    ``negative_share`` expects the one baseline share throughout."""
    w = params.window_s
    start = int(series.starts[-1])
    starts = [start + k * w for k in range(-before, after + 1)]
    if params.kind == AlertKind.NEGATIVE_SHARE:
        values = [expected_share] * len(starts)
    else:
        base_starts = series.starts[:-1]
        keep = base_starts < start - GUARD_S
        if data_since is not None:
            keep &= base_starts >= data_since - data_since % w
        xs = series.negative if params.kind == AlertKind.NEGATIVE_SPIKE else series.mentions
        period = seasonal_period(params.baseline_days)
        sums, ns = profile_expectation(base_starts[keep], xs[:-1][keep], w, period)
        slots = (np.asarray(starts, dtype=np.int64) % period) // w
        values = [float((sums[s] + 0.5) / max(ns[s], 1.0)) for s in slots]
    return [
        {"start": datetime.fromtimestamp(s, UTC).isoformat(), "expected": round(v, 4)}
        for s, v in zip(starts, values, strict=True)
    ]
