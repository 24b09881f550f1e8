"""The scorer's pure core: raw mentions in, scored mentions out. No I/O here."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.core.brands import BrandMatcher
from services.core.models import Mention, ScoredMention, Sentiment
from services.scorer.mask import cap_text, mask_spans
from services.scorer.protocol import Router, Scorer
from services.scorer.sampling import is_spot_check


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    max_chars: int = 2_000
    spot_check_rate: float = 0.02
    keep_unmatched: bool = False


@dataclass(slots=True)
class ScoredBatch:
    scored: list[ScoredMention] = field(default_factory=list)
    unmatched: int = 0
    truncated: int = 0
    routed: int = 0
    # (method, seconds) per scored text, for the latency histogram
    timings: list[tuple[str, float]] = field(default_factory=list)


def prepare_text(text: str, spans: Sequence[tuple[int, int]], max_chars: int) -> tuple[str, bool]:
    """Mask brand terms, then cap the length. Returns the text and whether it was cut."""
    masked = mask_spans(text, spans)
    capped = cap_text(masked, max_chars)
    return capped, len(capped) < len(masked)


def score_mentions(
    mentions: Sequence[Mention],
    *,
    matcher: BrandMatcher,
    lexicon: Scorer,
    router: Router,
    transformer: Scorer | None,
    config: ScoringConfig,
    now: datetime,
    timer: Callable[[], float] = time.perf_counter,
) -> ScoredBatch:
    """Match brands, score sentiment (lexicon first, the transformer where routed) and
    mark spot checks. Mentions matching no brand are dropped unless configured."""
    out = ScoredBatch()
    todo: list[tuple[Mention, list[str], str]] = []
    for m in mentions:
        match = matcher.match(m.text)
        if not match.brands and not config.keep_unmatched:
            out.unmatched += 1
            continue
        text, cut = prepare_text(m.text, match.mask_spans, config.max_chars)
        out.truncated += cut
        todo.append((m, list(match.brands), text))

    verdicts: list[Sentiment] = []
    for _, _, text in todo:
        t0 = timer()
        (verdict,) = lexicon.score_batch([text])
        out.timings.append((lexicon.method, timer() - t0))
        verdicts.append(verdict)

    if transformer is not None:
        routed = [
            i for i, (_, _, text) in enumerate(todo) if router.route(text, verdicts[i]) != "lexicon"
        ]
        if routed:
            t0 = timer()
            better = transformer.score_batch([todo[i][2] for i in routed])
            each = (timer() - t0) / len(routed)
            for i, v in zip(routed, better, strict=True):
                verdicts[i] = v.model_copy(
                    update={"lexicon_compound": verdicts[i].lexicon_compound}
                )
                out.timings.append((transformer.method, each))
            out.routed = len(routed)

    for (m, brands, _), verdict in zip(todo, verdicts, strict=True):
        out.scored.append(
            ScoredMention.from_mention(
                m,
                brands=brands,
                sentiment=verdict,
                spot_check=is_spot_check(m.source, m.id, config.spot_check_rate),
                scored_at=now,
            )
        )
    return out
