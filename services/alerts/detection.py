"""Spike detection: pure statistics on per-window counts (no I/O, no clock).

The evaluator sums the per-minute rollups into windows aligned to the rule's window
length: the baseline (``baseline_days`` before the window) and the window under test.
Two tests, both one-sided (only a rise alerts), documented in ``docs/alerts.md``:

* **Counts** (``negative_spike``: negative mentions; ``volume_spike``: all mentions):
  the expected count is the mean of the baseline windows at the same time of day
  (± 30 minutes, so 7 days × 5 windows of 15 minutes), or the same time of week when the
  baseline spans two weeks or more; the 6 hours just before the window are left out, so
  an incident under way does not raise its own expectation. The window's count is tested against a
  negative-binomial distribution with that mean and the over-dispersion measured on the
  baseline itself (method of moments on the residuals from the profile), widened by the
  uncertainty of the estimated mean. The p-value is ``P(X >= observed)``.
* **Share** (``negative_share``): the negatives among the window's mentions against the
  baseline's negative share, by a binomial test widened to a beta-binomial by the
  window-to-window over-dispersion of the share measured on the baseline.

A window alerts when its p-value is below the rule's ``sensitivity``, the observed count
reaches ``min_count``, and the baseline has ``warmup_days`` of data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped]

from services.core.alerting import AlertKind, RuleParams

__all__ = [
    "AlertKind",
    "RuleParams",
    "Verdict",
    "WindowSeries",
    "baseline_windows",
    "judge_at",
    "judge_window",
    "may_fire",
    "suppressed_by_cooldown",
    "window_under_test",
]

DAY_S = 86_400
WEEK_S = 7 * DAY_S
# Baseline windows this close in time of day (either side) share the expected count.
NEIGHBOURHOOD_S = 1_800
# The hours just before the window are left out of its baseline: an incident under way
# must not raise its own expectation (and dispersion) and so hide its next windows.
GUARD_S = 6 * 3_600

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class WindowSeries:
    """Counts per window, oldest first, aligned to ``window_s``; the last is under test."""

    starts: IntArray
    mentions: IntArray
    negative: IntArray

    def __post_init__(self) -> None:
        if not (len(self.starts) == len(self.mentions) == len(self.negative) >= 1):
            raise ValueError("a series needs equal-length arrays with at least the tested window")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of testing one window.

    ``observed``/``expected`` are counts for the count kinds and shares (0–1) for
    ``negative_share``; ``statistic`` is the standardised excess
    ``(observed − expected) / sd`` under the baseline's distribution.
    """

    fired: bool
    observed: float
    expected: float
    p_value: float
    statistic: float
    method: str
    reason: str
    count: int
    total: int


def judge_window(params: RuleParams, series: WindowSeries, data_since: int | None) -> Verdict:
    """Test the last window of ``series`` against the windows before it.

    ``data_since`` is the epoch second of the brand's first stored minute (``None``: no
    data): baseline windows before it are not used (the brand was not tracked then),
    and the rule stays silent until the baseline holds ``warmup_days`` of data.
    """
    start = int(series.starts[-1])
    base = slice(0, len(series.starts) - 1)
    keep = series.starts[base] < start - GUARD_S
    if data_since is not None:
        keep &= series.starts[base] >= data_since - data_since % params.window_s
    kind = params.kind
    count = tested_count(params, series, -1)
    total = int(series.mentions[-1])
    if kind == AlertKind.NEGATIVE_SHARE:
        verdict = _share_verdict(
            count, total, series.negative[base][keep], series.mentions[base][keep]
        )
    else:
        xs = series.negative if kind == AlertKind.NEGATIVE_SPIKE else series.mentions
        verdict = _count_verdict(
            count,
            start,
            series.starts[base][keep],
            xs[base][keep],
            params.window_s,
            seasonal_period(params.baseline_days),
        )
    observed, expected, p_value, statistic, method = verdict
    reason = ""
    if not warmed_up(params, start, data_since):
        reason = "warming up: the baseline does not hold enough data yet"
    elif count < params.min_count:
        reason = f"below min_count ({count} < {params.min_count})"
    elif p_value >= params.sensitivity:
        reason = f"p-value {p_value:.3g} not below sensitivity {params.sensitivity:g}"
    return Verdict(
        fired=not reason,
        observed=float(observed),
        expected=float(expected),
        p_value=float(p_value),
        statistic=float(statistic),
        method=method,
        reason=reason or "fired",
        count=count,
        total=total,
    )


def tested_count(params: RuleParams, series: WindowSeries, index: int) -> int:
    """The count a rule's ``min_count`` applies to: negatives for the negative kinds, all
    mentions for ``volume_spike``."""
    xs = series.mentions if params.kind == AlertKind.VOLUME_SPIKE else series.negative
    return int(xs[index])


def warmed_up(params: RuleParams, start: int, data_since: int | None) -> bool:
    """Whether the brand has ``warmup_days`` of data before the window starting at ``start``."""
    return data_since is not None and start - data_since >= params.warmup_days * DAY_S


def may_fire(params: RuleParams, series: WindowSeries, index: int, data_since: int | None) -> bool:
    """False when the window at ``index`` cannot fire whatever its p-value (warming up, or
    below ``min_count``: ``judge_window``'s first two reasons), so a backtest may skip the
    statistics for it."""
    start = int(series.starts[index])
    return warmed_up(params, start, data_since) and (
        tested_count(params, series, index) >= params.min_count
    )


def baseline_windows(params: RuleParams) -> int:
    """How many windows a rule's baseline holds (``baseline_days`` of its windows)."""
    return params.baseline_days * DAY_S // params.window_s


def window_under_test(params: RuleParams, series: WindowSeries, index: int) -> WindowSeries:
    """The window at ``index`` of a longer ``series`` with the baseline windows before it
    (as many of them as ``series`` holds): what ``judge_window`` tests for that window."""
    lo = max(0, index - baseline_windows(params))
    hi = index + 1
    return WindowSeries(series.starts[lo:hi], series.mentions[lo:hi], series.negative[lo:hi])


def judge_at(
    params: RuleParams, series: WindowSeries, index: int, data_since: int | None
) -> Verdict:
    """``judge_window`` on the window at ``index`` of ``series``: the one test per window
    that the live evaluator (each tick) and the backtest (over a stored period) share."""
    return judge_window(params, window_under_test(params, series, index), data_since)


def suppressed_by_cooldown(last_alert_start: int | None, start: int, cooldown_s: int) -> bool:
    """Whether a window starting at ``start`` that fires is held back because the rule's
    previous alert (its window starting at ``last_alert_start``, earlier) is within the
    cooldown: the rule the store applies to live alerts (``alert_within``), for windows
    taken in time order."""
    return last_alert_start is not None and last_alert_start > start - cooldown_s


def seasonal_period(baseline_days: int) -> int:
    """Time of week when the baseline holds two weeks or more, else time of day."""
    return WEEK_S if baseline_days >= 14 else DAY_S


def profile_expectation(
    base_starts: IntArray, base_counts: IntArray, window_s: int, period_s: int
) -> tuple[FloatArray, FloatArray]:
    """For every slot of the period: the pooled mean count and how many windows it pools.

    Slots are the window's position in the period; each slot pools the windows of the
    slots within ``NEIGHBOURHOOD_S`` either side (circularly), so a 15-minute window is
    expected from 5 windows per baseline day rather than 1.
    """
    slots = period_s // window_s
    index = (base_starts % period_s) // window_s
    sums = np.asarray(
        np.bincount(index, weights=base_counts.astype(np.float64), minlength=slots),
        dtype=np.float64,
    )
    ns = np.asarray(np.bincount(index, minlength=slots), dtype=np.float64)
    k = min(max(NEIGHBOURHOOD_S // window_s, 0), (slots - 1) // 2)
    pooled_sums = sums.copy()
    pooled_ns = ns.copy()
    for shift in range(1, k + 1):
        pooled_sums += np.roll(sums, shift) + np.roll(sums, -shift)
        pooled_ns += np.roll(ns, shift) + np.roll(ns, -shift)
    return pooled_sums, pooled_ns


def negative_binomial_sf(observed: int, mean: float, dispersion: float) -> float:
    """``P(X >= observed)`` for X negative-binomial with ``Var = mean + dispersion·mean²``
    (Poisson when ``dispersion`` is 0)."""
    if observed <= 0:
        return 1.0
    if dispersion <= 1e-9:
        return float(stats.poisson.sf(observed - 1, mean))
    r = 1.0 / dispersion
    return float(stats.nbinom.sf(observed - 1, r, r / (r + mean)))


def _count_verdict(
    count: int, start: int, base_starts: IntArray, base_counts: IntArray, window_s: int, period: int
) -> tuple[float, float, float, float, str]:
    if len(base_starts) == 0:
        return float(count), 0.0, 1.0, 0.0, "negative_binomial"
    sums, ns = profile_expectation(base_starts, base_counts, window_s, period)
    slot = (start % period) // window_s
    m = max(ns[slot], 1.0)
    # +0.5: a slot never seen busy is still not expected to be exactly zero.
    mean = (sums[slot] + 0.5) / m
    dispersion = _count_dispersion(base_starts, base_counts, sums, ns, window_s, period)
    # The mean is estimated from m windows: its variance adds to the window's own.
    var = (mean + dispersion * mean**2) * (1.0 + 1.0 / m)
    widened = max(0.0, (var - mean) / mean**2)
    p = negative_binomial_sf(count, mean, widened)
    return float(count), float(mean), p, float((count - mean) / math.sqrt(var)), "negative_binomial"


def _count_dispersion(
    base_starts: IntArray,
    base_counts: IntArray,
    sums: FloatArray,
    ns: FloatArray,
    window_s: int,
    period_s: int,
) -> float:
    """NB2 over-dispersion of the baseline around its own profile (method of moments)."""
    index = (base_starts % period_s) // window_s
    m = ns[index]
    x = base_counts.astype(np.float64)
    ok = m > 1
    if not ok.any():
        return 0.0
    # Leave each window out of its own expectation, or the residuals come out too small.
    mu = (sums[index][ok] - x[ok] + 0.5) / (m[ok] - 1)
    resid = x[ok] - mu
    denom = float(np.sum(mu**2))
    if denom <= 0:
        return 0.0
    return max(0.0, float(np.sum(resid**2 - mu)) / denom)


def _share_verdict(
    negatives: int, total: int, base_negative: IntArray, base_mentions: IntArray
) -> tuple[float, float, float, float, str]:
    neg_sum = float(base_negative.sum())
    all_sum = float(base_mentions.sum())
    p0 = (neg_sum + 0.5) / (all_sum + 1.0)
    observed = negatives / total if total else 0.0
    if total == 0:
        return observed, p0, 1.0, 0.0, "beta_binomial"
    rho = share_dispersion(base_negative, base_mentions, p0)
    var = total * p0 * (1 - p0) * (1 + (total - 1) * rho)
    statistic = float((negatives - total * p0) / math.sqrt(var)) if var > 0 else 0.0
    if negatives <= 0:
        return observed, p0, 1.0, statistic, "beta_binomial"
    if rho <= 1e-9:
        p = float(stats.binom.sf(negatives - 1, total, p0))
        return observed, p0, p, statistic, "binomial"
    ab = 1.0 / rho - 1.0
    p = float(stats.betabinom.sf(negatives - 1, total, p0 * ab, (1 - p0) * ab))
    return observed, p0, p, statistic, "beta_binomial"


def share_dispersion(base_negative: IntArray, base_mentions: IntArray, p0: float) -> float:
    """Intra-window correlation ρ of the beta-binomial (method of moments); 0 = binomial."""
    n = base_mentions.astype(np.float64)
    x = base_negative.astype(np.float64)
    pairs = float(np.sum(n * (n - 1)))
    if pairs <= 0 or not 0 < p0 < 1:
        return 0.0
    excess = float(np.sum((x - n * p0) ** 2)) - float(np.sum(n)) * p0 * (1 - p0)
    return min(0.99, max(0.0, excess / (p0 * (1 - p0) * pairs)))
