"""Sentiment figures corrected by the analysts' spot checks ("adjusted"), with 95 % intervals.

The automated scorer's counts are biased (VADER calls many negatives neutral), so a brand's
raw net sentiment ranks brands right and states their level wrong. The analysts label a
sample whose inclusion probabilities are known (``services.scorer.sampling``); this module
turns the automated label of every mention plus those labels into estimates of the true
shares (positive, neutral, negative), net sentiment and number of mentions truly about the
brand (an analyst's ``irrelevant`` says the brand match was wrong). Pure: no I/O.

The estimator, for one brand and one period:

1. **Post-strata by automated label.** The period's mentions are split by the label the
   scorer gave them (``N_a`` mentions in stratum ``a``, known exactly). Within a stratum,
   the analysts' labels estimate the true-label mix ``θ_a`` as a weighted share (weights
   1 / inclusion probability, Hájek), and the totals are ``T = Σ_a N_a θ_a``. With only
   local labels this is the post-stratified (GREG with the automated label as auxiliary)
   estimator of survey sampling: design-consistent, and the better the scorer, the purer
   each stratum and the tighter the figure.
2. **Borrowed confusion.** A brand-period rarely has enough labels for three strata, so
   each ``θ_a`` starts from a prior borrowed across brands and periods: the scorer's
   confusion ``P(automated | true)`` measured on every label of the last ``POOL_DAYS``
   days, turned into this brand's ``P(true | automated)`` for the brand's own mix (the
   EM of Saerens et al., 2002, which assumes only that the scorer errs the same way on
   every brand, not that brands have the same mix). The prior is worth ``PRIOR_LABELS``
   labels: a stratum with many local labels follows them; one with none follows the prior.
3. **Intervals by simulation** (a parametric bootstrap): ``θ_a`` is drawn from its
   Dirichlet posterior, the unlabelled mentions of each stratum from a multinomial, the
   labelled ones are known; the 2.5 % and 97.5 % quantiles of ``DRAWS`` draws of each
   figure are its 95 % interval, and the mean its value. Their coverage is measured in
   ``tests/bench/bench_adjusted.py`` (synthetic brands of known truth, the real scorer and
   sampler) and reported in ``docs/benchmarks.md``.

No figure is given where it cannot be backed: fewer than ``MIN_POOL_LABELS`` labels to
measure the scorer with, or fewer than ``MIN_LOCAL_LABELS`` for the brand-period itself;
``adjust`` then returns the reason instead.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

SENTIMENTS: tuple[str, ...] = ("positive", "neutral", "negative")
IRRELEVANT = "irrelevant"
CLASSES: tuple[str, ...] = (*SENTIMENTS, IRRELEVANT)
_CLASS = {c: i for i, c in enumerate(CLASSES)}
_AUTO = {c: i for i, c in enumerate(SENTIMENTS)}

POOL_DAYS = 90
MIN_POOL_LABELS = 30
MIN_LOCAL_LABELS = 10
PRIOR_LABELS = 8.0
DRAWS = 2_000
# The label-shift EM stops when no class share moves by more than EM_TOLERANCE (a
# hundredth of a percentage point: far below what the labels can tell).
EM_ITERATIONS = 200
EM_TOLERANCE = 1e-4
POOL_DRAWS = 100  # bootstrap replicates of the borrowed confusion, shared by the draws


@dataclass(frozen=True, slots=True)
class LabelledMention:
    """A mention of a brand with the scorer's label (``auto``), the analysts' label that
    counts (``human``, possibly ``irrelevant``) and its weight (1 / inclusion probability)."""

    auto: str
    human: str
    weight: float


@dataclass(frozen=True, slots=True)
class Figure:
    """A value with its 95 % interval."""

    value: float
    ci95: tuple[float, float]

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "ci95": list(self.ci95)}


@dataclass(frozen=True, slots=True)
class Adjusted:
    """The corrected figures of a brand-period and the number of labels behind them
    (the brand-period's own; the borrowed confusion rests on more)."""

    labels: int
    mentions: Figure
    shares: Mapping[str, Figure]
    net_sentiment: Figure | None  # None: (almost) no opinionated mention at all

    def as_dict(self) -> dict[str, object]:
        return {
            "labels": self.labels,
            "mentions": self.mentions.as_dict(),
            "shares": {c: f.as_dict() for c, f in self.shares.items()},
            "net_sentiment": None if self.net_sentiment is None else self.net_sentiment.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class Pool:
    """The scorer's confusion measured across brands and periods, from ``labels`` analyst
    labels: ``counts[a, y]`` is the weighted number of labels with automated label a and
    true class y (weights rescaled to the number of labels, with a weak prior)."""

    counts: NDArray[np.float64]  # 3 × 4
    labels: int

    @property
    def confusion(self) -> NDArray[np.float64]:
        """P(automated label a | true class y), ``[a, y]``."""
        result: NDArray[np.float64] = self.counts / self.counts.sum(axis=0)
        return result

    @property
    def mix(self) -> NDArray[np.float64]:
        """The true-class mix of the labelled stream, weighted back to the whole stream."""
        column = self.counts.sum(axis=0)
        result: NDArray[np.float64] = column / column.sum()
        return result


def _normalised_weights(labels: Sequence[LabelledMention]) -> NDArray[np.float64]:
    """Weights rescaled to sum to the number of labels, so pseudo-counts are in labels."""
    w = np.array([max(m.weight, 1.0) for m in labels], dtype=np.float64)
    return w * (len(w) / w.sum()) if len(w) else w


def pool_of(labels: Iterable[LabelledMention]) -> Pool:
    """Measure the scorer's confusion on ``labels`` (every brand, every period).

    A weak prior (half a label per cell, one more on the diagonal) keeps a class nobody
    labelled yet from dividing by zero; it fades as labels come in."""
    items = [m for m in labels if m.auto in _AUTO and m.human in _CLASS]
    counts = np.full((len(SENTIMENTS), len(CLASSES)), 0.5)
    for i in range(len(SENTIMENTS)):
        counts[i, i] += 1.0
    for m, w in zip(items, _normalised_weights(items), strict=True):
        counts[_AUTO[m.auto], _CLASS[m.human]] += w
    return Pool(counts=counts, labels=len(items))


def brand_posterior(pool: Pool, auto_counts: NDArray[np.float64]) -> NDArray[np.float64]:
    """P(true class | automated label) for a brand whose automated counts are
    ``auto_counts``, assuming the scorer errs as in ``pool`` (label shift: the brand's
    true mix differs, the scorer's behaviour per true class does not). EM of Saerens,
    Latinne and Decaestecker (2002), with the pool's mix worth 20 mentions as a prior so
    that a small brand's noisy counts cannot drive a class to zero."""
    result: NDArray[np.float64] = _posteriors(pool.counts[None], auto_counts)[0]
    return result


def _posteriors(counts: NDArray[np.float64], auto: NDArray[np.float64]) -> NDArray[np.float64]:
    """``brand_posterior`` for a stack of confusion counts ``[k, a, y]`` at once."""
    column = counts.sum(axis=1, keepdims=True)  # [k, 1, y]
    confusion = counts / column
    prior_mix = column / column.sum(axis=2, keepdims=True)  # [k, 1, y]
    prior = prior_mix * 20.0
    mix = prior_mix.copy()
    total = auto.sum()
    for _ in range(EM_ITERATIONS):
        joint = confusion * mix
        post = joint / joint.sum(axis=2, keepdims=True)
        new = (np.einsum("a,kay->ky", auto, post)[:, None, :] + prior) / (total + 20.0)
        done = np.abs(new - mix).max() < EM_TOLERANCE
        mix = new
        if done:
            break
    joint = confusion * mix
    result: NDArray[np.float64] = joint / joint.sum(axis=2, keepdims=True)
    return result


def automated_counts(raw: Mapping[str, int], labels: Sequence[LabelledMention]) -> dict[str, int]:
    """The scorer's own counts per label, from the rollups' counts (which follow the
    analysts: a labelled mention counts under its human label, or not at all when
    ``irrelevant``) and the period's labelled mentions."""
    out = {c: int(raw.get(c, 0)) for c in SENTIMENTS}
    for m in labels:
        if m.auto in out:
            out[m.auto] += 1
        if m.human in out:
            out[m.human] -= 1
    return {c: max(n, 0) for c, n in out.items()}


def _seed(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def _figure(draws: NDArray[np.float64]) -> Figure:
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return Figure(float(draws.mean()), (float(lo), float(hi)))


# Figures already worked out, by everything they depend on: a dashboard asks for the same
# closed buckets every few seconds, and only new mentions or labels change them.
_CACHE_SIZE = 4_096
_cache: OrderedDict[tuple[object, ...], Adjusted | str] = OrderedDict()
_cache_lock = threading.Lock()


def adjust(
    auto: Mapping[str, int],
    labels: Sequence[LabelledMention],
    pool: Pool,
    *,
    key: str = "",
    draws: int = DRAWS,
    prior_labels: float = PRIOR_LABELS,
    min_local: int = MIN_LOCAL_LABELS,
    min_pool: int = MIN_POOL_LABELS,
) -> Adjusted | str:
    """The corrected figures for one brand-period, or why there are none.

    ``auto``: the scorer's own counts per label for the brand-period (``automated_counts``);
    ``labels``: its labelled mentions; ``pool``: the confusion measured across brands
    and periods. ``key`` seeds the simulation, so the same question gets the same answer
    (remembered: the last ``_CACHE_SIZE`` answers are served without working them out).
    """
    # A refusal costs three counts: found before the cache, whose key costs more.
    usable = sum(1 for m in labels if m.auto in _AUTO and m.human in _CLASS)
    total = int(sum(float(auto.get(c, 0)) for c in SENTIMENTS))
    reason = refusal(total, usable, pool.labels, min_local=min_local, min_pool=min_pool)
    if reason is not None:
        return reason
    cache_key = (
        key,
        tuple(sorted(auto.items())),
        tuple(labels),
        pool.counts.tobytes(),
        pool.labels,
        draws,
        prior_labels,
        min_local,
        min_pool,
    )
    with _cache_lock:
        if (hit := _cache.get(cache_key)) is not None:
            _cache.move_to_end(cache_key)
            return hit
    result = _adjust(
        auto,
        labels,
        pool,
        key=key,
        draws=draws,
        prior_labels=prior_labels,
        min_local=min_local,
        min_pool=min_pool,
    )
    with _cache_lock:
        _cache[cache_key] = result
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def refusal(
    mentions: int,
    labels: int,
    pool_labels: int,
    *,
    min_local: int = MIN_LOCAL_LABELS,
    min_pool: int = MIN_POOL_LABELS,
) -> str | None:
    """Why a brand-period with ``mentions`` automated verdicts, ``labels`` usable labels
    of its own and a pool measured on ``pool_labels`` gets no corrected figures, or
    ``None`` when it gets them. The first reason that applies, in this order: no mentions,
    too few labels in the pool, too few of its own."""
    if mentions == 0:
        return "no mentions in this period"
    if pool_labels < min_pool:
        return (
            f"{pool_labels} analyst labels in the last {POOL_DAYS} days; corrected figures "
            f"need {min_pool} to measure the scorer"
        )
    if labels < min_local:
        return (
            f"{labels} analyst labels for this brand in this period; corrected figures "
            f"need {min_local}"
        )
    return None


def _adjust(
    auto: Mapping[str, int],
    labels: Sequence[LabelledMention],
    pool: Pool,
    *,
    key: str,
    draws: int,
    prior_labels: float,
    min_local: int,
    min_pool: int,
) -> Adjusted | str:
    n_auto = np.array([float(auto.get(c, 0)) for c in SENTIMENTS])
    local = [m for m in labels if m.auto in _AUTO and m.human in _CLASS]
    reason = refusal(
        int(n_auto.sum()), len(local), pool.labels, min_local=min_local, min_pool=min_pool
    )
    if reason is not None:
        return reason
    rng = np.random.default_rng(_seed(key))
    # The borrowed confusion is itself measured on a sample: each draw takes its own
    # (a Bayesian bootstrap of the pool's counts), so its uncertainty reaches the interval.
    pooled = rng.gamma(pool.counts[None].repeat(POOL_DRAWS, axis=0))
    prior = _posteriors(pooled, n_auto)[np.arange(draws) % POOL_DRAWS]  # [draw, a, y]
    known = np.zeros(len(CLASSES))
    totals = np.zeros((draws, len(CLASSES)))
    for a, name in enumerate(SENTIMENTS):
        mine = [m for m in local if m.auto == name]
        for m in mine:
            known[_CLASS[m.human]] += 1
        alpha = prior_labels * prior[:, a, :]
        if mine:
            w = np.array([max(m.weight, 1.0) for m in mine])
            n_eff = w.sum() ** 2 / (w * w).sum()
            shares = np.zeros(len(CLASSES))
            for m, wi in zip(mine, w, strict=True):
                shares[_CLASS[m.human]] += wi
            alpha = alpha + n_eff * shares / shares.sum()
        unlabelled = max(int(n_auto[a]) - len(mine), 0)
        if unlabelled == 0:
            continue
        gammas = rng.gamma(np.maximum(alpha, 1e-3))
        sums = gammas.sum(axis=1, keepdims=True)
        # Tiny shapes can all underflow to 0 in a draw: that draw knows nothing, say so.
        theta = np.where(sums > 0, gammas / np.where(sums > 0, sums, 1.0), 1.0 / len(CLASSES))
        totals += rng.multinomial(unlabelled, theta)
    totals += known
    relevant = totals[:, : len(SENTIMENTS)].sum(axis=1)
    safe = np.maximum(relevant, 1.0)
    shares_out = {c: _figure(totals[:, i] / safe) for i, c in enumerate(SENTIMENTS)}
    polar = totals[:, 0] + totals[:, 2]
    defined = polar > 0
    net = None
    if defined.mean() >= 0.975:
        net = _figure((totals[defined, 0] - totals[defined, 2]) / polar[defined])
    return Adjusted(
        labels=len(local),
        mentions=_figure(relevant),
        shares=shares_out,
        net_sentiment=net,
    )


@dataclass(frozen=True, slots=True)
class BrandLabel:
    """A labelled mention of a brand, placed in time: ``minute`` is the epoch second of the
    minute its mention was created, as the rollups place it; ``role`` its author's role."""

    brand: str
    minute: int
    mention: LabelledMention
    role: str = ""


class RawCounts(Protocol):
    """A brand-period's counts as the rollups hold them."""

    @property
    def positive(self) -> int: ...
    @property
    def neutral(self) -> int: ...
    @property
    def negative(self) -> int: ...


def pool_start(start: int, end: int) -> int:
    """Where the labels a figure over ``[start, end)`` needs begin (epoch seconds): its
    own, and the ``POOL_DAYS`` before its end that the confusion is borrowed from."""
    return min(start, end - POOL_DAYS * 86_400)


@dataclass(frozen=True, slots=True)
class LabelSet:
    """The labels behind the adjusted figures of a range ending at ``end``: every label
    from ``pool_start`` on (each figure picks its own) and the pool measured on those of
    the last ``POOL_DAYS`` days."""

    labels: Sequence[BrandLabel]
    pool: Pool

    @classmethod
    def of(cls, labels: Sequence[BrandLabel], end: int) -> LabelSet:
        since = end - POOL_DAYS * 86_400
        return cls(labels, pool_of(lb.mention for lb in labels if since <= lb.minute < end))

    def local(self, brand: str, span: tuple[int, int], role: str | None = None) -> list[BrandLabel]:
        start, end = span
        return [
            lb
            for lb in self.labels
            if lb.brand == brand and start <= lb.minute < end and (role is None or lb.role == role)
        ]

    def figure(
        self, brand: str, counts: RawCounts, span: tuple[int, int], role: str | None = None
    ) -> Adjusted | str:
        """The adjusted figures of ``brand`` (its authors of ``role`` only, if given) over
        ``span``, from the rollups' ``counts`` of the same mentions."""
        mine = [lb.mention for lb in self.local(brand, span, role)]
        key = f"{brand}/{role or ''}/{span[0]}/{span[1]}"
        return adjust(automated_counts(_raw(counts), mine), mine, self.pool, key=key)


def _raw(c: RawCounts) -> dict[str, int]:
    return {"positive": c.positive, "neutral": c.neutral, "negative": c.negative}


@dataclass(frozen=True, slots=True)
class AdjustedSeries:
    """A brand's adjusted figures over a range (``total``) and per bucket: each is the
    ``Adjusted`` figures or the reason there are none."""

    total: Adjusted | str
    buckets: list[Adjusted | str]


def adjust_series(
    brand: str,
    total: RawCounts,
    buckets: Sequence[RawCounts],
    bucket_starts: Sequence[int],
    interval: int,
    span: tuple[int, int],
    labels: LabelSet,
) -> AdjustedSeries:
    """The adjusted figures of ``brand`` over ``span`` (``[start, end)``, epoch seconds)
    and in each bucket of ``interval`` seconds starting at ``bucket_starts``, from the
    rollups' counts."""
    mine = LabelSet(labels.local(brand, span), labels.pool)
    by_bucket = _labels_by_bucket(mine.labels, bucket_starts, interval)
    if by_bucket is None:
        figures = [
            mine.figure(brand, c, (s, s + interval))
            for s, c in zip(bucket_starts, buckets, strict=True)
        ]
    else:
        # A bucket without a label of its own gets a reason, whatever its counts: found
        # from the counts alone, without the per-bucket scan and cache look-up.
        pool_labels = mine.pool.labels
        figures = []
        for s, c, own in zip(bucket_starts, buckets, by_bucket, strict=True):
            reason = None
            if not own:
                mentions = max(c.positive, 0) + max(c.neutral, 0) + max(c.negative, 0)
                reason = refusal(mentions, 0, pool_labels)
            figures.append(
                reason
                if reason is not None
                else LabelSet(own, mine.pool).figure(brand, c, (s, s + interval))
            )
    return AdjustedSeries(total=mine.figure(brand, total, span), buckets=figures)


def _labels_by_bucket(
    labels: Sequence[BrandLabel], bucket_starts: Sequence[int], interval: int
) -> list[list[BrandLabel]] | None:
    """``labels`` split by the bucket ``[s, s + interval)`` each falls in, in their order
    (the estimator sums weights in that order); ``None`` unless the buckets follow each
    other ``interval`` apart, where a label may fall in none or several."""
    if any(b - a != interval for a, b in pairwise(bucket_starts)):
        return None
    out: list[list[BrandLabel]] = [[] for _ in bucket_starts]
    if not bucket_starts:
        return out
    first = bucket_starts[0]
    for lb in labels:
        i = (lb.minute - first) // interval
        if 0 <= i < len(out):
            out[i].append(lb)
    return out


# --- what the review queue needs: per-brand progress toward a useful interval ------------

TARGET_HALF_WIDTH = 0.05  # ± 5 points of net sentiment: a figure an executive can act on
PROGRESS_DAYS = 7


@dataclass(frozen=True, slots=True)
class BrandProgress:
    """How sure a brand's corrected net sentiment is over the review period, and how many
    more labels would bring its interval to ± ``TARGET_HALF_WIDTH``."""

    brand: str
    mentions: int
    labels: int
    net_sentiment: Figure | None
    labels_to_target: int | None  # None: unknown until there is a figure at all
    reason: str | None  # why there is no figure

    @property
    def half_width(self) -> float | None:
        if self.net_sentiment is None:
            return None
        lo, hi = self.net_sentiment.ci95
        return (hi - lo) / 2


def labels_to_reach(labels: int, figure: Figure, target: float = TARGET_HALF_WIDTH) -> int:
    """More labels needed for ``figure``'s interval to shrink to ± ``target``, from the
    ``labels`` behind it: an interval narrows as 1 / √labels (sampling error), so
    ``labels × ((half width / target)² − 1)``, rounded up. An estimate: the borrowed
    confusion narrows it a little faster, a brand with few mentions a little slower."""
    lo, hi = figure.ci95
    half = (hi - lo) / 2
    if half <= target:
        return 0
    return int(np.ceil(max(labels, 1) * ((half / target) ** 2 - 1)))


def brand_progress(
    brand: str,
    counts: RawCounts,
    labels: LabelSet,
    span: tuple[int, int],
    target: float = TARGET_HALF_WIDTH,
) -> BrandProgress:
    """The review progress of ``brand`` over ``span`` (epoch seconds)."""
    result = labels.figure(brand, counts, span)
    mentions = counts.positive + counts.neutral + counts.negative
    if isinstance(result, str) or result.net_sentiment is None:
        n = len(labels.local(brand, span))
        reason = result if isinstance(result, str) else "no opinionated mention yet"
        return BrandProgress(brand, mentions, n, None, None, reason)
    figure = result.net_sentiment
    return BrandProgress(
        brand,
        mentions,
        result.labels,
        figure,
        labels_to_reach(result.labels, figure, target),
        None,
    )


def review_order(progress: Sequence[BrandProgress]) -> list[str]:
    """Brands in the order their labels matter most: those with mentions but no corrected
    figure yet (the most mentions first), then the widest intervals still above target,
    then the rest."""

    def rank(p: BrandProgress) -> tuple[int, float]:
        half = p.half_width
        if half is None:
            return (0 if p.mentions > 0 else 3, -float(p.mentions))
        if p.labels_to_target:
            return (1, -half)
        return (2, -half)

    return [p.brand for p in sorted(progress, key=rank)]
