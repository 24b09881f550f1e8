"""Do the adjusted figures tell the truth? Coverage, error and width of the spot-check-
corrected sentiment (``services.core.adjusted``) on synthetic brands of known truth.

Run: ``make bench`` (or ``.venv/bin/python -m tests.bench.bench_adjusted``). Options:
``--replications`` (default 200), ``--brands`` per replication (5), ``--prior-labels``
and ``--min-local`` to try the estimator's two settings.

Each replication builds ``--brands`` brands from the 12,284 human-labelled TweetEval test
tweets: a true mix drawn at random (Dirichlet(1.5, 1.5, 1.5)), 0–15 % of mentions that are
not about the brand at all, and a size log-uniform from 300 to 30,000 mentions. Every
tweet is scored once by the real hybrid scorer (VADER, the shipped router and the int8
transformer, at the default settings) and gets the real sampler's inclusion probability
for its verdict; each replication draws which mentions are sampled, and the analysts are
simulated by the true labels of the sampled ones (a wrong brand match is labelled
``irrelevant``). The labels of all the replication's brands form the pool the
estimator borrows the scorer's confusion from.

Printed: the coverage of the 95 % intervals (net sentiment, each share, the number of
mentions truly about the brand; goal ≥ 93 %), the mean absolute error of the adjusted and
of the raw net sentiment (the raw one as the API shows it: the rollups, which already
carry the analysts' labels of the labelled mentions), the interval width by the number
of labels behind it, and how often the figure was withheld (too few labels).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from services.core.accuracy import LabelledItem
from services.core.adjusted import (
    CLASSES,
    IRRELEVANT,
    MIN_LOCAL_LABELS,
    PRIOR_LABELS,
    SENTIMENTS,
    Adjusted,
    LabelledMention,
    adjust,
    automated_counts,
    pool_of,
)
from services.scorer.lexicon import VaderScorer, lexicon_sentiment
from services.scorer.routing import FeatureRouter, routing_thresholds
from services.scorer.sampling import (
    SamplingPolicy,
    inclusion_probability,
    neyman_lifts,
    sampling_policy,
)
from services.scorer.settings import ScorerSettings
from services.scorer.steps.lexicon import prepare_text
from services.scorer.training.data import read_tweeteval
from services.scorer.transformer import transformer_from_settings
from tests.bench.shared_data import shared_data_dir

# TweetEval's label ids → Sentimon's labels.
TRUE = {0: "negative", 1: "neutral", 2: "positive"}


@dataclass(frozen=True, slots=True)
class Scored:
    """The corpus as the service sees it: true class, automated label, inclusion probability."""

    truth: NDArray[np.int64]  # index into SENTIMENTS
    auto: NDArray[np.int64]  # index into SENTIMENTS
    p: NDArray[np.float64]


def score_corpus(neyman: bool = False) -> tuple[Scored, str]:
    """Score TweetEval test with the service's hybrid scorer and sampler, once. With
    ``neyman``, the sampler's label lifts are first set as ``sentimon calibrate`` sets
    them, from the labels of a pilot sample drawn at the default rates."""
    data = read_tweeteval(shared_data_dir() / "tweeteval", "test")
    settings = ScorerSettings()
    transformer = transformer_from_settings(settings)
    router = FeatureRouter(routing_thresholds(settings)) if transformer is not None else None
    policy = sampling_policy(settings, router.thresholds if router is not None else None)
    vader = VaderScorer()
    texts = [prepare_text(t, (), settings.max_score_chars)[0] for t in data.texts]
    verdicts = [lexicon_sentiment(vader.compound(t)) for t in texts]
    routed = (
        []
        if router is None
        else [i for i, t in enumerate(texts) if router.route(t, verdicts[i]) != "lexicon"]
    )
    if transformer is not None and routed:
        better = transformer.score_batch([texts[i] for i in routed])
        for i, s in zip(routed, better, strict=True):
            verdicts[i] = s.model_copy(update={"lexicon_compound": verdicts[i].lexicon_compound})
    index = {c: i for i, c in enumerate(SENTIMENTS)}

    def probabilities(policy: SamplingPolicy) -> NDArray[np.float64]:
        return np.array(
            [inclusion_probability(policy, v, "x", t) for v, t in zip(verdicts, texts, strict=True)]
        )

    p = probabilities(policy)
    note = ""
    if neyman:
        rng = np.random.default_rng(7)
        pilot = [
            LabelledItem("b", "x", v.method, v.label, 1 / p[i], (TRUE[data.labels[i]],))
            for i, v in enumerate(verdicts)
            if rng.random() < p[i]
        ]
        lifts, _ = neyman_lifts(pilot, settings.spot_check_lifts)
        policy = replace(policy, lifts=tuple(sorted(lifts.items())))
        p = probabilities(policy)
        labels = {k: v for k, v in lifts.items() if k.startswith("label:")}
        note = f"; Neyman lifts from a pilot of {len(pilot)} labels: {labels}"
    scored = Scored(
        truth=np.array([index[TRUE[y]] for y in data.labels]),
        auto=np.array([index[v.label] for v in verdicts]),
        p=p,
    )
    mode = "hybrid" if transformer is not None else "lexicon (no model found)"
    return scored, f"{mode}, {len(routed) / len(texts):.0%} routed to the transformer{note}"


@dataclass(slots=True)
class Brand:
    truth: NDArray[np.int64]  # index into CLASSES (3 = irrelevant)
    auto: NDArray[np.int64]
    sampled: NDArray[np.bool_]
    p: NDArray[np.float64]

    def labels(self) -> list[LabelledMention]:
        idx = np.flatnonzero(self.sampled)
        return [
            LabelledMention(SENTIMENTS[self.auto[i]], CLASSES[self.truth[i]], 1.0 / self.p[i])
            for i in idx
        ]

    def raw_counts(self) -> dict[str, int]:
        """What the rollups hold: the automated label, or the analyst's where labelled."""
        shown = np.where(self.sampled, self.truth, self.auto)
        return {c: int((shown == i).sum()) for i, c in enumerate(SENTIMENTS)}


def make_brand(
    corpus: Scored, by_class: list[NDArray[np.int64]], rng: np.random.Generator
) -> Brand:
    size = int(np.exp(rng.uniform(np.log(300), np.log(30_000))))
    mix = rng.dirichlet([1.5, 1.5, 1.5])
    off = rng.uniform(0.0, 0.15)
    n_off = rng.binomial(size, off)
    counts = rng.multinomial(size - n_off, mix)
    picks = [rng.choice(by_class[c], n) for c, n in enumerate(counts)]
    picks.append(rng.integers(0, len(corpus.truth), n_off))
    rows = np.concatenate(picks)
    truth = np.concatenate([np.full(n, c) for c, n in enumerate(counts)] + [np.full(n_off, 3)])
    p = corpus.p[rows]
    return Brand(truth=truth, auto=corpus.auto[rows], sampled=rng.random(len(rows)) < p, p=p)


def net(pos: float, neg: float) -> float | None:
    return None if pos + neg == 0 else (pos - neg) / (pos + neg)


def run(args: argparse.Namespace, corpus: Scored) -> None:
    rng = np.random.default_rng(args.seed)
    by_class = [np.flatnonzero(corpus.truth == c) for c in range(len(SENTIMENTS))]
    covered: dict[str, list[bool]] = defaultdict(list)
    err_adj: list[float] = []
    err_raw: list[float] = []
    widths: dict[str, list[float]] = defaultdict(list)
    withheld = 0
    estimates = 0
    t0 = time.perf_counter()
    for rep in range(args.replications):
        brands = [make_brand(corpus, by_class, rng) for _ in range(args.brands)]
        pool = pool_of(m for b in brands for m in b.labels())
        for k, b in enumerate(brands):
            labels = b.labels()
            result = adjust(
                automated_counts(b.raw_counts(), labels),
                labels,
                pool,
                key=f"{rep}/{k}",
                prior_labels=args.prior_labels,
                min_local=args.min_local,
            )
            estimates += 1
            if not isinstance(result, Adjusted):
                withheld += 1
                continue
            true = np.bincount(b.truth, minlength=4)
            relevant = int(true[:3].sum())
            truth_net = net(true[0], true[2])
            raw = b.raw_counts()
            raw_net = net(raw["positive"], raw["negative"])
            covered["mentions"].append(
                result.mentions.ci95[0] <= relevant <= result.mentions.ci95[1]
            )
            for i, c in enumerate(SENTIMENTS):
                f = result.shares[c]
                covered[c].append(f.ci95[0] <= true[i] / relevant <= f.ci95[1])
            if result.net_sentiment is not None and truth_net is not None and raw_net is not None:
                f = result.net_sentiment
                covered["net_sentiment"].append(f.ci95[0] <= truth_net <= f.ci95[1])
                err_adj.append(abs(f.value - truth_net))
                err_raw.append(abs(raw_net - truth_net))
                widths[_bin(result.labels)].append(f.ci95[1] - f.ci95[0])
    seconds = time.perf_counter() - t0
    print(
        f"{args.replications} replications × {args.brands} brands = {estimates} brand figures; "
        f"prior worth {args.prior_labels:g} labels, at least {args.min_local} labels per figure; "
        f"{seconds:.1f} s ({seconds / estimates * 1000:.1f} ms per figure)"
    )
    print(f"withheld (too few labels): {withheld} of {estimates} ({withheld / estimates:.1%})")
    print("coverage of the 95 % intervals (goal ≥ 93 %):")
    for name in ("net_sentiment", *SENTIMENTS, "mentions"):
        hits = covered[name]
        print(f"  {name:<14} {np.mean(hits):6.1%}  (n = {len(hits)})")
    print(
        f"net sentiment, mean absolute error: adjusted {np.mean(err_adj):.3f}, "
        f"raw {np.mean(err_raw):.3f}"
    )
    print("net sentiment, interval width (median) by labels behind the figure:")
    for name in sorted(widths, key=_bin_order):
        w = widths[name]
        print(f"  {name:<10} {np.median(w):.3f}  (n = {len(w)})")


_BINS = ((10, 20), (20, 50), (50, 100), (100, 200), (200, 10**9))


def _bin(n: int) -> str:
    for lo, hi in _BINS:
        if lo <= n < hi:
            return f"{lo}–{hi - 1}" if hi < 10**9 else f"{lo}+"
    return f"<{_BINS[0][0]}"


def _bin_order(name: str) -> int:
    digits = "".join(ch for ch in name.split("–")[0] if ch.isdigit())
    return int(digits) if digits else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=200)
    parser.add_argument("--brands", type=int, default=5)
    parser.add_argument("--prior-labels", type=float, default=PRIOR_LABELS)
    parser.add_argument("--min-local", type=int, default=MIN_LOCAL_LABELS)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--neyman", action="store_true", help="label lifts by Neyman allocation (a pilot's labels)"
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    corpus, mode = score_corpus(args.neyman)
    print(
        f"== Adjusted sentiment: TweetEval test ({len(corpus.truth)} tweets) scored by the "
        f"{mode} in {time.perf_counter() - t0:.0f} s; mean inclusion probability "
        f"{corpus.p.mean():.3f}"
    )
    run(args, corpus)
    _ = IRRELEVANT


if __name__ == "__main__":
    main()
