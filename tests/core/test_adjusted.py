"""The adjusted (spot-check-corrected) figures: exact where everything is labelled,
honest intervals under the sampling design, and a reason instead of a figure where the
labels are too few."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from services.core.adjusted import (
    CLASSES,
    SENTIMENTS,
    Adjusted,
    BrandLabel,
    BrandProgress,
    Figure,
    LabelledMention,
    LabelSet,
    adjust,
    adjust_series,
    automated_counts,
    brand_posterior,
    labels_to_reach,
    pool_of,
    refusal,
    review_order,
)
from services.core.storage.analytics import Counts


def population(
    rng: np.random.Generator, n: int, mix: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """True classes (index into CLASSES) and a biased scorer's labels (into SENTIMENTS):
    it calls 60 % of negatives neutral, and never says irrelevant."""
    truth = rng.choice(4, size=n, p=mix)
    auto = truth.copy()
    auto[truth == 3] = rng.choice(3, size=int((truth == 3).sum()))
    neg = np.flatnonzero(truth == 2)
    auto[neg[rng.random(len(neg)) < 0.6]] = 1
    return truth, auto


def labels_of(
    truth: np.ndarray, auto: np.ndarray, sampled: np.ndarray, p: np.ndarray
) -> list[LabelledMention]:
    return [
        LabelledMention(SENTIMENTS[auto[i]], CLASSES[truth[i]], 1 / p[i])
        for i in np.flatnonzero(sampled)
    ]


def counts_of(auto: np.ndarray) -> dict[str, int]:
    return {c: int((auto == i).sum()) for i, c in enumerate(SENTIMENTS)}


def test_automated_counts_undo_the_analysts_moves_in_the_rollups() -> None:
    # Rollups after three labels: a neutral mention relabelled negative (moved), a
    # positive one found irrelevant (taken out), a negative one confirmed. The scorer's
    # own counts come back.
    raw = {"positive": 4, "neutral": 9, "negative": 3}
    labels = [
        LabelledMention("neutral", "negative", 10.0),
        LabelledMention("positive", "irrelevant", 10.0),
        LabelledMention("negative", "negative", 10.0),
    ]
    assert automated_counts(raw, labels) == {"positive": 5, "neutral": 10, "negative": 2}


def test_every_mention_labelled_gives_the_truth_exactly() -> None:
    rng = np.random.default_rng(1)
    truth, auto = population(rng, 400, (0.2, 0.3, 0.4, 0.1))
    everything = np.ones(len(truth), dtype=bool)
    labels = labels_of(truth, auto, everything, np.ones(len(truth)))
    result = adjust(counts_of(auto), labels, pool_of(labels))
    assert isinstance(result, Adjusted)
    true = np.bincount(truth, minlength=4)
    relevant = int(true[:3].sum())
    assert result.mentions.value == relevant and result.mentions.ci95 == (relevant, relevant)
    expected_net = (true[0] - true[2]) / (true[0] + true[2])
    assert result.net_sentiment is not None
    assert result.net_sentiment.value == pytest.approx(expected_net)
    assert result.net_sentiment.ci95 == pytest.approx((expected_net, expected_net))
    for i, c in enumerate(SENTIMENTS):
        assert result.shares[c].value == pytest.approx(true[i] / relevant)


def test_intervals_cover_the_truth_under_poisson_sampling_with_unequal_weights() -> None:
    """200 populations, each sampled with the scorer's stratified, unequal inclusion
    probabilities (neutral verdicts 4×: they hide the negatives): the 95 % intervals of
    net sentiment cover the true value at least 90 % of the time, and the adjusted value
    is far closer to it than the raw one."""
    rng = np.random.default_rng(7)
    hits = []
    err_adjusted, err_raw = [], []
    for rep in range(200):
        mix = (*tuple(rng.dirichlet([2, 2, 2]) * 0.9), 0.1)
        truth, auto = population(rng, int(rng.integers(800, 3000)), mix)
        p = np.where(auto == 1, 0.08, 0.02)
        sampled = rng.random(len(truth)) < p
        labels = labels_of(truth, auto, sampled, p)
        # The pool: this brand's labels and another brand's, of a different mix.
        t2, a2 = population(rng, 3000, (0.5, 0.3, 0.15, 0.05))
        p2 = np.where(a2 == 1, 0.08, 0.02)
        s2 = rng.random(len(t2)) < p2
        pool = pool_of(labels + labels_of(t2, a2, s2, p2))
        result = adjust(counts_of(auto), labels, pool, key=str(rep))
        assert isinstance(result, Adjusted), result
        true = np.bincount(truth, minlength=4)
        true_net = (true[0] - true[2]) / (true[0] + true[2])
        assert result.net_sentiment is not None
        lo, hi = result.net_sentiment.ci95
        hits.append(lo <= true_net <= hi)
        err_adjusted.append(abs(result.net_sentiment.value - true_net))
        raw = counts_of(auto)
        err_raw.append(
            abs(
                (raw["positive"] - raw["negative"]) / (raw["positive"] + raw["negative"]) - true_net
            )
        )
    assert np.mean(hits) >= 0.90
    assert np.mean(err_adjusted) < 0.5 * np.mean(err_raw)


def test_the_brand_posterior_follows_the_brands_own_mix() -> None:
    """Label shift: with the scorer's confusion measured on a large pool of one mix and
    a brand's counts without noise, EM finds the brand's P(true | automated) that Bayes'
    rule gives for the brand's own, very different, mix. (Three classes: from three
    automated labels a fourth, ``irrelevant``, cannot be told apart by counts alone; the
    local labels do that.)"""
    rng = np.random.default_rng(3)
    big_t, big_a = population(rng, 200_000, (0.3, 0.35, 0.35, 0.0))
    pool = pool_of(labels_of(big_t, big_a, np.ones(len(big_t), bool), np.ones(len(big_t))))
    mix = np.array([0.1, 0.25, 0.65, 0.0])
    expected_auto = pool.confusion @ mix * 10_000
    post = brand_posterior(pool, expected_auto)
    bayes = pool.confusion * mix
    bayes /= bayes.sum(axis=1, keepdims=True)
    assert post == pytest.approx(bayes, abs=0.01)
    # Without the EM (the pool's own P(true | automated)), the negatives hidden among the
    # neutral verdicts would be badly underestimated for this brand.
    naive = pool.counts / pool.counts.sum(axis=1, keepdims=True)
    assert bayes[1, 2] - naive[1, 2] > 0.15


def test_too_few_labels_give_a_reason_not_a_figure() -> None:
    few = [LabelledMention("neutral", "negative", 50.0)] * 3
    assert adjust({"positive": 0, "neutral": 0, "negative": 0}, few, pool_of(few)) == (
        "no mentions in this period"
    )
    reason = adjust({"positive": 5, "neutral": 50, "negative": 5}, few, pool_of(few))
    assert isinstance(reason, str) and "3 analyst labels in the last 90 days" in reason
    many = [LabelledMention("neutral", "negative", 50.0)] * 40
    reason = adjust({"positive": 5, "neutral": 50, "negative": 5}, few, pool_of(many))
    assert reason == "3 analyst labels for this brand in this period; corrected figures need 10"


def test_the_same_question_gets_the_same_answer_and_buckets_use_their_own_labels() -> None:
    rng = np.random.default_rng(11)
    truth, auto = population(rng, 2000, (0.3, 0.3, 0.3, 0.1))
    p = np.full(len(truth), 0.05)
    sampled = rng.random(len(truth)) < p
    mentions = labels_of(truth, auto, sampled, p)
    # Half the labels in each of two hourly buckets; a label of another brand is ignored.
    labels = [BrandLabel("Acme", 3600 * (i % 2), m) for i, m in enumerate(mentions)]
    labels.append(BrandLabel("Globex", 0, LabelledMention("positive", "negative", 1.0)))
    pool = pool_of(m for m in mentions)
    half = {c: n // 2 for c, n in counts_of(auto).items()}
    bucket = Counts(positive=half["positive"], neutral=half["neutral"], negative=half["negative"])
    total = Counts(
        positive=2 * bucket.positive, neutral=2 * bucket.neutral, negative=2 * bucket.negative
    )
    label_set = LabelSet(labels, pool)
    one = adjust_series("Acme", total, [bucket, bucket], [0, 3600], 3600, (0, 7200), label_set)
    two = adjust_series("Acme", total, [bucket, bucket], [0, 3600], 3600, (0, 7200), label_set)
    assert one == two
    assert isinstance(one.total, Adjusted)
    assert one.total.labels == len(mentions)
    assert [b.labels for b in one.buckets if isinstance(b, Adjusted)] == [
        len(mentions[0::2]),
        len(mentions[1::2]),
    ]


def test_the_interval_narrows_as_one_over_the_root_of_the_labels() -> None:
    """``labels_to_reach`` assumes width ∝ 1 / √labels: with four times the labels on the
    same population, the interval is about half as wide, and the labels it asks for to
    halve it are about three times those it has."""
    rng = np.random.default_rng(5)
    truth, auto = population(rng, 20_000, (0.25, 0.3, 0.35, 0.1))
    widths = []
    for p_rate in (0.01, 0.04):
        p = np.full(len(truth), p_rate)
        sampled = rng.random(len(truth)) < p
        labels = labels_of(truth, auto, sampled, p)
        result = adjust(counts_of(auto), labels, pool_of(labels), prior_labels=0.01)
        assert isinstance(result, Adjusted) and result.net_sentiment is not None
        lo, hi = result.net_sentiment.ci95
        widths.append((hi - lo) / 2)
        if p_rate == 0.01:
            asked = labels_to_reach(result.labels, result.net_sentiment, target=widths[0] / 2)
            assert asked == pytest.approx(3 * result.labels, rel=0.02)
    assert widths[1] / widths[0] == pytest.approx(0.5, abs=0.12)
    assert labels_to_reach(100, Figure(0.1, (0.05, 0.15)), target=0.05) == 0


def test_the_queue_serves_brands_without_a_figure_then_the_widest_intervals() -> None:
    def progress(brand: str, mentions: int, half: float | None, more: int | None) -> BrandProgress:
        fig = None if half is None else Figure(0.0, (-half, half))
        return BrandProgress(brand, mentions, 10, fig, more, None if fig else "few labels")

    order = review_order(
        [
            progress("Done", 900, 0.04, 0),
            progress("Wide", 500, 0.20, 150),
            progress("Narrower", 800, 0.08, 40),
            progress("Quiet", 0, None, None),
            progress("Unlabelled", 300, None, None),
            progress("Unlabelled big", 3000, None, None),
        ]
    )
    assert order == ["Unlabelled big", "Unlabelled", "Wide", "Narrower", "Done", "Quiet"]


def test_an_answer_is_remembered_until_a_count_or_a_label_changes() -> None:
    rng = np.random.default_rng(13)
    truth, auto = population(rng, 1500, (0.3, 0.3, 0.3, 0.1))
    p = np.full(len(truth), 0.05)
    labels = labels_of(truth, auto, rng.random(len(truth)) < p, p)
    pool = pool_of(labels)
    first = adjust(counts_of(auto), labels, pool, key="k")
    assert adjust(counts_of(auto), labels, pool, key="k") is first
    more = {**counts_of(auto), "neutral": counts_of(auto)["neutral"] + 1}
    assert adjust(more, labels, pool, key="k") is not first
    relabelled = [*labels[:-1], dataclasses.replace(labels[-1], human="irrelevant")]
    assert adjust(counts_of(auto), relabelled, pool, key="k") is not first


def _series_by_scan(
    brand: str,
    total: Counts,
    buckets: list[Counts],
    starts: list[int],
    interval: int,
    span: tuple[int, int],
    labels: LabelSet,
) -> tuple[Adjusted | str, list[Adjusted | str]]:
    """What ``adjust_series`` gave before it split the labels by bucket: each bucket's
    figure from a scan of every label."""
    mine = LabelSet(labels.local(brand, span), labels.pool)
    return mine.figure(brand, total, span), [
        mine.figure(brand, c, (s, s + interval)) for s, c in zip(starts, buckets, strict=True)
    ]


@pytest.mark.parametrize("pool_size", [0, 20, 400])
def test_a_series_equals_each_buckets_figure_from_a_scan_of_every_label(pool_size: int) -> None:
    # Hourly buckets, some with no mention, some with a few labels, some with many; labels
    # of another brand and outside the range; the range cuts the first and last buckets.
    rng = np.random.default_rng(pool_size)
    interval, first, n = 3_600, 7_200, 12
    starts = [first + i * interval for i in range(n)]
    span = (first + 600, first + n * interval - 1_200)
    buckets = [
        Counts(
            positive=int(rng.integers(0, 40)) * (i % 5 != 0),
            neutral=int(rng.integers(0, 60)) * (i % 5 != 0),
            negative=int(rng.integers(0, 30)) * (i % 5 != 0),
        )
        for i in range(n)
    ]
    total = Counts(
        positive=sum(c.positive for c in buckets),
        neutral=sum(c.neutral for c in buckets),
        negative=sum(c.negative for c in buckets),
    )
    labels = [
        BrandLabel(
            str(rng.choice(["Acme", "Acme", "Globex"])),
            int(rng.integers(first - 3_600, first + (n + 1) * interval)) // 60 * 60,
            LabelledMention(
                SENTIMENTS[int(rng.integers(0, 3))],
                CLASSES[int(rng.integers(0, 4))],
                float(rng.uniform(1.0, 40.0)),
            ),
        )
        for _ in range(pool_size)
    ]
    # The sixth bucket has mentions and no label of its own.
    labels = [lb for lb in labels if lb.minute // interval != starts[5] // interval]
    label_set = LabelSet.of(labels, span[1])
    series = adjust_series("Acme", total, buckets, starts, interval, span, label_set)
    assert (series.total, series.buckets) == _series_by_scan(
        "Acme", total, buckets, starts, interval, span, label_set
    )
    if pool_size == 400:
        assert any(isinstance(b, Adjusted) for b in series.buckets)
        assert isinstance(series.buckets[5], str)
    # Buckets that do not follow each other an interval apart are answered by the scan.
    odd = [starts[0], starts[2], starts[3]]
    series = adjust_series("Acme", total, buckets[:3], odd, interval, span, label_set)
    assert (series.total, series.buckets) == _series_by_scan(
        "Acme", total, buckets[:3], odd, interval, span, label_set
    )


def test_a_refusal_is_the_same_before_and_after_the_cache() -> None:
    few = [LabelledMention("neutral", "negative", 50.0)] * 3
    many = [LabelledMention("neutral", "negative", 50.0)] * 40
    auto = {"positive": 5, "neutral": 50, "negative": 5}
    first = adjust(auto, few, pool_of(many), key="r")
    assert first == adjust(auto, few, pool_of(many), key="r") == refusal(60, 3, 40)
    assert refusal(0, 0, 0) == "no mentions in this period"
    assert refusal(1, 50, 40) is None
