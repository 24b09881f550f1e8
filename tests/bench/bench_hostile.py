"""What the scorer's bounds buy against hostile input, in one run (issue 14 §2).

Run: ``make bench`` (or ``.venv/bin/python -m tests.bench.bench_hostile``).

vaderSentiment's cost grows with (words carrying sentiment) x (all words): some of its
rules rebuild the word list for each sentiment word, its "but" rule looks values up in a
loop, and each emoji becomes the words of its description. The scorer caps a text's
length (``max_score_chars``), scores it with ``FastVader`` (vaderSentiment's scores, in
linear time: ``services/scorer/vader.py``) and drops emoji past 20 in a run or 40 in a
text (``services/scorer/lexicon.py``). The baseline is a typical tweet (TweetEval test)
scored the same way; each figure is the CPU time of one scoring of one text, so that
other work on the machine weighs less; the goal is no mention above ~20x the baseline.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.scorer.lexicon import VaderScorer
from services.scorer.mask import cap_text
from tests.bench.shared_data import tweeteval_test_texts

MAX_CHARS = 2_000  # ScorerSettings.max_score_chars default


def _every_emoji() -> str:
    emojis = SentimentIntensityAnalyzer().emojis
    return "".join(sorted(e for e in emojis if len(e) == 1))


SHAPES = {
    "'good but bad but …'": "good but bad but " * 700,
    "2,000 emoji, one kind": "😀" * 2000,
    "2,000 emoji, alternating": "😀😃" * 1000,
    "2,000 emoji, every kind": _every_emoji() * 2,
    "emoji and spaces": "😀 😃 " * 1000,
    "emoji among words": "love 😍 hate 😡 " * 700,
    "emoji glued to words": "good😀bad😡" * 1000,
    "one word repeated": "good " * 2000,
    "capitals": "GREAT " * 2000,
    "capitals among words": "GREAT good " * 1000,
    "boosters then a word": "very " * 2000 + "good",
    "negations": "not " * 2400 + "good",
    "'no' before words": "no good " * 1000,
    "contractions": "isn't good " * 1000,
    "idioms": "yeah right the shit kind of bad ass " * 300,
    "'but' alone": "but " * 2500,
    "emoticons": ":) :( " * 1000,
    "words in punctuation": "!!good!! ..bad.. " * 600,
    "repeated '!'": "great" + "!" * 9990,
    "'!?' pairs": "great" + "!?" * 5000,
    "one 10,000-char word": "a" * 10_000,
    "one-letter words": "a " * 5000,
    "dotted capital I (per-word path)": "İyi good " * 1000,
    "capital sigma (per-word path)": "ΟΔΟΣ good " * 1000,
}


def per_call(score: Callable[[str], object], text: str, budget_s: float = 0.5) -> float:
    """CPU seconds of one call, the mean over as many calls as fit in ``budget_s``."""
    n, t0 = 0, time.process_time()
    while True:
        score(text)
        n += 1
        elapsed = time.process_time() - t0
        if elapsed > budget_s or n >= 200:
            return elapsed / n


def typical(score: Callable[[str], object], tweets: list[str]) -> float:
    for t in tweets:  # warm
        score(t)
    t0 = time.process_time()
    for t in tweets:
        score(t)
    return (time.process_time() - t0) / len(tweets)


def main() -> None:
    vader = SentimentIntensityAnalyzer()
    scorer = VaderScorer()
    tweets = tweeteval_test_texts()[:2000]
    base = typical(scorer.compound, tweets)
    base_vader = typical(vader.polarity_scores, tweets)
    print("hostile input benchmark: one text of each shape, 10,000 characters before the cap")
    print(f"  typical tweet, Sentimon (baseline)   {base * 1e3:9.4f} ms        1x")
    print(
        f"  typical tweet, vaderSentiment        {base_vader * 1e3:9.4f} ms"
        f" {base_vader / base:7.1f}x"
    )
    print(f"  {'shape':34s} {'VADER, capped':>15s} {'Sentimon':>12s} {'ratio':>8s}")
    worst, worst_name = 0.0, ""
    for name, text in SHAPES.items():
        capped = cap_text(text[:10_000], MAX_CHARS)
        raw = per_call(vader.polarity_scores, capped, 2.0)
        ours = per_call(scorer.compound, capped)
        if ours > worst:
            worst, worst_name = ours, name
        print(f"  {name:34s} {raw * 1e3:12.2f} ms {ours * 1e3:9.3f} ms {ours / base:7.1f}x")
    print(
        f"  worst case per mention: {worst * 1e3:.3f} ms ({worst_name}) = {worst / base:.1f}x"
        f" a typical mention, {worst / base_vader:.1f}x a typical tweet in vaderSentiment"
        " (goal <= ~20x)"
    )


if __name__ == "__main__":
    main()
