"""Stories: how fast near-duplicate texts are found, and how completely, by the shipped
prefix filter and sparse pair product and by MinHash LSH (``datasketch``), against every
pair compared one by one (``services.core.stories``).

Run: ``make bench`` (or ``.venv/bin/python -m tests.bench.bench_stories``). Options:
``--tweets`` (default 4,000 TweetEval test tweets), ``--stories`` (60 crafted syndicated
stories), ``--seed``.

The sample: real tweets (TweetEval test: varied texts, some true near-duplicates of their
own) plus crafted syndication: each story is a real tweet copied 2–12 times with the
edits syndication makes (another link, "RT @x:", "via @y", a hashtag, a word changed or
dropped, the case changed). Four ways of finding the pairs at Jaccard ≥ 0.5 of character
5-gram sets, timed in the same run:

* exact: every pair compared in Python (the reference, quadratic);
* lsh-estimate: datasketch's LSH at 0.5, each candidate kept if its MinHash estimate is ≥ 0.5
  (datasketch alone);
* lsh-exact: LSH banded for 0.3, each candidate confirmed with the exact Jaccard (shipped
  until 2026-12-05);
* prefix filter + sparse (shipped): candidate pairs from the product of each text's rarest
  shingles, each confirmed with its whole overlap, exact (until 2026-12-05 every pair's
  overlap from one product, also exact).

Then the same at the executive report's sample size (its first ``REPORT_SAMPLE`` texts).

Printed per method: pair recall and precision against exact, crafted stories kept whole
(all copies in one cluster; TweetEval's own copies of a tweet may join it), seconds and
the speed-up over exact; then the shipped path alone on all 12,284 tweets.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence

from datasketch import MinHash, MinHashLSH

from services.core import stories
from tests.bench.shared_data import tweeteval_test_texts

Pairs = set[tuple[int, int]]


def syndicate(text: str, rng: random.Random, copies: int) -> list[str]:
    """``copies`` syndicated variants of ``text``."""
    out = []
    for k in range(copies):
        words = text.split()
        edit = rng.randrange(6)
        if edit == 0 and len(words) > 6:
            words[rng.randrange(len(words))] = rng.choice(["really", "now", "again", "today"])
        elif edit == 1 and len(words) > 6:
            del words[rng.randrange(len(words))]
        elif edit == 2:
            words.append(f"#{rng.choice(['news', 'breaking', 'tech'])}")
        elif edit == 3:
            words = [w.upper() if rng.random() < 0.2 else w for w in words]
        t = " ".join(words)
        wrap = rng.randrange(4)
        if wrap == 0:
            t = f"RT @outlet{k}: {t}"
        elif wrap == 1:
            t = f"{t} via @agency{k}"
        t = f"{t} https://t.co/{rng.getrandbits(40):x}" if rng.random() < 0.7 else t
        out.append(t)
    return out


LSH_PERM = 128
LSH_CANDIDATES = 0.3  # 37 bands of 3 rows: a pair at 0.5 is a candidate 99.3 % of the time
REPORT_SAMPLE = 2_000  # the executive report clusters at most this many mentions


def lsh_estimate(sets: Sequence[frozenset[str]]) -> Pairs:
    lsh = MinHashLSH(threshold=stories.THRESHOLD, num_perm=LSH_PERM)
    present = [i for i, s in enumerate(sets) if s]
    hashes = MinHash.bulk([[x.encode() for x in sets[i]] for i in present], num_perm=LSH_PERM)
    by_key = dict(zip(present, hashes, strict=True))
    for i, h in by_key.items():
        lsh.insert(i, h)
    return {
        (i, j)
        for i, h in by_key.items()
        for j in lsh.query(h)
        if j > i and h.jaccard(by_key[j]) >= stories.THRESHOLD
    }


def lsh_exact(sets: Sequence[frozenset[str]]) -> Pairs:
    lsh = MinHashLSH(threshold=LSH_CANDIDATES, num_perm=LSH_PERM)
    present = [i for i, s in enumerate(sets) if s]
    hashes = MinHash.bulk([[x.encode() for x in sets[i]] for i in present], num_perm=LSH_PERM)
    for i, h in zip(present, hashes, strict=True):
        lsh.insert(i, h)
    return {
        (i, j)
        for i, h in zip(present, hashes, strict=True)
        for j in lsh.query(h)
        if j > i and stories.jaccard(sets[i], sets[j]) >= stories.THRESHOLD
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tweets", type=int, default=4_000)
    ap.add_argument("--stories", type=int, default=60)
    ap.add_argument("--seed", type=int, default=17)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tweets = tweeteval_test_texts()
    texts = rng.sample(tweets, args.tweets)
    crafted: list[set[int]] = []
    for base in rng.sample(tweets, args.stories):
        if len(stories.reduce_text(base)) < 60:  # a story long enough to be syndicated
            continue
        copies = syndicate(base, rng, rng.randint(2, 12))
        crafted.append(set(range(len(texts), len(texts) + len(copies) + 1)))
        texts += [base, *copies]
    order = list(range(len(texts)))
    rng.shuffle(order)
    where = {old: new for new, old in enumerate(order)}
    texts = [texts[i] for i in order]
    crafted = [{where[i] for i in g} for g in crafted]

    t0 = time.perf_counter()
    sets = [stories.shingles(t) for t in texts]
    shingle_s = time.perf_counter() - t0
    methods: list[tuple[str, Callable[[Sequence[frozenset[str]]], Pairs]]] = [
        ("exact (all pairs)", stories.exact_pairs),
        ("lsh-estimate (datasketch at 0.5)", lsh_estimate),
        ("lsh-exact (LSH for 0.3, checked)", lsh_exact),
        ("prefix filter + sparse (shipped)", stories.near_duplicate_pairs),
    ]
    found: dict[str, tuple[Pairs, float]] = {}
    for name, fn in methods:
        t0 = time.perf_counter()
        pairs = fn(sets)
        found[name] = (pairs, time.perf_counter() - t0 + shingle_s)
    truth, exact_s = found[methods[0][0]]
    print(
        f"{len(texts):,} texts ({args.tweets:,} tweets + {len(crafted)} crafted stories, "
        f"{sum(len(g) for g in crafted):,} texts); {len(truth):,} pairs at Jaccard ≥ "
        f"{stories.THRESHOLD} of {stories.SHINGLE}-gram sets"
    )
    head = ("method", "recall", "precision", "stories whole", "s", "speed-up")
    print("{:34} {:>7} {:>9} {:>13} {:>7} {:>8}".format(*head))
    for name, _ in methods:
        pairs, secs = found[name]
        hit = len(pairs & truth)
        recall = hit / len(truth) if truth else 1.0
        precision = hit / len(pairs) if pairs else 1.0
        groups = [set(g) for g in stories.components(len(texts), pairs)]
        whole = sum(1 for g in crafted if any(g <= c for c in groups))
        print(
            f"{name:34} {recall:7.4f} {precision:9.4f} {whole:>6}/{len(crafted):<6} "
            f"{secs:7.2f} {exact_s / secs:7.1f}×"
        )
    head_sets = sets[:REPORT_SAMPLE]
    timings = []
    for name, fn in methods[2:]:
        t0 = time.perf_counter()
        fn(head_sets)
        timings.append(f"{name} {time.perf_counter() - t0:.3f} s")
    print(f"pairs among the first {len(head_sets):,} texts (shingles aside): " + ", ".join(timings))
    t0 = time.perf_counter()
    found_all = stories.clusters(tweets)
    secs = time.perf_counter() - t0
    print(
        f"shipped path on all {len(tweets):,} TweetEval tweets: {secs:.2f} s "
        f"({len(tweets) / secs:,.0f} texts/s), largest cluster {len(found_all[0])}"
    )


if __name__ == "__main__":
    main()
