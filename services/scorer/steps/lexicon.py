"""Match & lexicon: a batch's mentions, in chunks, scored by VADER in worker processes.

``score_chunk`` does everything the lexicon path needs for a chunk of mentions — match
brands, decide the language, mask them, cap the length, score with VADER, sample spot
checks, build the stored document — so that the shell can run it whole in a worker
process (``LexiconWorkers``), on another core, and hand it only plain values. The shell
keeps the workers up to two chunks ahead of the steps after it, and hands those steps
each chunk in order.

A mention naming two to ``MAX_TARGETS`` brands is also scored toward each of them
(issue 16, ``services.scorer.targets``): here, VADER on the clauses naming the brand
(its verdict in lexicon mode, and the fallback when the model has no room) and the
marked text the target-aware model reads (``BrandTarget``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

import orjson

from services.core.brands import BrandDefinition, BrandError, BrandMatcher, MatchResult
from services.core.bus.protocol import Message
from services.core.clock import Clock
from services.core.languages import is_scorable
from services.core.metrics import Metrics
from services.core.models import BrandSentiment, Mention, Sentiment
from services.core.owned import OwnedAccounts
from services.core.storage.brands import BrandStore
from services.core.stream.tasks import spawn
from services.scorer.language import LanguageDetector, mention_languages
from services.scorer.lexicon import UNSCORED, lexicon_sentiment
from services.scorer.mask import cap_text, mask_spans
from services.scorer.sampling import SamplingPolicy, spot_check
from services.scorer.steps.abstract import Forward, NextStep
from services.scorer.targets import MAX_TARGETS, clause_text, target_text

if TYPE_CHECKING:  # the workers run ``score_chunk``: a runtime import would be circular
    from services.scorer.workers import LexiconWorkers

log = logging.getLogger(__name__)


NO_OWNED = OwnedAccounts()


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

    def with_brand_rates(self, rates: tuple[tuple[str, float], ...]) -> ScoringConfig:
        """This config with the brands' floor rates in its sampling policy."""
        if rates == self.sampling_policy.brand_rates:
            return self
        return replace(self, sampling=replace(self.sampling_policy, brand_rates=rates))


@dataclass(frozen=True, slots=True)
class BrandSet:
    """The tracked brands; ``version`` counts the reloads of the cache that made it (for
    logs). Workers key their compiled matcher on ``definitions`` themselves, since
    versions of different caches in one process can coincide."""

    version: int
    definitions: tuple[tuple[str, str], ...] = field(default=())
    # Whose accounts are whose (``owned_handles``): their replies are kept unmatched.
    owned: OwnedAccounts = field(default_factory=OwnedAccounts)
    # The spot checks' per-brand floor rates (``sampling.brand_floor_rates``).
    rates: tuple[tuple[str, float], ...] = field(default=())


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
    lang: str | None = None  # the source's language tag
    # The author's handle when the mention is a reply (an owned account's reply that
    # names no brand is kept: it answers the mention it replies to).
    reply_by: str = ""


class BrandTarget(NamedTuple):
    """One brand of a mention naming several, as plain values (they cross processes)."""

    brand: str
    compound: float  # VADER on the clauses naming the brand (``clause_text``), capped
    # What the target-aware model reads (``target_text``); empty unless asked for (the
    # transformer is on).
    text: str = ""


class LexiconResult(NamedTuple):
    """One matched mention scored by the lexicon, as plain values."""

    position: int  # in the chunk
    brands: tuple[str, ...]
    text: str  # masked and capped, as scored; empty unless asked for (second opinions)
    compound: float
    spot_check: bool
    doc: bytes  # scored_mention.v1 JSON with the lexicon's verdict
    seconds: float  # time the lexicon took on it
    language: str | None = None  # ISO 639-1; None: undetermined (read as English)
    # Each brand's, in the order of ``brands``, when it names 2 to ``MAX_TARGETS``
    # brands and was scored; empty: every brand gets the mention's verdict.
    targets: tuple[BrandTarget, ...] = ()

    @property
    def scorable(self) -> bool:
        """Whether the scorer reads its language; if not, it is stored unscored."""
        return is_scorable(self.language)


@dataclass(slots=True)
class ChunkResult:
    results: list[LexiconResult] = field(default_factory=list)
    unmatched: int = 0
    truncated: int = 0
    # Mentions naming more than ``MAX_TARGETS`` brands: not scored per brand.
    over_targets: int = 0


@dataclass(frozen=True, slots=True)
class Chunk:
    """A slice of a batch: its mentions, and what of them crosses to a worker."""

    mentions: Sequence[Mention]
    items: Sequence[ChunkItem]
    now: datetime  # when the batch was scored: each document's ``scored_at``
    # The sampling policy the chunk was scored with (brand floors included), so that the
    # spot checks are decided again on the final verdict with the same one.
    sampling: SamplingPolicy | None = None

    @classmethod
    def of(
        cls,
        pairs: Sequence[tuple[Mention, bytes]],
        now: datetime,
        sampling: SamplingPolicy | None = None,
    ) -> Chunk:
        """A chunk of mentions, each with its ``mention.v1`` JSON as it arrived."""
        items = [
            ChunkItem(
                m.source, m.id, m.text, raw, m.lang, m.author.handle if m.in_reply_to_id else ""
            )
            for m, raw in pairs
        ]
        return cls([m for m, _ in pairs], items, now, sampling)


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    """Results of a chunk, and the verdicts that replace the lexicon's (``better``, by
    position in ``results``; ``None`` or empty: the lexicon's stands); and the model's
    verdicts toward the brands of those scored per brand (``targeted``, by position;
    ``None``, empty, or a brand missing: its clause-scoped lexicon verdict stands)."""

    chunk: Chunk
    results: Sequence[LexiconResult]
    better: Sequence[Sentiment | None] = ()
    targeted: Sequence[Mapping[str, BrandSentiment] | None] = ()


def chunks(
    pairs: Sequence[tuple[Mention, bytes]],
    size: int,
    now: datetime,
    sampling: SamplingPolicy | None = None,
) -> list[Chunk]:
    """A batch cut in chunks of ``size`` mentions, in order."""
    return [
        Chunk.of(pairs[start : start + size], now, sampling) for start in range(0, len(pairs), size)
    ]


def score_chunk(
    items: Sequence[ChunkItem],
    *,
    matcher: BrandMatcher,
    compound: Callable[[str], float],
    config: ScoringConfig,
    now: datetime,
    keep_texts: bool = False,
    detector: LanguageDetector | None = None,
    owned: OwnedAccounts = NO_OWNED,
    timer: Callable[[], float] = time.perf_counter,
) -> ChunkResult:
    """Match, decide the language, mask, cap, score, sample and build each document.
    Mentions matching no brand are dropped unless ``keep_unmatched``, or unless one is a
    reply by an ``owned`` account (kept with no brand: it answers what it replies to). A mention's
    language is its source's tag, else what ``detector`` finds (``mention_languages``);
    one in a language the scorer cannot read is left unscored (``UNSCORED``: not scored
    by the lexicon, never sampled, never routed)."""
    out = ChunkResult()
    matched: list[tuple[int, ChunkItem, MatchResult]] = []
    for i, item in enumerate(items):
        match = matcher.match(item.text)
        if (
            not match.brands
            and not config.keep_unmatched
            and not (item.reply_by and owned.owners(item.source, item.reply_by))
        ):
            out.unmatched += 1
            continue
        matched.append((i, item, match))
    # The chunk's languages in one batch: several times cheaper a mention than one by one.
    languages = mention_languages([(item.lang, item.text) for _, item, _ in matched], detector)
    for (i, item, match), language in zip(matched, languages, strict=True):
        brands = tuple(match.brands)
        if not is_scorable(language):
            doc = scored_document(item.raw, brands, UNSCORED, False, now, language)
            out.results.append(LexiconResult(i, brands, "", 0.0, False, doc, 0.0, language))
            continue
        text, cut = prepare_text(item.text, match.mask_spans, config.max_chars)
        out.truncated += cut
        t0 = timer()
        c = compound(text)
        seconds = timer() - t0
        verdict = lexicon_sentiment(c)
        kept = text if keep_texts else ""
        policy = config.sampling_policy
        spot = spot_check(item.source, item.id, verdict, policy, kept, brands) is not None
        targets: tuple[BrandTarget, ...] = ()
        if len(brands) > MAX_TARGETS:
            out.over_targets += 1
        elif len(brands) > 1:
            targets = brand_targets(
                item.text, match, compound, config.max_chars, with_texts=keep_texts
            )
        doc = scored_document(
            item.raw, brands, verdict, spot, now, language, clause_verdicts(targets)
        )
        out.results.append(LexiconResult(i, brands, kept, c, spot, doc, seconds, language, targets))
    return out


def brand_targets(
    text: str,
    match: MatchResult,
    compound: Callable[[str], float],
    max_chars: int,
    *,
    with_texts: bool,
) -> tuple[BrandTarget, ...]:
    """Each matched brand of ``text``: VADER's compound on the clauses naming it (every
    matched brand masked, cut to ``max_chars``) and, ``with_texts``, the marked text the
    model reads for it (``services.scorer.targets``). Pure, given ``compound``."""
    spans = match.spans_by_brand()
    return tuple(
        BrandTarget(
            brand,
            compound(cap_text(clause_text(text, spans, brand), max_chars)),
            target_text(text, spans, brand) if with_texts else "",
        )
        for brand in match.brands
    )


def clause_verdicts(targets: Sequence[BrandTarget]) -> dict[str, BrandSentiment] | None:
    """The clause-scoped lexicon's verdict toward each brand; ``None`` with no targets."""
    if not targets:
        return None
    return {
        t.brand: BrandSentiment.of(lexicon_sentiment(t.compound), targeted=True) for t in targets
    }


def scored_document(
    raw: bytes,
    brands: Sequence[str],
    sentiment: Sentiment,
    spot_check: bool,
    scored_at: datetime,
    language: str | None = None,
    by_brand: Mapping[str, BrandSentiment] | None = None,
) -> bytes:
    """The ``scored_mention.v1`` JSON: the raw mention's JSON with the scoring fields added
    (``sentiment_by_brand`` only when ``by_brand`` is given).

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
            # Only when scored per brand, so ordinary documents stay as they were.
            **({} if by_brand is None else {"sentiment_by_brand": brand_documents(by_brand)}),
            "spot_check": spot_check,
            "scored_at": scored_at.isoformat(),
            "language": language,
        }
    )
    head = body[:-1].rstrip()
    sep = b"" if head.endswith(b"{") else b","
    return head + sep + extra[1:]


def brand_documents(by_brand: Mapping[str, BrandSentiment]) -> dict[str, dict[str, object]]:
    """``sentiment_by_brand`` as ``scored_mention.v1`` writes it."""
    return {
        brand: {
            "label": v.label,
            "score": v.score,
            "confidence": v.confidence,
            "method": v.method,
            "targeted": v.targeted,
        }
        for brand, v in by_brand.items()
    }


# How often the spot checks' brand floors follow the brands' volumes.
FLOORS_REFRESH_S = 300.0


class BrandMatcherCache:
    """The tracked brands, reloaded when the store says they changed.

    ``brands`` is what the scoring workers compile their matchers from; ``matcher`` is
    the same set compiled here (which also proves every definition compiles).
    """

    def __init__(
        self,
        store: BrandStore,
        refresh_s: float,
        floors: Callable[[], tuple[tuple[str, float], ...]] | None = None,
        floors_refresh_s: float = FLOORS_REFRESH_S,
    ) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._floors = floors
        self._floors_refresh_s = floors_refresh_s
        self._version: object = None
        self._checked_at = float("-inf")
        self._floors_at = float("-inf")
        self.matcher = BrandMatcher.compile([])
        self.brands = BrandSet(version=0)

    async def current(self) -> BrandSet:
        now = time.monotonic()
        if now - self._checked_at >= self._refresh_s:
            self._checked_at = now
            await asyncio.to_thread(self.reload)
        if self._floors is not None and now - self._floors_at >= self._floors_refresh_s:
            self._floors_at = now
            rates = await asyncio.to_thread(self._floors)
            if rates != self.brands.rates:
                self.brands = replace(self.brands, rates=rates)
        return self.brands

    def reload(self, force: bool = False) -> None:
        version = self._store.version()
        if force or version != self._version:
            usable: list[BrandDefinition] = []
            listed = self._store.list()
            for b in listed:
                # A brand stored under older, looser rules must not stop all scoring.
                try:
                    definition = b.definition
                    BrandMatcher.compile([definition])
                except BrandError as e:
                    log.error("brand %r is not tracked until fixed: %s", b.name, e)
                    continue
                usable.append(definition)
            self.matcher = BrandMatcher.compile(usable)
            self.brands = BrandSet(
                version=self.brands.version + 1,
                definitions=tuple((d.name, d.query) for d in usable),
                rates=self.brands.rates,
                owned=OwnedAccounts.of((b.name, b.owned_handles) for b in listed),
            )
            self._version = version
            log.info("brand matcher rebuilt for %d brands", len(usable))


class ScoreLexicon(Forward[ScoredChunk]):
    def __init__(
        self,
        runner: LexiconWorkers,
        matchers: BrandMatcherCache,
        config: ScoringConfig,
        *,
        chunk_size: int,
        keep_texts: bool,
        clock: Clock,
        metrics: Metrics,
        next_step: NextStep[ScoredChunk],
    ) -> None:
        super().__init__(next_step)
        self._runner = runner
        self._matchers = matchers
        self._config = config
        self._chunk_size = chunk_size
        self._keep_texts = keep_texts  # for the transformer's second opinions
        self._clock = clock
        self._metrics = metrics

    async def submit(self, batch: Sequence[tuple[Message, Mention]]) -> None:
        brands = await self._matchers.current()
        config = self._config.with_brand_rates(brands.rates)
        pending = chunks(
            [(m, msg.value) for msg, m in batch],
            self._chunk_size,
            self._clock.now(),
            config.sampling_policy,
        )

        def score(chunk: Chunk) -> asyncio.Future[ChunkResult]:
            return spawn(
                self._runner.score(
                    chunk.items, brands, config, chunk.now, keep_texts=self._keep_texts
                )
            )

        # The workers score up to two chunks ahead while the steps after this one work
        # on the chunk before (and write it, in a thread).
        scoring = deque(score(chunk) for chunk in pending[:2])
        try:
            for k, chunk in enumerate(pending):
                result = await scoring.popleft()
                if k + 2 < len(pending):
                    scoring.append(score(pending[k + 2]))
                self._observe(result)
                await self.next_step.submit(ScoredChunk(chunk, result.results))
        except BaseException:
            for f in scoring:
                f.cancel()
            raise

    def _observe(self, result: ChunkResult) -> None:
        m = self._metrics
        m.mentions_unmatched.inc(result.unmatched)
        m.texts_truncated.inc(result.truncated)
        m.mentions_over_max_targets.inc(result.over_targets)
        latency = m.scoring_latency.labels("lexicon")
        for r in result.results:
            latency.observe(r.seconds)
