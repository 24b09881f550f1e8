"""The soak benchmark's verdict on crafted series, and its /proc readers on this process.
The soak itself runs with ``make bench`` only."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

from tests.bench.bench_soak import Sample, cpu_seconds, descendants, rss_bytes, soak_verdict

MB = 2**20


def series(rss_mb: Sequence[float], *, backlog: Sequence[int] | None = None) -> list[Sample]:
    """One sample every 10 s; ``run`` has the given RSS, its worker a constant 100 MB."""
    backlog = backlog or [0] * len(rss_mb)
    return [
        Sample(
            t_s=10.0 * i,
            accepted=1000 * (i + 1),
            stored=1000 * (i + 1) - backlog[i],
            rss_bytes={"run": int(mb * MB), "run+7": 100 * MB},
        )
        for i, mb in enumerate(rss_mb)
    ]


def test_a_steadily_growing_process_is_not_flat() -> None:
    # 200 → 300 MB over the run: well over 5 % after any warm-up.
    verdict = soak_verdict(series([200 + 5 * i for i in range(21)]))
    assert verdict.growth["run"].growth_pct > 5.0
    assert verdict.growth["run+7"].growth_pct == 0.0
    assert not verdict.flat


def test_growth_during_the_warm_up_is_not_judged() -> None:
    # Fast growth in the first 20 % (imports, caches), then flat with noise.
    rss = [100, 150, 200, 240, 250] + [250 + (3 if i % 2 else -3) for i in range(16)]
    verdict = soak_verdict(series(rss))
    assert verdict.warmup_s == pytest.approx(40.0)
    assert abs(verdict.growth["run"].growth_pct) < 2.0
    assert verdict.growth["total"].after_warmup_bytes == pytest.approx(350 * MB, rel=0.02)
    assert verdict.flat


def test_one_spike_at_the_end_does_not_decide_the_verdict() -> None:
    # Medians over the last 10 %: a single high sample (a GC not run yet) is outvoted.
    rss = [250.0] * 30
    rss[-1] = 400.0
    verdict = soak_verdict(series(rss))
    assert verdict.growth["run"].peak_bytes == 400 * MB
    assert verdict.growth["run"].growth_pct == pytest.approx(0.0)
    assert verdict.flat


def test_the_backlog_at_its_worst_and_at_the_end() -> None:
    verdict = soak_verdict(series([200.0] * 5, backlog=[0, 900, 4000, 1200, 300]))
    assert verdict.max_backlog == 4000
    assert verdict.end_backlog == 300


def test_a_process_missing_from_a_judged_sample_is_not_judged() -> None:
    samples = series([200.0] * 10)
    samples[-1] = Sample(t_s=90.0, accepted=10_000, stored=10_000, rss_bytes={"run": 200 * MB})
    verdict = soak_verdict(samples)
    assert set(verdict.growth) == {"run"}


def test_fewer_than_two_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="two samples"):
        soak_verdict(series([200.0]))


def test_proc_readers_see_this_process() -> None:
    assert (rss_bytes(os.getpid()) or 0) > 10 * MB
    assert (cpu_seconds(os.getpid()) or 0.0) > 0.0
    assert os.getpid() not in descendants(os.getpid())
    assert rss_bytes(2**31 - 1) is None
