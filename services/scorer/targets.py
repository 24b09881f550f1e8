"""Sentiment toward one brand of a mention that names several.

"Switched from Halcyra to Quorvia, support is night and day" is negative for Halcyra and
positive for Quorvia: one label per mention would give both the same. A mention naming
two or more tracked brands is scored once per brand, in one of two ways:

- **the target-aware model** (hybrid and transformer modes): the model reads the text
  with the brand asked about written ``TARGET_MARK`` and the other brands masked as the
  general path masks every brand (``services.scorer.mask.PLACEHOLDER``). It was trained
  on Dong et al.'s target-dependent tweets in exactly that form (their ``$T$``) together
  with the general tweets, so one model answers both questions
  (``services/scorer/training``);
- **the clause-scoped lexicon** (lexicon mode, or when the model has no room): VADER on
  the clauses that name the brand (``brand_clauses``).

The pure functions here are shared by the scorer and by training, so the model is
served text in the form it learnt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from services.scorer.mask import PLACEHOLDER

# Dong et al.'s own marker, kept so the shipped data set trains the model unchanged.
TARGET_MARK = "$T$"
# A "$T$" the author wrote is not the target: it is spaced out before marking.
_AUTHOR_MARK = re.compile(re.escape(TARGET_MARK))
# How much text around the brand the model reads: a 10,000-character post would be cut
# to its first 64 tokens, and a brand named further on would not be seen at all.
WINDOW_CHARS = 320
# Brands per mention scored one by one; beyond it (a list of 50 vendors, a tag cloud)
# every brand gets the mention's own verdict: such a text says nothing toward each one.
MAX_TARGETS = 8

Spans = Sequence[tuple[int, int]]


_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)


def widen_to_urls(text: str, spans: Spans) -> list[tuple[int, int]]:
    """``spans``, each one inside a URL widened to the whole URL: a brand named only in a
    link ("https://halcyra.com/pricing is a joke") is what the link stands for, and the
    model should read one mark, not "https://$T$.com/pricing"."""
    urls = [(m.start(), m.end()) for m in _URL.finditer(text)]
    if not urls:
        return list(spans)
    out: list[tuple[int, int]] = []
    for s, e in spans:
        for us, ue in urls:
            if us <= s < ue:
                s, e = us, max(e, ue)
                break
        if (s, e) not in out:
            out.append((s, e))
    return sorted(out)


def mark_target(text: str, spans: Mapping[str, Spans], target: str) -> tuple[str, int]:
    """``text`` with ``target``'s spans written ``TARGET_MARK`` and every other brand's
    written ``PLACEHOLDER``; and where the first mark starts (-1 if ``target`` has no
    span). Spans are ``(start, end)`` character offsets; spans inside a URL stand for
    the whole URL (``widen_to_urls``); overlaps keep the first."""
    marked: list[tuple[int, int, str]] = []
    for brand, brand_spans in spans.items():
        mark = TARGET_MARK if brand == target else PLACEHOLDER
        marked.extend((s, e, mark) for s, e in widen_to_urls(text, brand_spans))
    marked.sort()
    out: list[str] = []
    pos = 0
    first = -1
    length = 0
    for start, end, mark in marked:
        if start < pos:
            continue
        piece = _AUTHOR_MARK.sub("$ T $", text[pos:start])
        out.append(piece)
        length += len(piece)
        if mark == TARGET_MARK and first < 0:
            first = length
        out.append(mark)
        length += len(mark)
        pos = end
    out.append(_AUTHOR_MARK.sub("$ T $", text[pos:]))
    return "".join(out), first


def window(text: str, at: int, chars: int = WINDOW_CHARS) -> str:
    """At most ``chars`` of ``text`` around position ``at``, cut at spaces."""
    if len(text) <= chars:
        return text
    start = max(0, min(at - chars // 3, len(text) - chars))
    end = start + chars
    if start > 0:
        space = text.find(" ", start, at if at > start else start + 40)
        start = space + 1 if space >= 0 else start
    if end < len(text):
        space = text.rfind(" ", max(at + 1, end - 40), end)
        end = space if space > 0 else end
    return text[start:end]


def target_text(text: str, spans: Mapping[str, Spans], target: str) -> str:
    """What the target-aware model reads for ``target``: the marked text, windowed."""
    marked, first = mark_target(text, spans, target)
    return window(marked, max(first, 0))


# Clause boundaries: sentence ends, semicolons, and the contrastive and causal
# conjunctions that turn a comparison ("…, but X…", "… because Y…", "… than X").
_CLAUSE = re.compile(
    r"(?:[.!?;]+(?=\s|$)|\n+|\s[-–—]\s"
    r"|,?\s+(?:but|whereas|while|although|though|however|unlike|than|instead of|"
    r"compared to|vs\.?|versus)\s+)",
    re.IGNORECASE,
)


def clauses(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each clause of ``text`` (``_CLAUSE`` boundaries)."""
    out: list[tuple[int, int]] = []
    pos = 0
    for m in _CLAUSE.finditer(text):
        if m.start() > pos:
            out.append((pos, m.start()))
        pos = m.end()
    if pos < len(text):
        out.append((pos, len(text)))
    return out or [(0, len(text))]


def brand_clauses(text: str, spans: Spans) -> list[tuple[int, int]]:
    """The clauses of ``text`` that hold one of ``spans`` (in order, each once)."""
    hit: list[tuple[int, int]] = []
    for c in clauses(text):
        if any(c[0] <= s < c[1] for s, _ in spans) and c not in hit:
            hit.append(c)
    return hit


def clause_text(text: str, spans: Mapping[str, Spans], target: str) -> str:
    """What the clause-scoped lexicon reads for ``target``: the clauses naming it, with
    every brand masked (``PLACEHOLDER``: a brand's own name carries no valence), joined.
    The whole masked text if ``target`` has no span."""
    own = widen_to_urls(text, spans.get(target, ()))
    masked, _ = mark_target(text, spans, "")  # every brand written PLACEHOLDER
    if not own:
        return masked
    # Clauses are found in the original text, so offsets are mapped through the masking:
    # mask each clause on its own instead.
    pieces: list[str] = []
    for start, end in brand_clauses(text, own):
        inside = {
            b: [(s - start, e - start) for s, e in widen_to_urls(text, sp) if start <= s < end]
            for b, sp in spans.items()
        }
        piece, _ = mark_target(text[start:end], inside, "")
        pieces.append(piece.strip())
    return ". ".join(p for p in pieces if p)
