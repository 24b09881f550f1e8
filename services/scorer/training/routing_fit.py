"""Fitting the router's trust model: a class-balanced logistic regression of "the
lexicon's label is right" on the routing features, by Newton's method (numpy only).

Run on TweetEval **val** (never test) by ``python -m tests.bench.bench_sentiment
--fit-router``, which prints the ``RoutingModel`` to paste into ``routing.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.scorer.lexicon import label_for
from services.scorer.routing import RoutingModel, routing_features
from services.scorer.training.data import LABEL_IDS


def lexicon_correct(compounds: Sequence[float], gold: Sequence[int]) -> list[bool]:
    return [LABEL_IDS[label_for(c)] == g for c, g in zip(compounds, gold, strict=True)]


def fit_routing_model(
    texts: Sequence[str],
    compounds: Sequence[float],
    gold: Sequence[int],
    *,
    transformer: Sequence[int] | None = None,
    l2: float = 1.0,
    iterations: int = 50,
) -> RoutingModel:
    """Fit trust = P(lexicon label right | features) — or, given the ``transformer``'s
    labels, P(routing would not help: the lexicon is right or the transformer wrong too).
    Each true class weighs the same in total (macro-recall counts classes equally);
    ``l2`` regularises the weights, not the bias."""
    x = np.array([routing_features(t, c).vector() for t, c in zip(texts, compounds, strict=True)])
    ok = np.array(lexicon_correct(compounds, gold))
    if transformer is not None:
        ok |= np.asarray(transformer) != np.asarray(gold)
    y = ok.astype(float)
    g = np.asarray(gold)
    counts = np.bincount(g, minlength=3).astype(float)
    w = 1.0 / counts[g]
    w *= len(w) / w.sum()
    xb = np.hstack([np.ones((len(x), 1)), x])
    beta = np.zeros(xb.shape[1])
    penalty = np.r_[0.0, np.full(x.shape[1], l2)] / len(y)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(xb @ beta)))
        grad = xb.T @ ((p - y) * w) / len(y) + penalty * beta
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb / len(y) + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return RoutingModel(
        bias=round(float(beta[0]), 4), weights=tuple(round(float(b), 4) for b in beta[1:])
    )
