"""The backtest: which alerts a rule would have raised over a stored period.

The windows are read from the per-minute rollups the way the live evaluator reads them
(``load_series``, one read for the whole period and the baseline before it) and each is
judged by the same function (``judge_at``); the rule's cooldown holds back a fire within
``cooldown_s`` of the previous one, as the store does for live alerts. So a backtest over
stored data raises the alerts the evaluator raises when its clock steps through the same
period (``tests/alerts/test_backtest.py``), and history imported after the fact (file
replay, backfill), which the evaluator never looks at, can be judged here.

Bounded: a period of at most ``MAX_RANGE_DAYS`` and ``MAX_WINDOWS`` windows, refused up
front (``BacktestRangeError`` names the field). The windows found are yielded as they
are found, so an HTTP answer can stream them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from services.alerts.detection import (
    DAY_S,
    WEEK_S,
    AlertKind,
    RuleParams,
    Verdict,
    WindowSeries,
    judge_at,
    may_fire,
    suppressed_by_cooldown,
)
from services.alerts.evaluator import load_series
from services.core.storage.analytics import first_minute

MAX_RANGE_DAYS = 366
# ~11 s of judging at ~0.3 ms a window: a year of 15-minute windows fits, a year of
# 5-minute windows does not.
MAX_WINDOWS = 36_000


class BacktestRangeError(ValueError):
    """A period the backtest refuses; ``field`` is ``from`` or ``to``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class BacktestAlert:
    """A window that would have alerted."""

    start: int
    verdict: Verdict


@dataclass(slots=True)
class BacktestSummary:
    """What the whole period came to; ``alerts_per_week`` over the period's length."""

    start: int
    end: int
    windows_evaluated: int = 0
    alerts: int = 0
    held_by_cooldown: int = 0

    @property
    def weeks(self) -> float:
        return (self.end - self.start) / WEEK_S

    @property
    def alerts_per_week(self) -> float:
        return self.alerts / self.weeks if self.weeks > 0 else 0.0


def window_starts(params: RuleParams, start: int, end: int) -> range:
    """Starts of the rule's windows beginning in ``[start, end)`` (epoch seconds)."""
    w = params.window_s
    return range(-(-start // w) * w, end, w)


def check_range(params: RuleParams, start: int, end: int) -> None:
    """Raises ``BacktestRangeError`` for a period that is empty, too long, or holds too
    many of the rule's windows."""
    if start >= end:
        raise BacktestRangeError("from", "must be before 'to'")
    if end - start > MAX_RANGE_DAYS * DAY_S:
        raise BacktestRangeError("from", f"the period may span at most {MAX_RANGE_DAYS} days")
    n = len(window_starts(params, start, end))
    if n == 0:
        raise BacktestRangeError(
            "from", f"no {params.window_s // 60}-minute window of the rule starts in the period"
        )
    if n > MAX_WINDOWS:
        raise BacktestRangeError(
            "from",
            f"the period holds {n} windows of {params.window_s // 60} minutes; "
            f"at most {MAX_WINDOWS} (shorten it or widen the rule's window)",
        )


def backtest_series(
    params: RuleParams,
    series: WindowSeries,
    first: int,
    since: int | None,
    summary: BacktestSummary,
) -> Iterator[BacktestAlert]:
    """Judge the windows of ``series`` from index ``first`` on, in time order, yielding
    those that would have alerted (the cooldown applied) and counting into ``summary``.
    Pure."""
    last: int | None = None
    for index in range(first, len(series.starts)):
        summary.windows_evaluated += 1
        # Most windows of a quiet brand cannot fire: the statistics are skipped for them.
        if not may_fire(params, series, index, since):
            continue
        verdict = judge_at(params, series, index, since)
        if not verdict.fired:
            continue
        start = int(series.starts[index])
        if suppressed_by_cooldown(last, start, params.cooldown_s):
            summary.held_by_cooldown += 1
            continue
        last = start
        summary.alerts += 1
        yield BacktestAlert(start, verdict)


@dataclass(frozen=True, slots=True)
class Backtest:
    """A loaded backtest: iterate ``alerts()`` once; ``summary`` is complete after it."""

    params: RuleParams
    series: WindowSeries
    first: int
    since: int | None
    summary: BacktestSummary

    def alerts(self) -> Iterator[BacktestAlert]:
        return backtest_series(self.params, self.series, self.first, self.since, self.summary)


def load_backtest(engine: Engine, brand: str, params: RuleParams, start: int, end: int) -> Backtest:
    """Read ``brand``'s rollups for the windows starting in ``[start, end)`` and the
    baseline before the first. Raises ``BacktestRangeError`` (before reading) for a
    period ``check_range`` refuses."""
    check_range(params, start, end)
    starts = window_starts(params, start, end)
    with engine.connect() as conn:
        series = load_series(
            conn,
            brand,
            starts[-1],
            params.window_s,
            params.baseline_days,
            extra_windows=len(starts) - 1,
        )
        since = first_minute(conn, brand)
    first = len(series.starts) - len(starts)
    return Backtest(params, series, first, since, BacktestSummary(start, end))


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def alert_line(params: RuleParams, alert: BacktestAlert) -> dict[str, Any]:
    """One NDJSON line of the HTTP answer: a window that would have alerted (the fields
    of an alert's document that do not need the stored mentions)."""
    v = alert.verdict
    start = datetime.fromtimestamp(alert.start, UTC)
    return {
        "type": "window",
        "window": {
            "start": start.isoformat(),
            "end": (start + timedelta(seconds=params.window_s)).isoformat(),
        },
        "observed": round(v.observed, 6),
        "expected": round(v.expected, 6),
        "unit": "share" if params.kind == AlertKind.NEGATIVE_SHARE else "mentions",
        "count": v.count,
        "total": v.total,
        "p_value": v.p_value,
        "statistic": round(v.statistic, 4),
        "method": v.method,
    }


def summary_line(summary: BacktestSummary) -> dict[str, Any]:
    """The last NDJSON line: the period and what it came to."""
    return {
        "type": "summary",
        "from": _iso(summary.start),
        "to": _iso(summary.end),
        "windows_evaluated": summary.windows_evaluated,
        "alerts": summary.alerts,
        "held_by_cooldown": summary.held_by_cooldown,
        "weeks": round(summary.weeks, 4),
        "alerts_per_week": round(summary.alerts_per_week, 4),
    }


def backtest_lines(
    engine: Engine, brand: str, params: RuleParams, start: int, end: int
) -> Iterator[dict[str, Any]]:
    """The backtest as the API and the CLI answer it: one line per window that would have
    alerted, then the summary. The rollups are read, and the period checked, when this is
    called (``BacktestRangeError`` then), not when the lines are iterated."""
    run = load_backtest(engine, brand, params, start, end)

    def lines() -> Iterator[dict[str, Any]]:
        for alert in run.alerts():
            yield alert_line(params, alert)
        yield summary_line(run.summary)

    return lines()
