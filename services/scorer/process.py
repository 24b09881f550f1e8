"""The scorer's pure core: raw mentions in, scored records out. No I/O here.

``score_chunk`` does everything the lexicon path needs for a chunk of mentions — match
brands, mask them, cap the length, score with VADER, sample spot checks, build the stored
document — so that the async shell can run it whole in a worker process, on another core,
and hand it only plain values. Back in the shell, ``to_route`` picks the ambiguous ones
for the transformer's second opinion and ``records`` turns it all into what is stored.
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
from services.scorer.sampling import SamplingPolicy, spot_check


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    max_chars: int = 2_000
    spot_check_rate: float = 0.02
    keep_unmatched: bool = False
    # The stratified spot-check sampler; None: a plain sample at ``spot_check_rate``.
    sampling: SamplingPolicy | None = None

    @property
    def sampling_policy(self) -> SamplingPolicy:
        if self.sampling is not None:
            return self.sampling
        return SamplingPolicy(rate=self.spot_check_rate, lifts=(), uncertain_rate=0.0)


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
        verdict = lexicon_sentiment(c)
        kept = text if keep_texts else ""
        spot = spot_check(item.source, item.id, verdict, config.sampling_policy, kept) is not None
        brands = tuple(match.brands)
        doc = scored_document(item.raw, brands, verdict, spot, now)
        out.results.append(LexiconResult(i, brands, kept, c, spot, doc, seconds))
    return out


def to_route(results: Sequence[LexiconResult], router: Router) -> list[int]:
    """Positions (in ``results``) of the mentions the router sends to the transformer."""
    return [
        i
        for i, r in enumerate(results)
        if router.route(r.text, lexicon_sentiment(r.compound)) != "lexicon"
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
                "model_version": sentiment.model_version,
                # Only marked when set, so ordinary documents stay as they were.
                **({"fallback": True} if sentiment.fallback else {}),
            },
            "spot_check": spot_check,
            "scored_at": scored_at.isoformat(),
        }
    )
    head = body[:-1].rstrip()
    sep = b"" if head.endswith(b"{") else b","
    return head + sep + extra[1:]


def records(
    mentions: Sequence[Mention],
    raws: Sequence[bytes],
    result: ChunkResult,
    *,
    routed: Sequence[int] = (),
    better: Sequence[Sentiment] = (),
    now: datetime,
    sampling: SamplingPolicy | None = None,
) -> list[ScoredRecord]:
    """Records to store and produce for a scored chunk (``mentions`` and ``raws`` are the
    chunk's, by position). ``better`` are the transformer's verdicts for the ``routed``
    results: they replace the lexicon's (whose compound is kept for analysis), and those
    documents are rebuilt. With ``sampling`` (the policy ``score_chunk`` used), the
    spot-check decision is taken again on the final verdict — the stratum of a routed
    mention is the transformer's — and its weight goes with the record to the queue."""
    replaced = dict(zip(routed, better, strict=True))
    out = []
    for i, r in enumerate(result.results):
        verdict = lexicon_sentiment(r.compound)
        doc = r.doc
        second = replaced.get(i)
        if second is not None:
            verdict = second.model_copy(update={"lexicon_compound": r.compound})
        m = mentions[r.position]
        spot = r.spot_check
        details = None
        if sampling is not None:
            details = spot_check(m.source, m.id, verdict, sampling, r.text)
            spot = details is not None
        if second is not None or spot != r.spot_check:
            doc = scored_document(raws[r.position], r.brands, verdict, spot, now)
        out.append(ScoredRecord(m, r.brands, verdict, spot, now, doc, details))
    return out


def score_mentions(
    items: Sequence[tuple[Mention, bytes]],
    *,
    matcher: BrandMatcher,
    compound: Callable[[str], float],
    router: Router,
    transformer: Scorer | None,
    config: ScoringConfig,
    now: datetime,
) -> tuple[ChunkResult, list[ScoredRecord]]:
    """The scorer's whole path in this process, synchronously (tests, offline use); the
    pipeline runs the same functions with the chunk in a worker and the transformer in
    a thread."""
    mentions = [m for m, _ in items]
    raws = [raw for _, raw in items]
    result = score_chunk(
        [ChunkItem(m.source, m.id, m.text, raw) for m, raw in items],
        matcher=matcher,
        compound=compound,
        config=config,
        now=now,
        keep_texts=transformer is not None,
    )
    routed: list[int] = []
    better: list[Sentiment] = []
    if transformer is not None:
        routed = to_route(result.results, router)
        if routed:
            better = transformer.score_batch([result.results[i].text for i in routed])
    return result, records(
        mentions,
        raws,
        result,
        routed=routed,
        better=better,
        now=now,
        sampling=config.sampling_policy,
    )
