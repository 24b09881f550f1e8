"""Measured accuracy: agreement between two labellings of the same items. Pure, no I/O.

Used for the automated verdict against the analysts' labels, and for one analyst
against another on double-labelled items. Each item may carry a weight (the inverse of
its probability of being sampled, see ``services.scorer.sampling``): estimates are then
weighted means (Hájek), and intervals use Kish's effective sample size
``n_eff = (Σw)² / Σw²``. With equal weights everything reduces to the plain counts.

Intervals are 95 % Wilson score intervals. Cohen's kappa is not a proportion; its
interval is the Wilson interval of the observed agreement ``p_o`` mapped through
``κ = (p_o − p_e) / (1 − p_e)`` with the chance agreement ``p_e`` held fixed.

The spot checks' statistics (``labelled_accuracy``, ``review_stats``) take the labelled
items as the store reads them (``services.core.storage.review.labelled_items``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Z95 = 1.959963984540054
SENTIMENTS: tuple[str, ...] = ("positive", "neutral", "negative")
IRRELEVANT = "irrelevant"  # the analyst's label for a wrong brand match
LABELS: tuple[str, ...] = (*SENTIMENTS, IRRELEVANT)


@dataclass(frozen=True, slots=True)
class Pair:
    """One item labelled twice: ``a`` (e.g. automated) and ``b`` (e.g. the analyst)."""

    a: str
    b: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Estimate:
    """A measured value with its 95 % interval and the number of items behind it."""

    value: float
    ci95: tuple[float, float]
    n: int

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "ci95": list(self.ci95), "n": self.n}


@dataclass(frozen=True, slots=True)
class Agreement:
    """How far two labellings agree. ``None`` where there is nothing to measure (no
    items; no item predicted or truly of a class; kappa when chance agreement is 1)."""

    n: int
    accuracy: Estimate | None
    kappa: Estimate | None
    precision: dict[str, Estimate | None] = field(default_factory=dict)
    recall: dict[str, Estimate | None] = field(default_factory=dict)


def wilson(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` observed on ``n`` (effective) items.

    ``n`` must be positive."""
    if n <= 0:
        raise ValueError("n: the Wilson interval needs at least one item")
    z2 = z * z
    centre = p + z2 / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denominator = 1 + z2 / n
    return (max(0.0, (centre - half) / denominator), min(1.0, (centre + half) / denominator))


def effective_n(weights: Sequence[float]) -> float:
    """Kish's effective sample size; equals ``len(weights)`` when all weights are equal."""
    total = sum(weights)
    squares = sum(w * w for w in weights)
    return 0.0 if squares == 0 else total * total / squares


def proportion(hits: Iterable[tuple[bool, float]]) -> Estimate | None:
    """Weighted share of ``True`` among ``(hit, weight)`` items, with its Wilson interval."""
    items = list(hits)
    weights = [w for _, w in items]
    total = sum(weights)
    if not items or total <= 0:
        return None
    p = sum(w for hit, w in items if hit) / total
    return Estimate(p, wilson(p, effective_n(weights)), len(items))


def agreement(pairs: Sequence[Pair], classes: Sequence[str]) -> Agreement:
    """Accuracy, Cohen's kappa and per-class precision and recall of ``a`` against ``b``
    (``b`` is the reference: precision of class c is the share of items ``a`` calls c
    that ``b`` calls c too)."""
    accuracy = proportion((p.a == p.b, p.weight) for p in pairs)
    precision = {c: proportion((p.b == c, p.weight) for p in pairs if p.a == c) for c in classes}
    recall = {c: proportion((p.a == c, p.weight) for p in pairs if p.b == c) for c in classes}
    return Agreement(
        n=len(pairs),
        accuracy=accuracy,
        kappa=_kappa(pairs, classes, accuracy),
        precision=precision,
        recall=recall,
    )


def _kappa(pairs: Sequence[Pair], classes: Sequence[str], po: Estimate | None) -> Estimate | None:
    total = sum(p.weight for p in pairs)
    if po is None or total <= 0:
        return None
    pe = 0.0
    for c in classes:
        share_a = sum(p.weight for p in pairs if p.a == c) / total
        share_b = sum(p.weight for p in pairs if p.b == c) / total
        pe += share_a * share_b
    if pe >= 1.0:
        return None

    def kappa(agreement: float) -> float:
        return (agreement - pe) / (1 - pe)

    lo, hi = po.ci95
    return Estimate(kappa(po.value), (kappa(lo), kappa(hi)), po.n)


# --- spot checks ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelledItem:
    """An item with its human labels in the order given (the first is the one that counts)."""

    brand: str
    source: str
    method: str
    auto_label: str
    weight: float
    labels: tuple[str, ...]


def sentiment_pairs(items: Sequence[LabelledItem]) -> list[Pair]:
    """Automated vs human for items whose counting label is a sentiment (an irrelevant
    brand match says nothing about the sentiment scorer)."""
    return [Pair(i.auto_label, i.labels[0], i.weight) for i in items if i.labels[0] != IRRELEVANT]


def labelled_accuracy(items: Sequence[LabelledItem]) -> Estimate | None:
    """The weighted share of ``items`` whose automated label the analyst confirmed, with
    its Wilson interval; ``None`` when none has a sentiment label."""
    return proportion((p.a == p.b, p.weight) for p in sentiment_pairs(items))


@dataclass(frozen=True, slots=True)
class ReviewStats:
    overall: Agreement
    by_method: dict[str, Agreement]
    by_source: dict[str, Agreement]
    by_brand: dict[str, Agreement]
    human_agreement: Agreement  # first vs second analyst on double-labelled items
    brand_match_precision: Estimate | None  # share of labels that are not "irrelevant"
    labelled_items: int


def review_stats(items: Sequence[LabelledItem]) -> ReviewStats:
    """All the statistics of ``GET /api/v1/review/stats`` from the labelled items."""

    def grouped(key: str) -> dict[str, Agreement]:
        groups: dict[str, list[LabelledItem]] = {}
        for i in items:
            groups.setdefault(getattr(i, key), []).append(i)
        return {k: agreement(sentiment_pairs(v), SENTIMENTS) for k, v in sorted(groups.items())}

    doubles = [Pair(i.labels[0], i.labels[1], i.weight) for i in items if len(i.labels) >= 2]
    return ReviewStats(
        overall=agreement(sentiment_pairs(items), SENTIMENTS),
        by_method=grouped("method"),
        by_source=grouped("source"),
        by_brand=grouped("brand"),
        human_agreement=agreement(doubles, LABELS),
        brand_match_precision=proportion((i.labels[0] != IRRELEVANT, i.weight) for i in items),
        labelled_items=len(items),
    )
