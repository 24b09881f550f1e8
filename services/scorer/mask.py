"""Brand masking: brand names and handles are replaced before sentiment scoring.

A lexicon scores words, not entities: ``@united`` would be read as "united" (+1.8 in
VADER's lexicon) and every mention of that brand would lean positive. Masking with a
neutral placeholder keeps the sentence shape (so negation and "but" rules still work)
while removing the brand's own valence.
"""

from __future__ import annotations

from collections.abc import Sequence

PLACEHOLDER = "brand"


def mask_spans(text: str, spans: Sequence[tuple[int, int]], placeholder: str = PLACEHOLDER) -> str:
    """Replace each ``(start, end)`` span (sorted, non-overlapping) with ``placeholder``."""
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out.append(text[pos:start])
        out.append(placeholder)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def cap_text(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars``, at a word boundary when there is one nearby.

    The lexicon's cost grows faster than linearly with the number of words in some
    rules, so a hostile 10,000-character text must not reach it whole.
    """
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", max_chars - 200 if max_chars > 200 else 0, max_chars + 1)
    return text[: cut if cut > 0 else max_chars]
