"""Throughput of BrandMatcher against a naive regex-per-brand loop, on real tweets.

Run: ``.venv/bin/python tests/bench/bench_matcher.py [--texts PATH] [--count N]``.

For 10, 100 and 1000 generated brands (queries built from the tweets' own vocabulary,
so that brands do match), it times ``BrandMatcher.match`` and a baseline measured in the
same run on the same mentions: for every mention, one compiled regex per brand (a plain
alternation of the brand's terms, the cheapest regex that can rule a brand out) and,
only when that finds something, one exact regex per term of the brand to evaluate its
query and collect the spans to mask. It prints mentions per second for both, their
ratio, and on how many mentions both found the same brands (the baseline implements
the same matching rules, so they should all agree).
"""

from __future__ import annotations

import argparse
import itertools
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from services.core.brands import BrandDefinition, BrandMatcher, parse_query
from services.core.brands.query import Not, QueryNode, Term, evaluate, positive_terms
from tests.bench.shared_data import shared_data_dir

DEFAULT_TEXTS = shared_data_dir() / "tweeteval" / "test_text.txt"
DEFAULT_COUNT = 3000
BRAND_COUNTS = (10, 100, 1000)
SEED = 7
ROUNDS = 3

_WORD = re.compile(r"\w+")
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_KEYWORDS = frozenset({"and", "or", "not"})
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class Vocabulary:
    words: list[str]
    bigrams: list[str]
    hashtags: list[str]


def load_texts(path: Path, count: int) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        texts = [line.rstrip("\n") for line in lines if line.strip()]
    return texts[:count]


def vocabulary(texts: Sequence[str]) -> Vocabulary:
    """Mid-frequency words, repeated word pairs and hashtags of the texts."""
    word_counts: Counter[str] = Counter()
    bigram_counts: Counter[str] = Counter()
    hashtag_counts: Counter[str] = Counter()
    for text in texts:
        words = [word.casefold() for word in _WORD.findall(text)]
        word_counts.update(
            word for word in words if word.isalpha() and len(word) >= 4 and word not in _KEYWORDS
        )
        bigram_counts.update(
            f"{first} {second}"
            for first, second in itertools.pairwise(words)
            if first.isalpha() and second.isalpha()
        )
        hashtag_counts.update(tag.casefold() for tag in _HASHTAG.findall(text))
    # The most frequent words are not brand names ("that", "people"); skip them.
    return Vocabulary(
        words=[word for word, _ in word_counts.most_common(4000)[150:]],
        bigrams=[pair for pair, count in bigram_counts.most_common(2000)[200:] if count >= 2],
        hashtags=[tag for tag, _ in hashtag_counts.most_common(1000)],
    )


def make_brands(count: int, vocab: Vocabulary, rng: random.Random) -> list[BrandDefinition]:
    def word() -> str:
        return rng.choice(vocab.words)

    shapes: list[Callable[[], str]] = [
        word,
        lambda: f"{word()} OR {rng.choice(vocab.hashtags)}",
        lambda: f'"{rng.choice(vocab.bigrams)}" OR @{word()}',
        lambda: f"({word()} OR {word()}) AND NOT {word()}",
        lambda: f"{word()} {word()}",
        lambda: (
            f'{word()} OR "{rng.choice(vocab.bigrams)}" OR {rng.choice(vocab.hashtags)}'
            f" OR @{word()}"
        ),
    ]
    return [BrandDefinition(f"brand{index}", rng.choice(shapes)()) for index in range(count)]


@dataclass(frozen=True)
class _NaiveBrand:
    name: str
    node: QueryNode
    any_term: re.Pattern[str]
    terms: dict[Term, re.Pattern[str]]
    positive: frozenset[Term]


class NaiveMatcher:
    """The baseline: one compiled regex per brand per mention, the same matching rules."""

    def __init__(self, brands: Sequence[BrandDefinition]) -> None:
        self._brands: list[_NaiveBrand] = []
        for brand in brands:
            node = parse_query(brand.query)
            terms = {term: re.compile(_term_pattern(term)) for term in _all_terms(node)}
            # Without the boundary guards: a lookbehind in front of every alternative makes
            # the regex several times slower, and this one only has to rule the brand out.
            any_term = re.compile("|".join(_term_body(term) for term in terms))
            self._brands.append(
                _NaiveBrand(brand.name, node, any_term, terms, positive_terms(node))
            )

    def match(self, text: str) -> tuple[tuple[str, ...], list[tuple[int, int]]]:
        folded = text.casefold()
        names: list[str] = []
        spans: list[tuple[int, int]] = []
        for brand in self._brands:
            if brand.any_term.search(folded) is None:
                continue
            present = {term for term, pattern in brand.terms.items() if pattern.search(folded)}
            if evaluate(brand.node, present.__contains__):
                names.append(brand.name)
            for term in brand.positive & present:
                spans.extend(match.span() for match in brand.terms[term].finditer(folded))
        spans.sort()
        return tuple(names), spans


def _term_body(term: Term) -> str:
    folded = term.text.casefold()
    if term.kind == "phrase":
        return r"\s+".join(re.escape(part) for part in folded.split())
    return re.escape(folded)


def _term_pattern(term: Term) -> str:
    folded = term.text.casefold()
    body = _term_body(term)
    if term.kind in ("word", "phrase") and (folded[0].isalnum() or folded[0] == "_"):
        # Not inside a handle or hashtag.
        return rf"(?<!\w)(?<!(?<!\w)[@#]){body}(?!\w)"
    return rf"(?<!\w){body}(?!\w)"


def _all_terms(node: QueryNode) -> list[Term]:
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return _all_terms(node.child)
    return [term for child in node.children for term in _all_terms(child)]


def _timed(match: Callable[[str], _Result], texts: Sequence[str]) -> tuple[float, list[_Result]]:
    """Mentions per second (the best of ``ROUNDS``: other load on the machine only ever
    slows a round down), and the results of the last round, to compare."""
    best = 0.0
    results: list[_Result] = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        results = [match(text) for text in texts]
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="one text per line")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="texts to use")
    args = parser.parse_args()
    texts = load_texts(args.texts, args.count)
    vocab = vocabulary(load_texts(args.texts, 1_000_000))
    rng = random.Random(SEED)
    print(f"{len(texts)} mentions from {args.texts}")
    print(
        f"{'brands':>6}  {'compile ms':>10}  {'matcher /s':>11}  {'baseline /s':>11}  "
        f"{'ratio':>7}  {'matched':>7}  {'agree':>11}"
    )
    for count in BRAND_COUNTS:
        brands = make_brands(count, vocab, rng)
        started = time.perf_counter()
        matcher = BrandMatcher.compile(brands)
        compile_ms = (time.perf_counter() - started) * 1000
        naive = NaiveMatcher(brands)
        fast_rate, fast_results = _timed(matcher.match, texts)
        naive_rate, naive_results = _timed(naive.match, texts)
        agree = sum(
            fast.brands == slow[0] for fast, slow in zip(fast_results, naive_results, strict=True)
        )
        matched = sum(bool(fast.brands) for fast in fast_results)
        print(
            f"{count:>6}  {compile_ms:>10.1f}  {fast_rate:>11,.0f}  {naive_rate:>11,.0f}  "
            f"{fast_rate / naive_rate:>6.1f}x  {matched:>7}  {agree:>5}/{len(texts):<5}"
        )


if __name__ == "__main__":
    main()
