"""Language identification: which language a mention is written in, so that only the
languages the scorer reads are scored.

py3langid (a maintained fork of langid.py: a naive Bayes model over byte n-grams, 97
languages, shipped inside the wheel) was chosen against lingua and langdetect on
tweet-length text; ``tests/bench/bench_language.py`` and ``docs/benchmarks.md`` have the
figures. Its probabilities are normalised; a mention is taken for another language only
when English is all but ruled out (``MAX_SCORABLE_PROBABILITY``), because an English
mention taken for another language goes unscored, and short English tweets are often
guessed to be something else.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from itertools import islice
from typing import Protocol

from services.core.languages import LANGUAGE_CODES, SCORABLE_LANGUAGES, language_of_tag

# A mention is taken for another language only when the detector gives the languages the
# scorer reads less than this probability: at 0.01 no English tweet of TweetEval val
# (2,000) is, and 98 % of short texts in six other languages are
# (``tests/bench/bench_language.py``). Its top guess alone was wrong for 6 % of English
# tweets (``@user`` and slang read as other languages).
MAX_SCORABLE_PROBABILITY = 0.01

# Fewer letters than this and the detector cannot tell: "ok" came out Serbian, sure of it.
MIN_LETTERS = 12

# Detections remembered per process, by the text the detector reads (reposts and
# syndicated copies repeat it); the oldest half is forgotten when it is full.
DETECTION_CACHE_SIZE = 20_000

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@\w+")


def detection_text(text: str) -> str:
    """What the detector reads of a mention: without links and @handles (they are not
    written in any language), HTML entities decoded, ``#`` dropped from hashtags."""
    text = html.unescape(text)
    text = _URL.sub(" ", text)
    text = _HANDLE.sub(" ", text)
    return " ".join(text.replace("#", " ").split())


class _Identifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...

    def rank(self, text: str) -> list[tuple[str, float]]: ...


@dataclass(frozen=True, slots=True)
class LanguageDetector:
    """A language identifier, and the probability of a scorable language under which a
    mention is taken for another language."""

    identifier: _Identifier
    max_scorable_probability: float = MAX_SCORABLE_PROBABILITY
    scorable: frozenset[str] = SCORABLE_LANGUAGES
    _cache: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, max_scorable_probability: float = MAX_SCORABLE_PROBABILITY) -> LanguageDetector:
        """The model shipped in the py3langid wheel (read from disk, never downloaded),
        read by ``FastLangid`` (py3langid's probabilities, faster). Raises ``ValueError``
        for a probability outside (0, 1)."""
        if not 0.0 < max_scorable_probability < 1.0:
            raise ValueError(
                f"max_scorable_probability must be in (0, 1), got {max_scorable_probability}"
            )
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        from services.scorer.langid import FastLangid

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return cls(FastLangid(identifier), max_scorable_probability)

    def guess(self, text: str) -> tuple[str | None, float]:
        """The likeliest language of ``text`` as it is given and its probability;
        ``(None, 0.0)`` for text with fewer than ``MIN_LETTERS`` letters."""
        # The first MIN_LETTERS letters are enough to know (C-level filter, no count).
        if len(list(islice(filter(str.isalpha, text), MIN_LETTERS))) < MIN_LETTERS:
            return None, 0.0
        code, probability = self.identifier.classify(text)
        return (code if code in LANGUAGE_CODES else None), probability

    def detect(self, text: str) -> str | None:
        """The language of a mention's text (ISO 639-1): a scorable language when it is
        the likeliest, another when the scorable ones are all but ruled out, else
        ``None`` (the detector cannot tell; the mention is read as English)."""
        cleaned = detection_text(text)
        cache = self._cache
        if cleaned in cache:
            return cache[cleaned]
        language = self._detect(cleaned)
        if len(cache) >= DETECTION_CACHE_SIZE:
            for old in list(islice(cache, max(1, DETECTION_CACHE_SIZE // 2))):
                del cache[old]
        cache[cleaned] = language
        return language

    def _detect(self, cleaned: str) -> str | None:
        code, _ = self.guess(cleaned)
        if code is None or code in self.scorable:
            return code
        # Most mentions stop above: ranking every language costs a third more.
        scorable = sum(p for c, p in self.identifier.rank(cleaned) if c in self.scorable)
        return code if scorable < self.max_scorable_probability else None


def mention_language(tag: str | None, text: str, detector: LanguageDetector | None) -> str | None:
    """A mention's language: the source's tag when it names an ISO 639-1 language (the
    platform or the author said so), else what ``detector`` finds, else ``None``
    (unknown: read as English)."""
    return language_of_tag(tag) or (None if detector is None else detector.detect(text))
