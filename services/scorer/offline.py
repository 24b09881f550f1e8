"""Scoring outside the pipeline (``sentimon score``): backfills and offline evaluation.

A text scored here gets the verdict the scorer service gives it: the same settings
(``ScorerSettings``, with the routing calibration applied as ``build_pipeline`` applies
it), the same transformer and router (``hybrid_from_settings``) and the same path through
them (``score_and_route``: match brands, mask them, cap the length, VADER, route, the
transformer's second opinion; ``final_verdict``), and a text naming several brands is
scored toward each the same way (``final_by_brand``). Two differences, both on purpose:
every text is scored, whether it names a tracked brand or not, and no spot check is
sampled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from services.core.brands import BrandMatcher
from services.core.models import BrandSentiment, Sentiment
from services.scorer.calibration import apply_calibration
from services.scorer.language import LanguageDetector
from services.scorer.lexicon import VaderScorer
from services.scorer.pipeline import hybrid_from_settings
from services.scorer.process import ScoringConfig, score_and_route
from services.scorer.protocol import LexiconOnlyRouter, Router, Scorer
from services.scorer.settings import ScorerSettings
from services.scorer.steps.lexicon import Chunk, ChunkItem, brand_documents
from services.scorer.steps.write import final_by_brand, final_verdict

MAX_LINE_CHARS = 1_000_000
# A block of lines is scored together (the transformer's batch); it also ends at this many
# characters of text, so a file of long lines is not held in memory a block at a time.
MAX_BLOCK_CHARS = 4_000_000
# What the scorer's chunk needs of a mention besides its text: nothing here reads them
# (no spot check is sampled and the stored document is not used).
_SOURCE = "offline"
_RAW = b"{}"
_NOW = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class OfflineScorer:
    """The scorer service's scoring, for texts outside the pipeline. ``transformer`` and
    ``router`` are both ``None`` for lexicon-only scoring."""

    matcher: BrandMatcher
    compound: Callable[[str], float]
    max_chars: int
    transformer: Scorer | None = None
    router: Router | None = None
    # The service's language identification: a text in a language the scorer cannot
    # read comes out unscored, as in the service.
    detector: LanguageDetector | None = None


@dataclass(frozen=True, slots=True)
class LineError:
    """A line that cannot be scored (``line`` counts from 1), and why."""

    line: int
    reason: str


def offline_scorer(
    settings: ScorerSettings, matcher: BrandMatcher, *, max_chars: int | None = None
) -> OfflineScorer:
    """The scorer the service would run with ``settings``, matching brands with
    ``matcher``; ``max_chars`` overrides ``settings.max_score_chars``.

    Raises what stops the service from starting: ``ModelLoadError`` when the model
    cannot be loaded and ``transformer_missing`` is ``error`` (with ``lexicon`` the
    problem is logged and scoring is lexicon-only), ``CalibrationError`` for a corrupt
    ``calibration.json`` in the data directory."""
    settings = apply_calibration(settings)
    transformer, router = hybrid_from_settings(settings)
    return OfflineScorer(
        matcher=matcher,
        compound=VaderScorer().compound,
        max_chars=settings.max_score_chars if max_chars is None else max_chars,
        transformer=transformer,
        router=router,
        detector=LanguageDetector.load(),
    )


class OfflineVerdict(NamedTuple):
    """A text's matched brands, its verdict, and its verdict toward each brand when it
    names several (``None``: every brand gets ``sentiment``)."""

    brands: tuple[str, ...]
    sentiment: Sentiment
    by_brand: dict[str, BrandSentiment] | None


def score_texts(
    texts: Sequence[str], scorer: OfflineScorer
) -> list[tuple[tuple[str, ...], Sentiment]]:
    """Each text's matched brands and verdict, in order, as the scorer service gives
    them. Raises only what the transformer raises (it must not, on any text)."""
    return [(v.brands, v.sentiment) for v in score_verdicts(texts, scorer)]


def score_verdicts(texts: Sequence[str], scorer: OfflineScorer) -> list[OfflineVerdict]:
    """``score_texts`` with the verdicts toward each brand, as the scorer service gives
    them. Raises only what the transformer raises (it must not, on any text)."""
    items = [ChunkItem(_SOURCE, str(i), text, _RAW) for i, text in enumerate(texts)]
    result, scored = score_and_route(
        # No ``Mention``s: a line of a file need not be one, and nothing here reads them.
        Chunk((), items, _NOW),
        matcher=scorer.matcher,
        compound=scorer.compound,
        router=scorer.router or LexiconOnlyRouter(),
        transformer=scorer.transformer,
        config=ScoringConfig(max_chars=scorer.max_chars, spot_check_rate=0.0, keep_unmatched=True),
        detector=scorer.detector,
    )
    return [
        OfflineVerdict(r.brands, final_verdict(r, better), final_by_brand(r, toward))
        for r, better, toward in zip(result.results, scored.better, scored.targeted, strict=True)
    ]


def parse_line(line: str) -> dict[str, Any] | str:
    """One input line: a JSON object with a non-empty ``text``, or a plain line of text
    (as ``{"text": line}``, stripped). Returns the object, or why the line is refused."""
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
    return obj


def score_objects(objects: Sequence[dict[str, Any]], scorer: OfflineScorer) -> list[dict[str, Any]]:
    """The objects (each with a ``text``, as ``parse_line`` gives them), in order, with
    ``brands`` and ``sentiment`` (the verdict's every field) added, and
    ``sentiment_by_brand`` (brand → label, score, confidence, method, targeted) for a text
    naming several brands, as ``scored_mention.v1`` has it."""
    verdicts = score_verdicts([o["text"] for o in objects], scorer)
    out = []
    for obj, v in zip(objects, verdicts, strict=True):
        scored = {**obj, "brands": list(v.brands), "sentiment": v.sentiment.model_dump()}
        # An input's own is not this scoring's, as its "sentiment" is not.
        scored.pop("sentiment_by_brand", None)
        if v.by_brand is not None:
            scored["sentiment_by_brand"] = brand_documents(v.by_brand)
        out.append(scored)
    return out


def score_lines(
    lines: Iterable[bytes], scorer: OfflineScorer, *, block: int
) -> Iterator[dict[str, Any] | LineError]:
    """Each line of ``lines`` (UTF-8; blank ones skipped) scored: its object with
    ``brands`` and ``sentiment`` added, or a ``LineError``. Lines are scored in blocks of
    up to ``block`` (and ``MAX_BLOCK_CHARS`` of text); the objects come in input order,
    each once its block is scored, and a ``LineError`` as soon as its line is read."""
    pending: list[dict[str, Any]] = []
    chars = 0
    for n, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield LineError(n, "not valid UTF-8")
            continue
        if not line.strip():
            continue
        parsed = parse_line(line)
        if isinstance(parsed, str):
            yield LineError(n, parsed)
            continue
        pending.append(parsed)
        chars += len(parsed["text"])
        if len(pending) >= block or chars >= MAX_BLOCK_CHARS:
            yield from score_objects(pending, scorer)
            pending, chars = [], 0
    if pending:
        yield from score_objects(pending, scorer)
