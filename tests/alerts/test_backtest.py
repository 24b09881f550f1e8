"""The backtest raises exactly what the live evaluator raises when its clock steps through
the same stored period, cooldown included; and it refuses periods over its bounds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.alerts.backtest import (
    MAX_WINDOWS,
    BacktestRangeError,
    backtest_lines,
    check_range,
    load_backtest,
    window_starts,
)
from services.alerts.detection import (
    DAY_S,
    AlertKind,
    RuleParams,
    judge_at,
    judge_window,
    may_fire,
    window_under_test,
)
from services.alerts.evaluator import AlertEvaluator, load_series
from services.alerts.settings import AlertSettings
from services.core.clock import FrozenClock
from services.core.metrics import Metrics
from services.core.storage.alerts import AlertRuleStore, list_alerts
from services.core.storage.analytics import first_minute
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from tests.alerts.test_evaluator import load_rollups
from tests.fixtures.synthetic_traffic import BRANDS, T0, synthetic_timeline

PERIOD_START = T0 + 8 * DAY_S
PERIOD_END = T0 + 10 * DAY_S
# (brand, params): default and loose rules, so that some fire, some fire again within
# their cooldown, and windows of two lengths are stepped through.
RULES = (
    ("Acme", RuleParams(AlertKind.VOLUME_SPIKE)),
    ("Acme", RuleParams(AlertKind.NEGATIVE_SPIKE, sensitivity=1e-3, min_count=3)),
    ("Acme", RuleParams(AlertKind.NEGATIVE_SHARE, sensitivity=1e-2, min_count=3, cooldown_s=1800)),
    ("United", RuleParams(AlertKind.VOLUME_SPIKE, sensitivity=1e-2, min_count=5, cooldown_s=0)),
    (
        "Globex",
        RuleParams(AlertKind.NEGATIVE_SPIKE, window_s=1800, sensitivity=1e-2, min_count=2),
    ),
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """Ten days of synthetic rollups for four brands, with an incident on Acme and a
    volume surge on United on day 9, all stored before any evaluation (as a replay or a
    backfill would store them)."""
    e = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    migrate(e)
    clock = FrozenClock(datetime.fromtimestamp(T0, UTC))
    for b in BRANDS:
        BrandStore(e, clock).create(b.name, f'"{b.name.lower()}"')
    tl = synthetic_timeline(days=10, seed=11)
    tl.burst("Acme", 9 * 1440 + 14 * 60 + 7, 45, 2.0, seed=1)
    tl.burst("United", 8 * 1440 + 17 * 60, 30, 6.0, seed=2)
    load_rollups(e, tl)
    yield e
    e.dispose()


def test_the_backtest_raises_what_the_live_evaluator_raises_stepping_through(
    engine: Engine,
) -> None:
    clock = FrozenClock(datetime.fromtimestamp(PERIOD_START, UTC))
    store = AlertRuleStore(engine, clock)
    rules = [store.create(brand, params) for brand, params in RULES]
    evaluator = AlertEvaluator(
        engine, AlertSettings(), clock, Metrics(CollectorRegistry()), on_alert=None
    )
    step = timedelta(minutes=15)
    while clock.now() < datetime.fromtimestamp(PERIOD_END, UTC):
        evaluator.evaluate_once()
        clock.advance(step)
    with engine.connect() as conn:
        live = list_alerts(conn)

    held = 0
    for rule in rules:
        # The first tick also tests the window before it.
        lines = list(
            backtest_lines(
                engine, rule.brand, rule.params, PERIOD_START - rule.params.window_s, PERIOD_END
            )
        )
        summary = lines.pop()
        held += summary["held_by_cooldown"]
        found = [datetime.fromisoformat(w["window"]["start"]) for w in lines]
        raised = sorted(a.window_start for a in live if a.rule_id == rule.id)
        assert found == raised, (rule.brand, rule.params)
        assert summary["alerts"] == len(found)
        by_start = {a.window_start: a for a in live if a.rule_id == rule.id}
        for w in lines:
            a = by_start[datetime.fromisoformat(w["window"]["start"])]
            assert (w["observed"], w["p_value"]) == (pytest.approx(a.observed), a.p_value)
    # The comparison means something: alerts on several rules, and fires held back.
    assert len({a.rule_id for a in live}) >= 3, live
    assert held > 0


def test_each_window_is_judged_on_the_series_the_evaluator_reads_for_it(engine: Engine) -> None:
    params = RuleParams(AlertKind.NEGATIVE_SPIKE, sensitivity=1e-3)
    run = load_backtest(engine, "Acme", params, PERIOD_START, PERIOD_START + 6 * 3600)
    with engine.connect() as conn:
        since = first_minute(conn, "Acme")
        for index in range(run.first, len(run.series.starts)):
            start = int(run.series.starts[index])
            alone = load_series(conn, "Acme", start, params.window_s, params.baseline_days)
            part = window_under_test(params, run.series, index)
            assert part.starts.tolist() == alone.starts.tolist()
            assert part.mentions.tolist() == alone.mentions.tolist()
            assert judge_window(params, part, since) == judge_window(params, alone, since)


def test_summary_counts_windows_and_alerts_per_week(engine: Engine) -> None:
    params = RuleParams(AlertKind.VOLUME_SPIKE, sensitivity=1e-2, min_count=5, cooldown_s=0)
    lines = list(backtest_lines(engine, "United", params, PERIOD_START, PERIOD_END))
    summary = lines[-1]
    assert summary["type"] == "summary"
    assert summary["windows_evaluated"] == 2 * 96
    assert summary["alerts"] == len(lines) - 1 > 0
    assert summary["alerts_per_week"] == pytest.approx(summary["alerts"] / (2 / 7), abs=1e-3)
    assert all(line["type"] == "window" for line in lines[:-1])


def test_the_rule_stays_silent_while_warming_up(engine: Engine) -> None:
    params = RuleParams(AlertKind.VOLUME_SPIKE, sensitivity=1e-2, min_count=1, cooldown_s=0)
    lines = list(backtest_lines(engine, "United", params, T0, T0 + 3 * DAY_S))
    assert lines[-1]["windows_evaluated"] == 3 * 96
    assert lines[-1]["alerts"] == 0


@pytest.mark.parametrize(
    ("params", "start", "end", "field", "words"),
    [
        (RuleParams(AlertKind.VOLUME_SPIKE), T0, T0 + 3650 * DAY_S, "from", "366 days"),
        (RuleParams(AlertKind.VOLUME_SPIKE), T0 + 60, T0, "from", "before"),
        (RuleParams(AlertKind.VOLUME_SPIKE), T0 + 60, T0 + 120, "from", "no 15-minute window"),
        (RuleParams(AlertKind.VOLUME_SPIKE, window_s=300), T0, T0 + 200 * DAY_S, "from", "at most"),
    ],
)
def test_periods_over_the_bounds_are_refused_naming_the_field(
    params: RuleParams, start: int, end: int, field: str, words: str
) -> None:
    with pytest.raises(BacktestRangeError) as e:
        check_range(params, start, end)
    assert e.value.field == field
    assert words in e.value.message


def test_a_year_of_fifteen_minute_windows_is_within_bounds() -> None:
    params = RuleParams(AlertKind.VOLUME_SPIKE)
    check_range(params, T0, T0 + 366 * DAY_S)
    assert len(window_starts(params, T0, T0 + 366 * DAY_S)) <= MAX_WINDOWS


@pytest.mark.parametrize(("brand", "params"), RULES)
def test_a_window_skipped_as_unable_to_fire_never_fires(
    engine: Engine, brand: str, params: RuleParams
) -> None:
    run = load_backtest(engine, brand, params, T0, T0 + 5 * DAY_S)
    skipped = 0
    for index in range(run.first, len(run.series.starts)):
        if not may_fire(params, run.series, index, run.since):
            skipped += 1
            assert not judge_at(params, run.series, index, run.since).fired
    assert skipped > 0
