"""Fitting the signals router's trust model (``routing.RoutingModel``): a class-balanced
logistic regression of "the lexicon's label is right" on the 19 routing signals, by
Newton's method from zero weights (numpy only; deterministic: no random state).

Fitted on TweetEval **val** (never test), and written as ``signals.json`` (bias, one
weight per signal, the data's hashes and the hyper-parameters) beside the text router,
where ``routing.shipped_signals_model`` loads it::

    python -m services.scorer.training.routing_fit \\
        --val-dir ../shared/data/tweeteval --out models/sentimon-router
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from services.scorer.lexicon import label_for
from services.scorer.routing import (
    FEATURE_NAMES,
    ROUTER_MODEL_NAME,
    SIGNALS_FILE,
    RoutingModel,
    routing_features,
)
from services.scorer.training.data import LABEL_IDS, file_sha256, read_tweeteval
from services.scorer.training.router_train import compounds_of

L2 = 1.0
MAX_ITERATIONS = 50
# Weights are rounded so that the shipped file reads (and diffs) as a short table.
DECIMALS = 4


def lexicon_correct(compounds: Sequence[float], gold: Sequence[int]) -> list[bool]:
    return [LABEL_IDS[label_for(c)] == g for c, g in zip(compounds, gold, strict=True)]


def fit_routing_model(
    texts: Sequence[str],
    compounds: Sequence[float],
    gold: Sequence[int],
    *,
    transformer: Sequence[int] | None = None,
    l2: float = L2,
    iterations: int = MAX_ITERATIONS,
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
        bias=round(float(beta[0]), DECIMALS),
        weights=tuple(round(float(b), DECIMALS) for b in beta[1:]),
    )


def signals_card(
    model: RoutingModel, data: dict[str, object], *, l2: float, iterations: int
) -> dict[str, object]:
    """What ``signals.json`` holds: the weights (what ``RoutingModel.load`` reads), the
    data they were fitted on and how."""
    return {
        "model": f"{ROUTER_MODEL_NAME} signals",
        "kind": "logistic regression of 'the lexicon's label is right' over 19 routing signals",
        "trust": "sigmoid(bias + weights · signals)",
        "trainer": "python -m services.scorer.training.routing_fit",
        "data": data,
        "hyper_parameters": {
            "l2": l2,
            "optimizer": "Newton's method, zero init (deterministic, no seed needed)",
            "max_iterations": iterations,
            "class_weights": "balanced",
            "decimals": DECIMALS,
            "lexicon": f"vaderSentiment {metadata.version('vaderSentiment')}",
        },
        "bias": model.bias,
        "weights": dict(zip(FEATURE_NAMES, model.weights, strict=True)),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--val-dir", type=Path, required=True, help="TweetEval sentiment")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--l2", type=float, default=L2)
    args = parser.parse_args(argv)
    val = read_tweeteval(args.val_dir, "val")
    model = fit_routing_model(val.texts, compounds_of(val.texts), val.labels, l2=args.l2)
    data: dict[str, object] = {
        "split": "TweetEval sentiment val",
        "tweets": len(val),
        "val_sha256": file_sha256(args.val_dir / "val_text.txt"),
        "val_labels_sha256": file_sha256(args.val_dir / "val_labels.txt"),
    }
    card = signals_card(model, data, l2=args.l2, iterations=MAX_ITERATIONS)
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
    (args.out / SIGNALS_FILE).write_text(text, encoding="utf-8")
    print(text, end="")


if __name__ == "__main__":
    main()
