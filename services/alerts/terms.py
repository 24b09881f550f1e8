"""Terms that rose: words far more frequent in a window's mentions than before it. Pure."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_WORD = re.compile(r"[^\W\d_][\w'-]{2,39}", re.UNICODE)
_STOPWORD_TEXT = """
    the and for are but not you your with this that have has had was were will would can
    could should all any our out get got just now new one two its it's into from they them
    their there then than what when where who why how about after again also been being
    some such very more most much many other over only own same too off once here both each
    few which while does did doing done don't i'm we're you're they're isn't aren't wasn't
    http https www com amp via rt
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class RisingTerm:
    term: str
    count: int  # mentions of the window containing the term
    baseline_count: int  # reference mentions containing it
    ratio: float  # share in the window / share in the reference (smoothed)


def words(text: str) -> set[str]:
    """The distinct candidate terms of a text (lower-cased, 3–40 letters, no stopwords)."""
    return {w for w in (m.lower().strip("'-") for m in _WORD.findall(text)) if len(w) >= 3} - (
        STOPWORDS
    )


def rising_terms(
    window_texts: Iterable[str],
    reference_texts: Iterable[str],
    *,
    exclude: Iterable[str] = (),
    limit: int = 10,
    min_count: int = 2,
) -> list[RisingTerm]:
    """Terms in at least ``min_count`` window texts whose share of texts rose at least
    two-fold against the reference, strongest first (count × log ratio)."""
    skip = {w.lower() for text in exclude for w in words(text)}
    window = Counter[str]()
    n_w = 0
    for text in window_texts:
        n_w += 1
        window.update(words(text) - skip)
    reference = Counter[str]()
    n_r = 0
    for text in reference_texts:
        n_r += 1
        reference.update(words(text))
    out = []
    for term, count in window.items():
        if count < min_count:
            continue
        # A weak prior (half a mention in five) keeps a thin reference from making every
        # word look new, and a term never seen before from dividing by zero.
        ratio = (count / n_w) / ((reference[term] + 0.5) / (n_r + 5))
        if ratio >= 2.0:
            out.append(RisingTerm(term, count, reference[term], round(ratio, 2)))
    out.sort(key=lambda t: (-t.count * math.log(t.ratio), t.term))
    return out[:limit]
