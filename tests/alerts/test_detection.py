"""Spike detection on a synthetic two weeks (one of baseline, one tested): silent on
normal traffic, quick on a burst, and the tails it rests on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]

from services.alerts.detection import (
    DAY_S,
    AlertKind,
    RuleParams,
    WindowSeries,
    judge_window,
    negative_binomial_sf,
)
from tests.fixtures.synthetic_traffic import T0, Timeline, synthetic_timeline, window_sums

WINDOW_MIN = 15
PER_DAY = 1440 // WINDOW_MIN


def verdicts(
    tl: Timeline, brand: str, params: RuleParams, first_day: int = 7
) -> list[tuple[int, bool, float]]:
    """(window start, fired, p-value) for every complete window from ``first_day`` on."""
    m = window_sums(tl.mentions[brand], WINDOW_MIN)
    n = window_sums(tl.negative[brand], WINDOW_MIN)
    starts = tl.start + np.arange(len(m), dtype=np.int64) * WINDOW_MIN * 60
    base = params.baseline_days * PER_DAY
    out = []
    for i in range(first_day * PER_DAY, len(m)):
        lo = max(0, i - base)
        v = judge_window(
            params, WindowSeries(starts[lo : i + 1], m[lo : i + 1], n[lo : i + 1]), tl.start
        )
        out.append((int(starts[i]), v.fired, v.p_value))
    return out


def test_no_alert_in_a_normal_week() -> None:
    # One seeded week here; `make bench` measures five (docs/alerts.md).
    tl = synthetic_timeline(days=14, seed=8)
    tested = 0
    smallest = 1.0
    for brand in tl.mentions:
        for kind in AlertKind:
            results = verdicts(tl, brand, RuleParams(kind=kind))
            fired = [s for s, f, _ in results if f]
            assert fired == [], f"{brand} {kind}: false alarms at {fired}"
            tested += len(results)
            smallest = min(smallest, *(p for _, _, p in results))
    assert tested == 4 * 3 * 7 * PER_DAY
    # Not silent because blind: ordinary noise does reach modest p-values.
    assert smallest < 0.01


def test_a_negative_burst_is_alerted_within_two_windows_and_other_brands_stay_silent() -> None:
    tl = synthetic_timeline(days=14, seed=7)
    burst_minute = 10 * 1440 + 14 * 60 + 7  # a Thursday afternoon, mid-window
    tl.burst("Acme", burst_minute, 45, 1.0, seed=1)
    burst_start = T0 + burst_minute * 60
    for brand in tl.mentions:
        for kind in (AlertKind.NEGATIVE_SPIKE, AlertKind.NEGATIVE_SHARE):
            fired = [s for s, f, _ in verdicts(tl, brand, RuleParams(kind=kind), first_day=10) if f]
            if brand != "Acme":
                assert fired == [], f"{brand} {kind} alerted at {fired}"
                continue
            assert fired, f"{kind}: the burst was not alerted"
            first = fired[0]
            assert burst_start - WINDOW_MIN * 60 < first <= burst_start + WINDOW_MIN * 60, (
                f"{kind}: first alerted window starts {(first - burst_start) / 60:+.0f} min "
                "from the burst"
            )
            # It alerts during the burst, not before and not long after it.
            assert all(burst_start - WINDOW_MIN * 60 < s < burst_start + 45 * 60 for s in fired)


def test_no_alert_while_warming_up() -> None:
    tl = synthetic_timeline(days=8, seed=3)
    tl.burst("Acme", 7 * 1440 + 600, 30, 3.0, seed=2)
    m = window_sums(tl.mentions["Acme"], WINDOW_MIN)
    n = window_sums(tl.negative["Acme"], WINDOW_MIN)
    starts = tl.start + np.arange(len(m), dtype=np.int64) * WINDOW_MIN * 60
    i = (7 * 1440 + 600) // WINDOW_MIN + 1
    series = WindowSeries(starts[: i + 1], m[: i + 1], n[: i + 1])
    params = RuleParams(kind=AlertKind.NEGATIVE_SPIKE)
    assert judge_window(params, series, tl.start).fired
    # The same burst when the brand's data began two days before: too little baseline.
    late = int(starts[i]) - 2 * DAY_S
    v = judge_window(params, series, late)
    assert not v.fired
    assert v.reason.startswith("warming up")
    assert judge_window(params, series, None).reason.startswith("warming up")


def test_min_count_keeps_sparse_brands_quiet() -> None:
    starts = T0 + np.arange(7 * PER_DAY + 1, dtype=np.int64) * 900
    mentions = np.zeros(len(starts), dtype=np.int64)
    negative = np.zeros(len(starts), dtype=np.int64)
    mentions[-1] = negative[-1] = 4  # four negatives where there were never any
    params = RuleParams(kind=AlertKind.NEGATIVE_SPIKE, min_count=5)
    v = judge_window(params, WindowSeries(starts, mentions, negative), T0)
    assert v.p_value < params.sensitivity
    assert not v.fired
    assert "min_count" in v.reason
    mentions[-1] = negative[-1] = 5
    assert judge_window(params, WindowSeries(starts, mentions, negative), T0).fired


def test_negative_binomial_tail() -> None:
    # Poisson in the limit, and a fatter tail with over-dispersion.
    assert negative_binomial_sf(12, 4.0, 0.0) == pytest.approx(stats.poisson.sf(11, 4.0))
    assert negative_binomial_sf(12, 4.0, 0.5) > negative_binomial_sf(12, 4.0, 0.0)
    assert negative_binomial_sf(0, 4.0, 0.5) == 1.0
    # Mean and variance as parameterised: Var = mu + alpha mu^2.
    r, mu = 1 / 0.5, 4.0
    dist = stats.nbinom(r, r / (r + mu))
    assert dist.mean() == pytest.approx(mu)
    assert dist.var() == pytest.approx(mu + 0.5 * mu**2)


def test_p_values_are_calibrated_on_poisson_traffic() -> None:
    # Flat Poisson traffic: about 1 % of windows have p < 0.01 (no more; a little fewer,
    # since the estimated mean's uncertainty is allowed for).
    rng = np.random.default_rng(11)
    n_windows = 12 * PER_DAY
    starts = T0 + np.arange(n_windows, dtype=np.int64) * 900
    mentions = rng.poisson(20.0, n_windows).astype(np.int64)
    negative = rng.binomial(mentions, 0.3).astype(np.int64)
    below = {k: 0 for k in AlertKind}
    tested = 0
    for i in range(7 * PER_DAY, n_windows):
        s = WindowSeries(
            starts[i - 7 * PER_DAY : i + 1],
            mentions[i - 7 * PER_DAY : i + 1],
            negative[i - 7 * PER_DAY : i + 1],
        )
        tested += 1
        for k in AlertKind:
            below[k] += judge_window(RuleParams(kind=k), s, T0).p_value < 0.01
    for k, count in below.items():
        assert 0.002 < count / tested < 0.016, (k, count / tested)
