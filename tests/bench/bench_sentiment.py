"""Hybrid scorer benchmarks: accuracy on TweetEval test, the routing trade-off curve,
the lexicon path against VADER's ground truth, and throughput — all in one run.

Run: ``make bench`` (or ``.venv/bin/python -m tests.bench.bench_sentiment``). Options:
``--fit-router`` refits the signals router's trust model on TweetEval val, prints it and
says whether it is the one shipped (both routers are trained by
``services.scorer.training``: ``routing_fit`` and ``router_train``);
``--quick`` skips the embedded-pipeline run.

Accuracy is TweetEval's official macro-averaged recall (and macro-F1, accuracy) on the
12,284 test tweets, for the lexicon alone (VADER through Sentimon's lexicon path), the
shipped int8 transformer alone, and the hybrid at the configured routing threshold with
the share it routes. The threshold is chosen on TweetEval **val** (the best val
macro-recall routing at most 40 %); test is only measured. Throughput compares the
batched int8 transformer with the same model called one text at a time, and the hybrid
embedded pipeline with the lexicon-only one, on the same texts in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.api.settings import ApiSettings
from services.embedded import Embedded
from services.ingest.settings import IngestSettings
from services.ingest.sources.file import FileSource
from services.scorer.lexicon import VaderScorer, label_for
from services.scorer.process import prepare_text
from services.scorer.routing import (
    FEATURE_NAMES,
    routing_features,
    shipped_signals_model,
    shipped_text_model,
)
from services.scorer.settings import ROUTE_MIN_TRUST, ScorerSettings
from services.scorer.training.data import LABEL_IDS, Labelled, read_tweeteval
from services.scorer.training.metrics import Scores, evaluate
from services.scorer.training.routing_fit import fit_routing_model
from services.scorer.transformer import OnnxTransformer, load_transformer
from tests.bench.bench_pipeline import BRANDS, build_texts, write_jsonl
from tests.bench.shared_data import shared_data_dir

MAX_ROUTED = 0.40
GRID = [round(x, 2) for x in np.arange(0.30, 0.96, 0.01)]


def tweeteval(split: str) -> Labelled:
    return read_tweeteval(shared_data_dir() / "tweeteval", split)


def lexicon_compounds(texts: Sequence[str]) -> list[float]:
    """The compound the scorer's lexicon path gives (no brand spans here: the same cap
    and VADER call as for a mention)."""
    vader = VaderScorer()
    return [vader.compound(prepare_text(t, (), 2_000)[0]) for t in texts]


def lexicon_labels(compounds: Sequence[float]) -> np.ndarray:
    return np.array([LABEL_IDS[label_for(c)] for c in compounds])


def transformer_labels(model: OnnxTransformer, texts: Sequence[str]) -> np.ndarray:
    ids = [LABEL_IDS[label] for label in model.info.labels]
    out: list[int] = []
    for i in range(0, len(texts), 64):
        out.extend(ids[int(k)] for k in model.probabilities(texts[i : i + 64]).argmax(axis=1))
    return np.array(out)


def trusts(texts: Sequence[str], compounds: Sequence[float]) -> np.ndarray:
    """The shipped (text) router's trust in the lexicon, per text."""
    model = shipped_text_model()
    return np.array(
        [model.trust(t, routing_features(t, c)) for t, c in zip(texts, compounds, strict=True)]
    )


def signal_trusts(texts: Sequence[str], compounds: Sequence[float]) -> np.ndarray:
    """The 19-signal logistic router's trust (the previous default), per text."""
    model = shipped_signals_model()
    return np.array(
        [model.trust(routing_features(t, c)) for t, c in zip(texts, compounds, strict=True)]
    )


SHARES = (0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6)


def share_curve(gold: Sequence[int], lex: np.ndarray, tf: np.ndarray, trust: np.ndarray) -> str:
    """Macro-recall when the given share of least-trusted texts is routed."""
    order = np.argsort(trust, kind="stable")
    out = []
    for q in SHARES:
        routed = np.zeros(len(trust), bool)
        routed[order[: int(q * len(trust))]] = True
        out.append(f"{hybrid(gold, lex, tf, routed)[0].macro_recall:.3f}")
    return "  ".join(out)


def routing_cost(texts: Sequence[str], compounds: Sequence[float]) -> None:
    """µs per mention: VADER alone, + the signals router, + the text router."""
    vader, model, signals = VaderScorer(), shipped_text_model(), shipped_signals_model()
    sample = list(texts[:3_000])
    t0 = time.perf_counter()
    for t in sample:
        vader.compound(t)
    t_vader = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t, c in zip(sample, compounds, strict=False):
        signals.trust(routing_features(t, c))
    t_signals = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t, c in zip(sample, compounds, strict=False):
        model.trust(t, routing_features(t, c))
    t_text = time.perf_counter() - t0
    n = len(sample) / 1e6
    print(f"routing cost per mention ({len(sample)} test tweets, one thread)")
    print(f"  VADER alone (baseline)          {t_vader / n:6.1f} µs  1.00x")
    print(f"  signals router (previous)       {t_signals / n:6.1f} µs  {t_signals / t_vader:.2f}x")
    print(f"  text router (default)           {t_text / n:6.1f} µs  {t_text / t_vader:.2f}x")


def hybrid(
    gold: Sequence[int], lex: np.ndarray, tf: np.ndarray, routed: np.ndarray
) -> tuple[Scores, float]:
    return evaluate(list(gold), list(np.where(routed, tf, lex))), float(routed.mean())


def fmt(name: str, s: Scores, routed: float | None = None) -> str:
    share = "" if routed is None else f"  routed {routed:6.1%}"
    return (
        f"  {name:<44} macro-recall {s.macro_recall:.3f}  macro-F1 {s.macro_f1:.3f}  "
        f"accuracy {s.accuracy:.3f}{share}"
    )


def tune(val: Labelled, lex: np.ndarray, tf: np.ndarray, trust: np.ndarray) -> float:
    """The min_trust with the best val macro-recall routing at most MAX_ROUTED."""
    best = (-1.0, 0.0)
    for t in GRID:
        s, share = hybrid(val.labels, lex, tf, trust < t)
        if share <= MAX_ROUTED and s.macro_recall > best[0]:
            best = (s.macro_recall, t)
    return best[1]


def accuracy_section(model: OnnxTransformer, fit_router: bool) -> None:
    val, test = tweeteval("val"), tweeteval("test")
    val_c, test_c = lexicon_compounds(val.texts), lexicon_compounds(test.texts)
    if fit_router:
        m = fit_routing_model(val.texts, val_c, val.labels)
        print("router trust model fitted on TweetEval val:")
        print(f"  bias={m.bias}")
        for name, w in zip(FEATURE_NAMES, m.weights, strict=True):
            print(f'  "{name}": {w},')
        if m == shipped_signals_model():
            print("  (the weights shipped in models/sentimon-router/signals.json)")
        else:
            print(
                "  (differs from models/sentimon-router/signals.json: rewrite it with "
                "python -m services.scorer.training.routing_fit)"
            )
    val_lex, test_lex = lexicon_labels(val_c), lexicon_labels(test_c)
    t0 = time.perf_counter()
    val_tf = transformer_labels(model, val.texts)
    test_tf = transformer_labels(model, test.texts)
    tf_seconds = time.perf_counter() - t0
    val_trust, test_trust = trusts(val.texts, val_c), trusts(test.texts, test_c)
    chosen = tune(val, val_lex, val_tf, val_trust)

    print(f"TweetEval test ({len(test)} tweets; official metric macro-recall)")
    print(
        fmt("lexicon alone (VADER, Sentimon's lexicon path)", evaluate(test.labels, list(test_lex)))
    )
    print(fmt(f"transformer alone ({model.model_version})", evaluate(test.labels, list(test_tf))))
    s, share = hybrid(test.labels, test_lex, test_tf, test_trust < ROUTE_MIN_TRUST)
    print(fmt(f"hybrid, shipped min_trust {ROUTE_MIN_TRUST}", s, share))
    if chosen != ROUTE_MIN_TRUST:
        s, share = hybrid(test.labels, test_lex, test_tf, test_trust < chosen)
        print(fmt(f"hybrid, min_trust {chosen} (re-tuned on val now)", s, share))
    print(f"  (transformer on {len(val) + len(test)} texts took {tf_seconds:.1f} s)")

    print("routing curve: min_trust → share routed, macro-recall (val | test)")
    for t in GRID[::5] + ([ROUTE_MIN_TRUST] if ROUTE_MIN_TRUST not in GRID[::5] else []):
        vs, vshare = hybrid(val.labels, val_lex, val_tf, val_trust < t)
        ts, tshare = hybrid(test.labels, test_lex, test_tf, test_trust < t)
        print(
            f"  {t:4.2f}  val {vshare:6.1%} {vs.macro_recall:.3f} | "
            f"test {tshare:6.1%} {ts.macro_recall:.3f}"
        )
    print("share routed → macro-recall, test: " + "  ".join(f"{q:5.0%}" for q in SHARES))
    old = signal_trusts(test.texts, test_c)
    new = share_curve(test.labels, test_lex, test_tf, test_trust)
    print(f"  signals router (previous)       {share_curve(test.labels, test_lex, test_tf, old)}")
    print(f"  text router (default)           {new}")
    routing_cost(test.texts, test_c)
    print("compound band alone, for comparison (route when |compound| < B), test:")
    for band in (0.2, 0.35, 0.5, 0.7):
        s, share = hybrid(test.labels, test_lex, test_tf, np.abs(np.array(test_c)) < band)
        print(fmt(f"band B = {band}", s, share))


def ground_truth_section() -> None:
    path = shared_data_dir() / "vader" / "tweets_GroundTruth.tsv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    human = np.array([float(r["mean_rating"]) for r in rows])
    texts = [r["text"] for r in rows]
    ours = np.array(lexicon_compounds(texts))
    analyzer = SentimentIntensityAnalyzer()
    theirs = np.array([analyzer.polarity_scores(t)["compound"] for t in texts])
    r_ours = float(np.corrcoef(ours, human)[0, 1])
    r_theirs = float(np.corrcoef(theirs, human)[0, 1])
    print(f"VADER tweets ground truth ({len(rows)} tweets, Pearson r with the human mean)")
    print(f"  vaderSentiment polarity_scores (baseline)   r = {r_theirs:.4f}")
    print(
        f"  Sentimon lexicon path                        r = {r_ours:.4f}"
        f"  (Δ {r_ours - r_theirs:+.4f})"
    )
    print(f"  texts scored differently: {int((np.abs(ours - theirs) > 1e-9).sum())}")


# The naive baseline the issue names: transformers' pipeline(), fp32 torch, one text per
# call. torch is not in the serving venv, so it runs in the training venv when given.
_TORCH_PIPELINE = """
import sys, time, torch
from transformers import pipeline
torch.set_num_threads(2)
texts = [l.rstrip("\\n") for l in open(sys.argv[2], encoding="utf-8")][:200]
clf = pipeline("text-classification", model=sys.argv[1], device=-1)
clf(texts[0])
t0 = time.perf_counter()
for t in texts:
    clf(t)
print(len(texts) / (time.perf_counter() - t0))
"""


def torch_pipeline_rate(python: str, checkpoint: Path) -> float:
    import subprocess

    path = shared_data_dir() / "tweeteval" / "test_text.txt"
    out = subprocess.run(  # noqa: S603 - our own script, paths given by the operator
        [python, "-c", _TORCH_PIPELINE, str(checkpoint), str(path)],
        check=True,
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "TRANSFORMERS_VERBOSITY": "error"},
        stdin=subprocess.DEVNULL,
    )
    return float(out.stdout.strip().splitlines()[-1])


def throughput_section(
    model: OnnxTransformer, torch_python: str | None, checkpoint: Path | None
) -> None:
    texts = tweeteval("test").texts
    naive_texts, batched_texts = texts[:300], texts[:3_000]
    model.score_batch(texts[:64])  # warm-up
    t0 = time.perf_counter()
    for t in naive_texts:
        model.score_batch([t])
    naive = len(naive_texts) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(0, len(batched_texts), 64):
        model.score_batch(batched_texts[i : i + 64])
    batched = len(batched_texts) / (time.perf_counter() - t0)
    print("transformer throughput (int8 ONNX unless said; one run)")
    if torch_python and checkpoint:
        torch_naive = torch_pipeline_rate(torch_python, checkpoint)
        rows = [
            ("pipeline(), fp32 torch, one text per call (baseline)", torch_naive),
            ("int8 ONNX, one text per call", naive),
            ("int8 ONNX, batches of 64", batched),
        ]
    else:
        rows = [
            ("int8 ONNX, one text per call (baseline)", naive),
            ("int8 ONNX, batches of 64", batched),
        ]
    for name, rate in rows:
        print(f"  {name:<54} {rate:8.0f} texts/s  {rate / rows[0][1]:.2f}x")


async def _embedded(path: Path, n: int, mode: Literal["hybrid", "lexicon"]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        emb = Embedded(
            ingest=IngestSettings(data_dir=data, demo=False),
            scorer=ScorerSettings(data_dir=data, scorer_mode=mode),
            api=ApiSettings(data_dir=data),
        )
        async with emb:
            for name, query in BRANDS:
                emb.brands.create(name, query)
            await emb.refresh_brands()
            t0 = time.perf_counter()
            task = emb.add_source(FileSource(path))
            await emb.drain(timeout_s=1_200)
            elapsed = time.perf_counter() - t0
            assert task.result().accepted == n
            registry = emb.metrics.registry
            stored = registry.get_sample_value("sentimon_mentions_stored_total") or 0.0
            routed = registry.get_sample_value("sentimon_routed_to_transformer_total") or 0.0
            assert stored == n, stored
    return n / elapsed, routed / n


def embedded_section(count: int) -> None:
    texts = build_texts(count)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mentions.jsonl"
        write_jsonl(path, texts)
        lexicon, _ = asyncio.run(_embedded(path, count, "lexicon"))
        hybrid_rate, share = asyncio.run(_embedded(path, count, "hybrid"))
    print(f"embedded pipeline, {count} TweetEval test tweets naming a brand, end to end")
    print(f"  lexicon only (baseline)         {lexicon:8.0f} mentions/s  1.00x")
    print(
        f"  hybrid (default settings)       {hybrid_rate:8.0f} mentions/s  "
        f"{hybrid_rate / lexicon:.2f}x  routed {share:.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit-router", action="store_true")
    parser.add_argument("--quick", action="store_true", help="skip the embedded pipeline")
    parser.add_argument("--count", type=int, default=6_000, help="embedded pipeline mentions")
    parser.add_argument(
        "--torch-python",
        help="a Python with torch (the [train] venv) for the pipeline() baseline",
    )
    parser.add_argument(
        "--checkpoint", type=Path, help="the fp32 checkpoint `sentimon model train` left"
    )
    args = parser.parse_args()
    model = load_transformer(None)
    accuracy_section(model, args.fit_router)
    ground_truth_section()
    throughput_section(model, args.torch_python, args.checkpoint)
    if not args.quick:
        embedded_section(args.count)


if __name__ == "__main__":
    main()
