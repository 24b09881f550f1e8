"""The NAB benchmark's own parts on crafted cases: NAB's score (standard profile) and the
baselines' alarms. The benchmark itself runs with ``make bench`` only."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from services.alerts.detection import AlertKind, RuleParams
from services.core.clock import FrozenClock
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from tests.alerts.test_evaluator import load_rollups
from tests.bench.bench_nab import (
    A_FN,
    A_FP,
    A_TP,
    NabSeries,
    account,
    judged,
    load,
    mean_sigma,
    median_mad,
    nab_normalised,
    nab_raw_score,
    rule_alarms,
    scaled_sigmoid,
    swept_alarms,
    trailing_alarms,
)
from tests.fixtures.synthetic_traffic import T0, synthetic_timeline

WINDOW = (1000, 1099)  # 100 rows


def test_a_detection_at_the_window_start_scores_a_true_positive() -> None:
    assert nab_raw_score([WINDOW[0]], [WINDOW], 0) == pytest.approx(A_TP)
    assert nab_normalised(A_TP, 1) == pytest.approx(100.0)


def test_a_detection_at_the_window_end_scores_about_nothing() -> None:
    score = nab_raw_score([WINDOW[1]], [WINDOW], 0)
    assert 0 < score < 0.06
    # Earlier in the window is worth more.
    middle = nab_raw_score([(WINDOW[0] + WINDOW[1]) // 2], [WINDOW], 0)
    assert score < middle < A_TP


def test_only_the_earliest_detection_of_a_window_counts() -> None:
    assert nab_raw_score([WINDOW[0], WINDOW[0] + 5, WINDOW[1]], [WINDOW], 0) == pytest.approx(A_TP)


def test_a_missed_window_scores_a_false_negative_and_normalises_to_zero() -> None:
    assert nab_raw_score([], [WINDOW], 0) == A_FN
    assert nab_normalised(A_FN, 1) == 0.0


def test_a_false_positive_far_from_any_window_scores_a_fp() -> None:
    # Before the first window: no window precedes it, so the full penalty.
    assert nab_raw_score([10], [WINDOW], 0) == pytest.approx(A_FN + A_FP)
    # Far after the window (3 window-widths or more): the full penalty too.
    assert nab_raw_score([WINDOW[1] + 400], [WINDOW], 0) == pytest.approx(A_FN + A_FP)


def test_a_false_positive_just_after_a_window_costs_less() -> None:
    near = nab_raw_score([WINDOW[1] + 2], [WINDOW], 0) - A_FN
    expected = -A_FP * scaled_sigmoid(2 / (WINDOW[1] - WINDOW[0]))
    assert near == pytest.approx(expected)
    assert A_FP < near < 0


def test_detections_in_the_probationary_period_are_not_scored() -> None:
    assert nab_raw_score([10], [WINDOW], 100) == A_FN
    # A window that ends in the probationary period is not scored at all.
    assert nab_raw_score([], [(5, 50), WINDOW], 100) == A_FN


def test_scaled_sigmoid_matches_nab() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scaled_sigmoid(3.0) == -1.0


def test_accounting_counts_detections_false_alarms_and_delay() -> None:
    times = np.arange(2000, dtype=np.int64) * 300
    s = NabSeries("X", times, np.ones(2000, dtype=np.int64), (WINDOW,))
    # A detection 10 rows into the window, two in it later, and two outside.
    ends = [int(times[r]) + 1 for r in (1010, 1020, 1090, 1500, 1900)]
    o = account(s, ends)
    assert (o.windows, o.detected, o.false_alarms) == (1, 1, 2)
    assert o.median_delay_h == pytest.approx(11 * 300 / 3600)
    scored_rows = 2000 - s.probation - 100
    assert o.fa_per_week == pytest.approx(2 / (scored_rows * 300 / (7 * 86400)))


def test_the_baselines_alarm_on_a_spike_once_within_the_cooldown() -> None:
    rng = np.random.default_rng(3)
    counts = rng.poisson(50, 600).astype(np.int64)
    counts[400:404] += 200  # a spike four windows long
    for threshold in (mean_sigma(3.0), median_mad(3.0)):
        alarms = trailing_alarms(
            counts,
            trailing=200,
            min_history=100,
            min_count=10,
            cooldown_windows=4,
            threshold=threshold,
        )
        assert 400 in alarms
        assert not set(alarms) & {401, 402, 403}
        assert all(a >= 100 for a in alarms)


def test_the_baselines_respect_min_count_and_history() -> None:
    counts = np.zeros(300, dtype=np.int64)
    counts[250] = 5  # infinitely many sd above a flat zero, but below min_count
    counts[50] = 100  # before the history is long enough (and out of the trailing 150)
    for threshold in (mean_sigma(3.0), median_mad(3.0)):
        assert trailing_alarms(counts, 150, 100, 10, 4, threshold) == []
        assert trailing_alarms(counts, 150, 100, 5, 4, threshold) == [250]


def test_the_sweep_fires_what_the_backtest_fires(tmp_path: Path) -> None:
    """``--explore`` judges each window once at sensitivity 1 and thresholds the p-values;
    that must give the backtest's alerts at every sensitivity and cooldown."""
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    migrate(engine)
    BrandStore(engine, FrozenClock(datetime.fromtimestamp(T0, UTC))).create("United", '"united"')
    tl = synthetic_timeline(days=6, seed=4)
    tl.mentions = {"United": tl.mentions["United"]}
    tl.negative = {"United": tl.negative["United"]}
    tl.burst("United", 4 * 1440 + 600, 40, 5.0, seed=1)
    load_rollups(engine, tl)
    series = NabSeries(
        "United", np.asarray([T0, T0 + 6 * 86_400 - 300]), np.ones(2, dtype=np.int64), ()
    )
    shape = RuleParams(AlertKind.VOLUME_SPIKE, min_count=5)
    loaded = load(engine, series, shape)
    verdicts = judged(loaded, shape)
    fired = 0
    for sensitivity in (1e-2, 1e-4, 1e-6):
        for cooldown_s in (0, 3600, 6 * 3600):
            p = replace(shape, sensitivity=sensitivity, cooldown_s=cooldown_s)
            expected = rule_alarms(loaded, p)
            assert swept_alarms(verdicts, sensitivity, p) == expected
            fired += len(expected)
    assert fired > 0
    engine.dispose()
