"""The scorer's pure core: raw mentions in, scored records out. No I/O here.

``score_chunk`` does everything the lexicon path needs for a chunk of mentions — match
brands, mask them, cap the length, score with VADER, sample spot checks, build the stored
document — so that the async shell can run it whole in a worker process, on another core,
and hand it only plain values. The transformer's second opinion for ambiguous mentions
(``to_route``, ``merge_routed``) happens after it, back in the shell.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import orjson

from services.core.brands import BrandMatcher
from services.core.models import Mention, Sentiment
from services.core.storage.writer import ScoredRecord
from services.scorer.lexicon import lexicon_sentiment
from services.scorer.mask import cap_text, mask_spans
from services.scorer.protocol import Router, Scorer
from services.scorer.sampling import is_spot_check


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    max_chars: int = 2_000
    spot_check_rate: float = 0.02
    keep_unmatched: bool = False


@dataclass(frozen=True, slots=True)
class PreparedMention:
    mention: Mention
    raw: bytes  # the mention.v1 JSON as it arrived
    brands: tuple[str, ...]
    text: str  # masked and capped: what the scorers see


@dataclass(slots=True)
class Prepared:
    todo: list[PreparedMention] = field(default_factory=list)
    unmatched: int = 0
    truncated: int = 0


def prepare_text(text: str, spans: Sequence[tuple[int, int]], max_chars: int) -> tuple[str, bool]:
    """Mask brand terms, then cap the length. Returns the text and whether it was cut."""
    masked = mask_spans(text, spans)
    capped = cap_text(masked, max_chars)
    return capped, len(capped) < len(masked)


class ChunkItem(NamedTuple):
    """What scoring needs of one mention. Tuples: they cross to worker processes, and
    pickle several times faster than dataclasses."""

    source: str
    id: str
    text: str
    raw: bytes  # the mention.v1 JSON as it arrived


class LexiconResult(NamedTuple):
    """One matched mention scored by the lexicon, as plain values."""

    position: int  # in the chunk
    brands: tuple[str, ...]
    text: str  # masked and capped, as scored; empty unless asked for (second opinions)
    compound: float
    spot_check: bool
    doc: bytes  # scored_mention.v1 JSON with the lexicon's verdict
    seconds: float  # time the lexicon took on it


@dataclass(slots=True)
class ChunkResult:
    results: list[LexiconResult] = field(default_factory=list)
    unmatched: int = 0
    truncated: int = 0


def score_chunk(
    items: Sequence[ChunkItem],
    *,
    matcher: BrandMatcher,
    compound: Callable[[str], float],
    config: ScoringConfig,
    now: datetime,
    keep_texts: bool = False,
    timer: Callable[[], float] = time.perf_counter,
) -> ChunkResult:
    """Match, mask, cap, score, sample and build each document. Mentions matching no
    brand are dropped unless ``keep_unmatched``."""
    out = ChunkResult()
    for i, item in enumerate(items):
        match = matcher.match(item.text)
        if not match.brands and not config.keep_unmatched:
            out.unmatched += 1
            continue
        text, cut = prepare_text(item.text, match.mask_spans, config.max_chars)
        out.truncated += cut
        t0 = timer()
        c = compound(text)
        seconds = timer() - t0
        spot = is_spot_check(item.source, item.id, config.spot_check_rate)
        brands = tuple(match.brands)
        doc = scored_document(item.raw, brands, lexicon_sentiment(c), spot, now)
        out.results.append(
            LexiconResult(i, brands, text if keep_texts else "", c, spot, doc, seconds)
        )
    return out


def prepare(
    items: Sequence[tuple[Mention, bytes]], *, matcher: BrandMatcher, config: ScoringConfig
) -> Prepared:
    """Match brands and prepare texts; mentions matching no brand are dropped unless
    ``keep_unmatched``."""
    out = Prepared()
    for mention, raw in items:
        match = matcher.match(mention.text)
        if not match.brands and not config.keep_unmatched:
            out.unmatched += 1
            continue
        text, cut = prepare_text(mention.text, match.mask_spans, config.max_chars)
        out.truncated += cut
        out.todo.append(PreparedMention(mention, raw, tuple(match.brands), text))
    return out


def to_route(
    todo: Sequence[PreparedMention], lexicon: Sequence[Sentiment], router: Router
) -> list[int]:
    """Indices of the mentions the router sends on to the transformer."""
    return [
        i
        for i, (p, v) in enumerate(zip(todo, lexicon, strict=True))
        if router.route(p.text, v) != "lexicon"
    ]


def scored_document(
    raw: bytes, brands: Sequence[str], sentiment: Sentiment, spot_check: bool, scored_at: datetime
) -> bytes:
    """The ``scored_mention.v1`` JSON: the raw mention's JSON with the scoring fields added.

    Splicing keeps the mention exactly as it arrived and avoids re-serialising it; it
    is safe because a valid ``mention.v1`` object has none of the added keys.
    """
    body = raw.rstrip()
    if not body.endswith(b"}"):
        raise ValueError("raw mention is not a JSON object")
    extra = orjson.dumps(
        {
            "brands": list(brands),
            "sentiment": {
                "label": sentiment.label,
                "score": sentiment.score,
                "confidence": sentiment.confidence,
                "method": sentiment.method,
                "lexicon_compound": sentiment.lexicon_compound,
            },
            "spot_check": spot_check,
            "scored_at": scored_at.isoformat(),
        }
    )
    head = body[:-1].rstrip()
    sep = b"" if head.endswith(b"{") else b","
    return head + sep + extra[1:]


def assemble(
    todo: Sequence[PreparedMention],
    verdicts: Sequence[Sentiment],
    *,
    config: ScoringConfig,
    now: datetime,
) -> list[ScoredRecord]:
    """Final verdicts → records to store and produce, with spot checks sampled."""
    out = []
    for p, verdict in zip(todo, verdicts, strict=True):
        m = p.mention
        spot = is_spot_check(m.source, m.id, config.spot_check_rate)
        out.append(
            ScoredRecord(
                mention=m,
                brands=p.brands,
                sentiment=verdict,
                spot_check=spot,
                scored_at=now,
                doc=scored_document(p.raw, p.brands, verdict, spot, now),
            )
        )
    return out


def merge_routed(
    lexicon: Sequence[Sentiment], routed: Sequence[int], better: Sequence[Sentiment]
) -> list[Sentiment]:
    """Replace the routed verdicts, keeping the lexicon's compound on each for analysis."""
    out = list(lexicon)
    for i, v in zip(routed, better, strict=True):
        out[i] = v.model_copy(update={"lexicon_compound": lexicon[i].lexicon_compound})
    return out


def score_mentions(
    items: Sequence[tuple[Mention, bytes]],
    *,
    matcher: BrandMatcher,
    lexicon: Scorer,
    router: Router,
    transformer: Scorer | None,
    config: ScoringConfig,
    now: datetime,
) -> tuple[Prepared, list[ScoredRecord]]:
    """All three steps in this process (tests, offline use)."""
    prepared = prepare(items, matcher=matcher, config=config)
    verdicts = lexicon.score_batch([p.text for p in prepared.todo])
    if transformer is not None:
        routed = to_route(prepared.todo, verdicts, router)
        if routed:
            better = transformer.score_batch([prepared.todo[i].text for i in routed])
            verdicts = merge_routed(verdicts, routed, better)
    return prepared, assemble(prepared.todo, verdicts, config=config, now=now)
