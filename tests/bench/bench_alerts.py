"""False alarms and detection delay of the spike tests, against a naive 3-sigma rule.

Run: ``.venv/bin/python -m tests.bench.bench_alerts [--seeds 5]``.

On synthetic timelines (``tests/fixtures/synthetic_traffic.py``: four brands, daily and
weekly rhythm, over-dispersed noise; each seed two weeks, the second one tested) it
evaluates every complete 15-minute window of the tested week for every brand and rule
kind, and counts **false alarms per rule-week** (alerting windows, with the default
60-minute cooldown applied) at several sensitivities. The baseline, measured in the same
run on the same windows, is the rule many tools ship: alert when the window exceeds the
mean of the previous 24 hours by three standard deviations (and reaches ``min_count``).
Then it adds a 45-minute negative burst of 0.5, 1 and 2 extra negative mentions a minute
to one brand at a random working-hour minute of the tested week and reports how often
each detector alerted within two windows of the start, and the median delay (end of the
first alerting window minus the burst's start).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from services.alerts.detection import AlertKind, RuleParams, WindowSeries, judge_window
from tests.fixtures.synthetic_traffic import synthetic_timeline, window_sums

WINDOW_MIN = 15
PER_DAY = 1440 // WINDOW_MIN
SENSITIVITIES = (1e-3, 1e-4, 1e-5, 1e-6)
BURST_RATES = (0.5, 1.0, 2.0)
COOLDOWN_WINDOWS = 4

Detector = Callable[
    [int, npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]], bool
]


def sigma_rule(
    i: int, starts: npt.NDArray[np.int64], m: npt.NDArray[np.int64], x: npt.NDArray[np.int64]
) -> bool:
    past = x[i - PER_DAY : i].astype(np.float64)
    return bool(x[i] >= 10 and x[i] > past.mean() + 3 * past.std())


def sigma_on(xs: npt.NDArray[np.int64]) -> Detector:
    """The 3-sigma rule on ``xs`` (all mentions, or negatives) whatever the detector is given."""

    def detector(
        i: int, starts: npt.NDArray[np.int64], m: npt.NDArray[np.int64], n: npt.NDArray[np.int64]
    ) -> bool:
        return sigma_rule(i, starts, m, xs)

    return detector


def with_cooldown(fired: list[int]) -> int:
    count, last = 0, -(10**9)
    for i in fired:
        if i - last >= COOLDOWN_WINDOWS:
            count, last = count + 1, i
    return count


def judge(params: RuleParams, start_ts: int) -> Detector:
    base = params.baseline_days * PER_DAY

    def detector(
        i: int, starts: npt.NDArray[np.int64], m: npt.NDArray[np.int64], n: npt.NDArray[np.int64]
    ) -> bool:
        lo = max(0, i - base)
        series = WindowSeries(starts[lo : i + 1], m[lo : i + 1], n[lo : i + 1])
        return judge_window(params, series, start_ts).fired

    return detector


def false_alarms(seeds: int) -> None:
    print(f"False alarms per rule-week ({seeds} synthetic weeks × 4 brands; cooldown 60 min)")
    print(f"{'detector':<34}{'negative_spike':>16}{'negative_share':>16}{'volume_spike':>14}")
    rows: dict[str, dict[str, list[int]]] = {}
    for seed in range(1, seeds + 1):
        tl = synthetic_timeline(days=14, seed=seed)
        for brand in tl.mentions:
            m = window_sums(tl.mentions[brand], WINDOW_MIN)
            n = window_sums(tl.negative[brand], WINDOW_MIN)
            starts = tl.start + np.arange(len(m), dtype=np.int64) * WINDOW_MIN * 60
            tested = range(7 * PER_DAY, len(m))
            for kind in AlertKind:
                xs = m if kind == AlertKind.VOLUME_SPIKE else n
                detectors: dict[str, Detector] = {
                    f"NB / beta-binomial p < {s:g}": judge(
                        RuleParams(kind=kind, sensitivity=s), tl.start
                    )
                    for s in SENSITIVITIES
                }
                if kind != AlertKind.NEGATIVE_SHARE:
                    detectors["baseline: 24 h mean + 3 sd"] = sigma_on(xs)
                for name, det in detectors.items():
                    fired = [i for i in tested if det(i, starts, m, n)]
                    rows.setdefault(name, {}).setdefault(kind.value, []).append(
                        with_cooldown(fired)
                    )
    for name, per_kind in rows.items():
        cells = []
        for kind in AlertKind:
            counts = per_kind.get(kind.value)
            cells.append("—" if counts is None else f"{sum(counts) / len(counts):.3f}")
        print(f"{name:<34}{cells[0]:>16}{cells[1]:>16}{cells[2]:>14}")


def detection(seeds: int) -> None:
    print("\nNegative bursts (45 min, Acme): detected within two windows, median delay")
    rng = np.random.default_rng(99)
    for rate in BURST_RATES:
        results: dict[str, list[float | None]] = {
            "negative_spike p<1e-5": [],
            "negative_share p<1e-5": [],
            "baseline 3 sd": [],
        }
        for seed in range(1, seeds + 1):
            tl = synthetic_timeline(days=14, seed=seed)
            day = int(rng.integers(7, 14))
            minute = day * 1440 + int(rng.integers(9 * 60, 17 * 60))
            tl.burst("Acme", minute, 45, rate, seed=seed)
            m = window_sums(tl.mentions["Acme"], WINDOW_MIN)
            n = window_sums(tl.negative["Acme"], WINDOW_MIN)
            starts = tl.start + np.arange(len(m), dtype=np.int64) * WINDOW_MIN * 60
            first = minute // WINDOW_MIN
            dets: dict[str, Detector] = {
                "negative_spike p<1e-5": judge(RuleParams(kind=AlertKind.NEGATIVE_SPIKE), tl.start),
                "negative_share p<1e-5": judge(RuleParams(kind=AlertKind.NEGATIVE_SHARE), tl.start),
                "baseline 3 sd": lambda i, st, mm, nn: sigma_rule(i, st, mm, nn),
            }
            for name, det in dets.items():
                delay = None
                for i in range(first, first + 2):
                    if det(i, starts, m, n):
                        delay = (i + 1) * WINDOW_MIN - minute
                        break
                results[name].append(delay)
        for name, delays in results.items():
            hit = [d for d in delays if d is not None]
            med = f"{statistics.median(hit):.0f} min" if hit else "—"
            print(
                f"  {rate:.1f}/min  {name:<24} detected {len(hit)}/{len(delays)}"
                f"  median delay {med}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    false_alarms(args.seeds)
    detection(args.seeds * 2)


if __name__ == "__main__":
    main()
