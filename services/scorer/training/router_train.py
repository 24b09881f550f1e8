"""Training the text router (``routing.TextRoutingModel``), numpy + scipy only.

A class-balanced 3-class logistic regression (softmax) over hashed words/bigrams and the
19 routing signals, fitted by full-batch L-BFGS from zero weights (deterministic: no
random state), on the SemEval 2013–2016 tweets minus every tweet of TweetEval **val**
(matched by ``overlap_key``), so the routing threshold can be tuned on val. TweetEval
test is never read. Writes ``router.npz`` (float16 term weights) and ``router.json``
(data hashes, hyper-parameters, held-out counts, the val curve) into ``--out``::

    python -m services.scorer.training.router_train \\
        --data ../shared/data/semeval/train_2013_2016.tsv \\
        --val-dir ../shared/data/tweeteval --out models/sentimon-router
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from scipy.optimize import minimize  # type: ignore[import-untyped]

from services.scorer.lexicon import VaderScorer, label_for
from services.scorer.process import prepare_text
from services.scorer.routing import (
    FEATURE_NAMES,
    HASH_DIM,
    RoutingThresholds,
    TextRoutingModel,
    hashed_terms,
    route_text,
    routing_features,
)
from services.scorer.training.data import (
    LABEL_IDS,
    file_sha256,
    overlap_key,
    read_semeval,
    read_tweeteval,
)

L2 = 3e-5
MAX_ITERATIONS = 300


def design_matrix(texts: Sequence[str], compounds: Sequence[float]) -> sp.csr_matrix:
    """Rows: L2-normalised hashed terms (as ``TextRoutingModel`` sums them), then the signals."""
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for i, text in enumerate(texts):
        idx = hashed_terms(text)
        rows += [i] * len(idx)
        cols += idx
        vals += [1.0 / np.sqrt(len(idx))] * len(idx) if idx else []
    terms = sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), HASH_DIM))
    signals = np.array(
        [routing_features(t, c).vector() for t, c in zip(texts, compounds, strict=True)]
    )
    return sp.hstack([terms, sp.csr_matrix(signals)]).tocsr()


def fit(
    x: sp.csr_matrix, y: np.ndarray, *, l2: float = L2, iterations: int = MAX_ITERATIONS
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (features × 3) and bias (3,) of a softmax regression; each class weighs the
    same in total (macro-recall counts classes equally)."""
    n, p = x.shape
    weight = (n / (3 * np.bincount(y, minlength=3).clip(min=1)))[y]
    onehot = np.eye(3)[y]

    def loss(b: np.ndarray) -> tuple[float, np.ndarray]:
        w, c = b[: p * 3].reshape(p, 3), b[p * 3 :]
        z = x @ w + c
        z -= z.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        value = -(weight * np.log(prob[np.arange(n), y] + 1e-12)).sum() / n
        g = (prob - onehot) * weight[:, None] / n
        grad = np.concatenate([(x.T @ g + l2 * w).ravel(), g.sum(axis=0)])
        return float(value + 0.5 * l2 * (w * w).sum()), grad

    result = minimize(
        loss, np.zeros(p * 3 + 3), jac=True, method="L-BFGS-B", options={"maxiter": iterations}
    )
    return result.x[: p * 3].reshape(p, 3), result.x[p * 3 :]


def compounds_of(texts: Sequence[str]) -> list[float]:
    vader = VaderScorer()
    return [vader.compound(prepare_text(t, (), 2_000)[0]) for t in texts]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--val-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--l2", type=float, default=L2)
    args = parser.parse_args(argv)
    data = read_semeval(args.data)
    val = read_tweeteval(args.val_dir, "val")
    held_out = {overlap_key(t) for t in val.texts}
    keep = [i for i, t in enumerate(data.texts) if overlap_key(t) not in held_out]
    texts, labels = [data.texts[i] for i in keep], np.array([data.labels[i] for i in keep])
    w, c = fit(design_matrix(texts, compounds_of(texts)), labels, l2=args.l2)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out / "router.npz",
        terms=w[:HASH_DIM].astype(np.float16),
        signals=w[HASH_DIM:].astype(np.float32),
        bias=c.astype(np.float32),
    )
    model = TextRoutingModel.load(args.out / "router.npz")
    curve = val_curve(model, val.texts, val.labels)
    card = {
        "model": "sentimon-router",
        "kind": "softmax regression over hashed words/bigrams (2^18) + 19 routing signals",
        "trust": "probability of VADER's own label",
        "trainer": "python -m services.scorer.training.router_train",
        "data": {
            "file": args.data.name,
            "sha256": file_sha256(args.data),
            "tweets": len(data),
            "held_out_tweeteval_val": len(data) - len(keep),
            "trained_on": len(keep),
            "val_sha256": file_sha256(args.val_dir / "val_text.txt"),
            "licence": "SemEval tweets: research use (see models/sentimon-minilm-tweets card)",
        },
        "hyper_parameters": {
            "l2": args.l2,
            "optimizer": "L-BFGS-B, full batch, zero init (deterministic, no seed needed)",
            "max_iterations": MAX_ITERATIONS,
            "class_weights": "balanced",
            "hash": "crc32 & (2^18 - 1)",
        },
        "feature_names": list(FEATURE_NAMES),
        "val_min_trust_to_routed_share": curve,
    }
    (args.out / "router.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(card, indent=2))


def val_curve(
    model: TextRoutingModel, texts: Sequence[str], gold: Sequence[int]
) -> dict[str, float]:
    """Share of val routed at each min_trust (the bench measures macro-recall)."""
    compounds = compounds_of(texts)
    out: dict[str, float] = {}
    for t in (0.4, 0.5, 0.6, 0.7, 0.8):
        th = RoutingThresholds(min_trust=t, text_model=model)
        routed = [
            route_text(x, c, th).route == "transformer"
            for x, c in zip(texts, compounds, strict=True)
        ]
        out[f"{t:.1f}"] = round(sum(routed) / len(routed), 4)
    # Sanity: the lexicon labels the trust refers to.
    assert all(label_for(c) in LABEL_IDS for c in compounds)
    return out


if __name__ == "__main__":
    main()
