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
from collections.abc import Sequence
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
# An @ not preceded by a word character. Written to start with the @ itself, so that the
# regex engine jumps from one @ to the next instead of trying the look-behind at every
# character (a third of the time on a tweet).
_HANDLE = re.compile(r"@(?<!\w@)\w+")


def detection_text(text: str) -> str:
    """What the detector reads of a mention: without links and @handles (they are not
    written in any language), HTML entities decoded, ``#`` dropped from hashtags."""
    text = html.unescape(text)
    # Every link holds "://" or, in any case, "www." (only "W" and "w" match "w" under
    # IGNORECASE); looking for them is several times cheaper than the regex's scan, which
    # cannot skip ahead when it ignores case, and most mentions hold no link.
    if "://" in text or "www." in text.lower():
        text = _URL.sub(" ", text)
    text = _HANDLE.sub(" ", text)
    return " ".join(text.replace("#", " ").split())


class _Identifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...

    def classify_many(self, texts: Sequence[str]) -> list[tuple[str, float]]: ...

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
        if not _readable(text):
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
        language = self._decide(cleaned, self.guess(cleaned)[0])
        self._remember(cleaned, language)
        return language

    def detect_many(self, texts: Sequence[str]) -> list[str | None]:
        """``detect`` of each text, in order, with the same answers and the same texts
        remembered; the texts not remembered are identified in one batch (several times
        cheaper a text than one at a time)."""
        cleaned = [detection_text(t) for t in texts]
        cache = self._cache
        new = [c for c in dict.fromkeys(cleaned) if c not in cache]
        found = dict(zip(new, self._detect_batch(new), strict=True))
        languages: list[str | None] = []
        for c in cleaned:
            if c in cache:
                language = cache[c]
            else:
                # Remembered when the batch began but forgotten since: one at a time.
                language = found[c] if c in found else self._decide(c, self.guess(c)[0])
                self._remember(c, language)
            languages.append(language)
        return languages

    def _detect_batch(self, cleaned: Sequence[str]) -> list[str | None]:
        readable = [c for c in cleaned if _readable(c)]
        guesses = dict(zip(readable, self.identifier.classify_many(readable), strict=True))
        codes = [guesses[c][0] if c in guesses else None for c in cleaned]
        return [
            self._decide(c, code if code in LANGUAGE_CODES else None)
            for c, code in zip(cleaned, codes, strict=True)
        ]

    def _decide(self, cleaned: str, code: str | None) -> str | None:
        if code is None or code in self.scorable:
            return code
        # Most mentions stop above: ranking every language costs a third more.
        scorable = sum(p for c, p in self.identifier.rank(cleaned) if c in self.scorable)
        return code if scorable < self.max_scorable_probability else None

    def _remember(self, cleaned: str, language: str | None) -> None:
        cache = self._cache
        if len(cache) >= DETECTION_CACHE_SIZE:
            for old in list(islice(cache, max(1, DETECTION_CACHE_SIZE // 2))):
                del cache[old]
        cache[cleaned] = language


def _readable(text: str) -> bool:
    """Whether ``text`` has the ``MIN_LETTERS`` letters the detector needs."""
    # The first MIN_LETTERS letters are enough to know (C-level filter, no count).
    return len(list(islice(filter(str.isalpha, text), MIN_LETTERS))) == MIN_LETTERS


def mention_language(tag: str | None, text: str, detector: LanguageDetector | None) -> str | None:
    """A mention's language: the source's tag when it names an ISO 639-1 language (the
    platform or the author said so), else what ``detector`` finds, else ``None``
    (unknown: read as English)."""
    return language_of_tag(tag) or (None if detector is None else detector.detect(text))


def mention_languages(
    mentions: Sequence[tuple[str | None, str]], detector: LanguageDetector | None
) -> list[str | None]:
    """``mention_language`` of each ``(tag, text)``, the untagged texts detected in one
    batch (``LanguageDetector.detect_many``)."""
    tagged = [language_of_tag(tag) for tag, _ in mentions]
    if detector is None:
        return tagged
    untagged = [text for (_, text), language in zip(mentions, tagged, strict=True) if not language]
    detected = iter(detector.detect_many(untagged))
    return [language or next(detected) for language in tagged]
