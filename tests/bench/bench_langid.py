"""Language detection per mention: py3langid against ``FastLangid`` (its exact probabilities,
faster) and the scorer's ``LanguageDetector.detect`` (``FastLangid`` behind a cache keyed by
the text the detector reads), on the same texts, in one run; one text at a time (the
automaton walked in Python, as py3langid walks it: ``FastLangid`` as it was before batches)
and in the scorer's chunks of 250 (``classify_many``, ``detect_many``: the automaton walked
for the whole chunk in numpy).

Run: ``.venv/bin/python -m tests.bench.bench_langid [--rounds N]``.

Texts: TweetEval's test tweets, as the detector reads them (``detection_text``: handles and
links removed) for ``classify``, as they are for ``detect``. Baselines measured in the same
run: py3langid's ``classify``, and ``detect`` as it was before ``FastLangid`` (the same
answers, checked). CPU time per text (``time.process_time``), median of ``--rounds``
alternating rounds; every answer is checked equal to py3langid's on the way. ``detect`` is
measured on the tweets once each (every look-up a miss: the cache's own cost) and on
``bench_pipeline``'s stream (each tweet comes back, under another brand's handle, 12,284
mentions later; the hit rate printed is that stream's, not a real one's).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from services.core.languages import LANGUAGE_CODES, SCORABLE_LANGUAGES
from services.scorer.langid import FastLangid
from services.scorer.language import (
    MAX_SCORABLE_PROBABILITY,
    MIN_LETTERS,
    LanguageDetector,
    detection_text,
)
from services.scorer.settings import ScorerSettings
from tests.bench.bench_pipeline import build_texts
from tests.bench.shared_data import tweeteval_test_texts

T = TypeVar("T")


def per_text_us(run: Callable[[], object], n: int) -> float:
    t0 = time.process_time()
    run()
    return (time.process_time() - t0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tweets = tweeteval_test_texts()
    cleaned = [detection_text(t) for t in tweets]
    stream = build_texts(24_000)
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    fast = FastLangid(reference)
    walked = FastLangid(reference, vector_walk=False)  # as before batches
    expected = [reference.classify(t) for t in cleaned]
    assert [fast.classify(t) for t in cleaned] == expected  # warm, and exact
    assert [walked.classify(t) for t in cleaned] == expected
    assert in_chunks(fast.classify_many, cleaned) == expected

    detector = LanguageDetector.load()

    def detect_before(text: str) -> str | None:
        """``LanguageDetector.detect`` as it was: py3langid, letters counted, no cache."""
        cleaned = detection_text(text)
        if sum(ch.isalpha() for ch in cleaned) < MIN_LETTERS:
            return None
        code: str = reference.classify(cleaned)[0]
        if code not in LANGUAGE_CODES:
            return None
        if code in SCORABLE_LANGUAGES:
            return code
        english = sum(p for c, p in reference.rank(cleaned) if c in SCORABLE_LANGUAGES)
        return code if english < MAX_SCORABLE_PROBABILITY else None

    assert [detect_before(t) for t in stream] == [detector.detect(t) for t in stream]
    detector._cache.clear()
    assert in_chunks(detector.detect_many, stream) == [detect_before(t) for t in stream]

    def detect_all(texts: Sequence[str]) -> float:
        detector._cache.clear()  # the model stays loaded; only the cache starts empty
        return per_text_us(lambda: [detector.detect(t) for t in texts], len(texts))

    def detect_chunks(texts: Sequence[str]) -> float:
        detector._cache.clear()
        return per_text_us(lambda: in_chunks(detector.detect_many, texts), len(texts))

    lines: dict[str, Callable[[], float]] = {
        "py3langid classify (reference)": lambda: per_text_us(
            lambda: [reference.classify(t) for t in cleaned], len(cleaned)
        ),
        "FastLangid classify, walked (as before)": lambda: per_text_us(
            lambda: [walked.classify(t) for t in cleaned], len(cleaned)
        ),
        "FastLangid classify_many, chunks of 250": lambda: per_text_us(
            lambda: in_chunks(fast.classify_many, cleaned), len(cleaned)
        ),
        "detect as it was (py3langid, no cache)": lambda: per_text_us(
            lambda: [detect_before(t) for t in tweets], len(tweets)
        ),
        "detect, every text new (cache misses)": lambda: detect_all(tweets),
        "detect_many, every text new, chunks": lambda: detect_chunks(tweets),
        "detect, bench_pipeline's stream": lambda: detect_all(stream),
        "detect_many, the stream, chunks": lambda: detect_chunks(stream),
    }
    times: dict[str, list[float]] = {name: [] for name in lines}
    for _ in range(args.rounds):
        for name, measure in lines.items():
            times[name].append(measure())
    hits = hit_rate(stream)
    base = statistics.median(times["py3langid classify (reference)"])
    print(f"language detection, {len(tweets)} TweetEval test tweets, CPU µs per text,")
    print(f"median of {args.rounds} alternating rounds (model loading excluded)")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:42s} {med:7.1f} µs  {base / med:5.2f}x  (runs: {fmt(values)})")
    print(f"  cache hit rate on bench_pipeline's stream: {hits:.1%}")


# The scorer's chunk size (``ScorerSettings.chunk_size``'s default).
CHUNK: int = ScorerSettings.model_fields["chunk_size"].default


def in_chunks(run: Callable[[Sequence[str]], list[T]], texts: Sequence[str]) -> list[T]:
    """``run`` on ``CHUNK`` texts at a time, the answers in order."""
    return [a for start in range(0, len(texts), CHUNK) for a in run(texts[start : start + CHUNK])]


def hit_rate(texts: Sequence[str]) -> float:
    detector = LanguageDetector.load()
    detector._cache.clear()
    hits = 0
    for t in texts:
        hits += detection_text(t) in detector._cache
        detector.detect(t)
    return hits / len(texts)


def fmt(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    main()
