"""Scoring outside the pipeline (``sentimon score``): backfills and offline evaluation."""

from __future__ import annotations

from typing import Any

import orjson

from services.core.brands import BrandMatcher
from services.scorer.lexicon import VaderScorer
from services.scorer.process import prepare_text

MAX_LINE_CHARS = 1_000_000


def score_line(
    line: str, *, matcher: BrandMatcher, lexicon: VaderScorer, max_chars: int
) -> dict[str, Any] | str:
    """Score one input line: a JSON object with ``text``, or a plain line of text.

    Returns the object with ``brands`` and ``sentiment`` added, or an error message.
    """
    if len(line) > MAX_LINE_CHARS:
        return f"line longer than {MAX_LINE_CHARS} characters"
    stripped = line.strip()
    obj: dict[str, Any]
    if stripped.startswith("{"):
        try:
            parsed = orjson.loads(stripped)
        except orjson.JSONDecodeError as e:
            return f"invalid JSON: {e}"
        if not isinstance(parsed, dict):
            return "expected a JSON object"
        obj = parsed
    else:
        obj = {"text": stripped}
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        return "text: a non-empty string is required"
    match = matcher.match(text)
    prepared, _ = prepare_text(text, match.mask_spans, max_chars)
    (verdict,) = lexicon.score_batch([prepared])
    obj["brands"] = list(match.brands)
    obj["sentiment"] = verdict.model_dump()
    return obj
