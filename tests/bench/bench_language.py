"""Language identification candidates compared on tweet-length text: accuracy and speed.

Run: ``make bench`` (or ``.venv/bin/python -m tests.bench.bench_language``). The candidates
that are installed are measured (``pip install lingua-language-detector langdetect`` into
the venv to compare them with the shipped py3langid); each sees the text as the scorer
would give it (``detection_text``: handles and links removed).

- **English tweets called non-English** (what matters most: such a mention goes unscored)
  on the 12,284 English tweets of TweetEval test, at the top guess and under the rule the
  scorer uses: another language only when P(English) < ``MAX_SCORABLE_PROBABILITY``.
- **Other languages**: short texts from the Debian ``fortunes-de``, ``fortunes-es``,
  ``fortunes-it``, ``fortunes-br`` (Brazilian Portuguese), ``fortunes-pl`` and
  ``fortunes-ru`` packages (``apt-get install …``; a language whose files are missing is
  skipped): quotations and jokes of 20–280 characters, attribution lines removed, up to
  300 per language, chosen with a fixed seed. They are labelled by the package they come
  from, not tweets, and contain the odd quotation in another language; read them as the
  accuracy on clear short sentences, not on tweets. Reported: the share identified
  correctly, and the share called English (those would be scored by the English lexicon).
- **Speed**: texts per second, one at a time in one process, on the TweetEval tweets.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.scorer.language import MAX_SCORABLE_PROBABILITY, LanguageDetector, detection_text
from tests.bench.shared_data import shared_data_dir

FORTUNES = Path("/usr/share/games/fortunes")
# Which Debian fortunes folder (or top-level file) holds which language (ISO 639-1).
FORTUNE_LANGUAGES = {"de": "de", "es": "es", "it": "it", "pt": "brasil", "pl": "pl", "ru": "ru"}
PER_LANGUAGE = 300
_ATTRIBUTION = re.compile(r"^\s*(--|—|~)")

# The top language (ISO 639-1), its probability, and the probability of English.
Guess = tuple[str | None, float, float]


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    version: str
    detect: Callable[[str], Guess]
    load_seconds: float


def tweeteval_english(split: str = "test") -> list[str]:
    path = shared_data_dir() / "tweeteval" / f"{split}_text.txt"
    return path.read_text(encoding="utf-8").splitlines()


def fortune_texts(entry: Path) -> list[str]:
    files = [entry] if entry.is_file() else sorted(entry.iterdir())
    out: list[str] = []
    for f in files:
        if f.suffix in {".dat", ".u8"} or f.is_symlink() or not f.is_file():
            continue
        try:
            body = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for item in body.split("\n%\n"):
            lines = [ln for ln in item.splitlines() if not _ATTRIBUTION.match(ln)]
            text = " ".join(" ".join(lines).split())
            letters = sum(ch.isalpha() for ch in text)
            if 20 <= len(text) <= 280 and letters >= 0.7 * len(text.replace(" ", "")):
                out.append(text)
    return out


def multilingual(seed: int = 15) -> dict[str, list[str]]:
    sets: dict[str, list[str]] = {}
    for lang, name in FORTUNE_LANGUAGES.items():
        entry = FORTUNES / name
        if not entry.exists():
            continue
        texts = sorted(set(fortune_texts(entry)))
        random.Random(f"{seed}:{lang}").shuffle(texts)
        sets[lang] = texts[:PER_LANGUAGE]
    return sets


def py3langid_candidate() -> Candidate:
    from importlib.metadata import version

    t0 = time.perf_counter()
    detector = LanguageDetector.load()

    def detect(text: str) -> Guess:
        ranked = detector.identifier.rank(detection_text(text))
        probabilities = dict(ranked)
        return ranked[0][0], ranked[0][1], probabilities.get("en", 0.0)

    return Candidate("py3langid", version("py3langid"), detect, time.perf_counter() - t0)


def lingua_candidate(*, low_accuracy: bool) -> Candidate | None:
    try:
        from lingua import Language, LanguageDetectorBuilder
    except ImportError:
        return None
    from importlib.metadata import version

    t0 = time.perf_counter()
    builder = LanguageDetectorBuilder.from_all_languages()
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    detector = builder.with_preloaded_language_models().build()

    def detect(text: str) -> Guess:
        values = detector.compute_language_confidence_values(detection_text(text))
        if not values or values[0].value == 0:
            return None, 0.0, 0.0
        english = next((v.value for v in values if v.language == Language.ENGLISH), 0.0)
        top = values[0]
        return top.language.iso_code_639_1.name.lower(), float(top.value), float(english)

    name = "lingua (low accuracy)" if low_accuracy else "lingua"
    return Candidate(name, version("lingua-language-detector"), detect, time.perf_counter() - t0)


def langdetect_candidate() -> Candidate | None:
    try:
        from langdetect import DetectorFactory, LangDetectException, detect_langs
    except ImportError:
        return None
    from importlib.metadata import version

    t0 = time.perf_counter()
    DetectorFactory.seed = 0
    detect_langs("warm up the profiles")

    def detect(text: str) -> Guess:
        try:
            found = detect_langs(detection_text(text))
        except LangDetectException:
            return None, 0.0, 0.0
        english = next((float(x.prob) for x in found if x.lang == "en"), 0.0)
        return str(found[0].lang).split("-")[0], float(found[0].prob), english

    return Candidate("langdetect", version("langdetect"), detect, time.perf_counter() - t0)


def candidates() -> list[Candidate]:
    found = [
        py3langid_candidate(),
        lingua_candidate(low_accuracy=False),
        lingua_candidate(low_accuracy=True),
        langdetect_candidate(),
    ]
    return [c for c in found if c is not None]


def measure(
    candidate: Candidate, english: Sequence[str], others: dict[str, list[str]], epsilon: float
) -> dict[str, str]:
    t0 = time.perf_counter()
    guesses = [candidate.detect(t) for t in english]
    per_second = len(english) / (time.perf_counter() - t0)
    row = {
        "library": f"{candidate.name} {candidate.version}",
        "en→other (top)": f"{sum(g[0] != 'en' for g in guesses) / len(english):.2%}",
        f"en→other (P(en)<{epsilon})": f"{sum(g[2] < epsilon for g in guesses) / len(english):.2%}",
    }
    right = ruled = called_en = total = 0
    for lang, texts in others.items():
        g = [candidate.detect(t) for t in texts]
        ok = sum(x[0] == lang for x in g)
        row[lang] = f"{ok / len(texts):.0%}"
        right += ok
        ruled += sum(x[0] == lang and x[2] < epsilon for x in g)
        called_en += sum(x[0] == "en" for x in g)
        total += len(texts)
    if total:
        row["others ok (top)"] = f"{right / total:.1%}"
        row["others→en (top)"] = f"{called_en / total:.1%}"
        row[f"others ok (P(en)<{epsilon})"] = f"{ruled / total:.1%}"
    row["texts/s"] = f"{per_second:,.0f}"
    row["load s"] = f"{candidate.load_seconds:.1f}"
    return row


def bench_scorer_rule(english: Sequence[str]) -> None:
    """What the scorer calls per mention (``LanguageDetector.detect``), for its speed."""
    detector = LanguageDetector.load()
    t0 = time.perf_counter()
    found = [detector.detect(t) for t in english]
    elapsed = time.perf_counter() - t0
    print(
        f"\nSentimon's rule (LanguageDetector.detect, py3langid): {len(english) / elapsed:,.0f}"
        f" texts/s ({elapsed / len(english) * 1e6:.0f} µs each); English tweets taken for "
        f"another language: {sum(c not in (None, 'en') for c in found) / len(english):.2%}, "
        f"undetermined: {sum(c is None for c in found) / len(english):.2%}"
    )


def threshold_sweep(english: Sequence[str], others: dict[str, list[str]]) -> None:
    """py3langid's trade-off, on TweetEval **val** (where the threshold is chosen):
    English tweets taken for another language against other-language texts recognised,
    when another language is believed only if P(en) < threshold."""
    detector = LanguageDetector.load()

    def english_probability(text: str) -> float:
        return dict(detector.identifier.rank(detection_text(text))).get("en", 0.0)

    en = [english_probability(t) for t in english]
    rest = [english_probability(t) for ts in others.values() for t in ts]
    print(
        f"\npy3langid: another language believed when P(en) < threshold (TweetEval val, {len(en)})"
    )
    print("| threshold | English tweets taken for another language | other languages recognised |")
    print("| --- | --- | --- |")
    for threshold in (0.001, 0.005, 0.01, 0.02, 0.05, 0.1):
        wrong = sum(p < threshold for p in en) / len(en)
        ok = sum(p < threshold for p in rest) / max(1, len(rest))
        print(f"| {threshold} | {wrong:.2%} | {ok:.1%} |")


def print_table(rows: Sequence[dict[str, str]]) -> None:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join(" --- " for _ in columns) + "|")
    for r in rows:
        print("| " + " | ".join(r.get(c, "") for c in columns) + " |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="English tweets to use (0: all)")
    args = parser.parse_args(argv)
    english = tweeteval_english()
    if args.limit:
        english = english[: args.limit]
    others = multilingual()
    sizes = ", ".join(f"{lang} {len(t)}" for lang, t in others.items()) or "none installed"
    print(f"English tweets (TweetEval test): {len(english)}; other languages (fortunes): {sizes}")
    epsilon = MAX_SCORABLE_PROBABILITY
    print_table([measure(c, english, others, epsilon) for c in candidates()])
    bench_scorer_rule(english)
    threshold_sweep(tweeteval_english("val"), others)


if __name__ == "__main__":
    main()
