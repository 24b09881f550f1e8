"""Write batch: each chunk's records stored in one idempotent transaction, in a thread.

Chunks are written in order, each after the one before has been stored and produced, so a
failure stops the ones after it. Chunks still waiting for a transformer batch go on a
second lane, in order among themselves, so the lexicon's mentions never wait for them.
A chunk the store refuses for good is bisected (``MentionWriter.write_isolating``): the
rest is stored and produced, the refused records are returned by ``join``. A transient
error (the database away) raises: the batch is delivered again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping, Sequence

from services.core.metrics import Metrics
from services.core.models import BrandSentiment, Sentiment
from services.core.storage.writer import MentionWriter, Refused, ScoredRecord
from services.core.stream.tasks import spawn
from services.scorer.lexicon import UNSCORED, lexicon_sentiment
from services.scorer.sampling import SamplingPolicy, spot_check
from services.scorer.steps.abstract import NextStep
from services.scorer.steps.lexicon import (
    LexiconResult,
    ScoredChunk,
    clause_verdicts,
    scored_document,
)

_Lane = asyncio.Future[list[Refused]] | None


def final_verdict(result: LexiconResult, second: Sentiment | None) -> Sentiment:
    """A mention's verdict: ``UNSCORED`` in a language the scorer cannot read, else the
    transformer's second opinion when it gave one (with the lexicon's compound kept for
    analysis), else the lexicon's."""
    if not result.scorable:
        return UNSCORED
    if second is None:
        return lexicon_sentiment(result.compound)
    return second.model_copy(update={"lexicon_compound": result.compound})


def final_by_brand(
    result: LexiconResult, model: Mapping[str, BrandSentiment] | None
) -> dict[str, BrandSentiment] | None:
    """A mention's verdicts toward its brands: ``None`` unless it was scored per brand
    (``result.targets``); else the model's where it gave one (``model``), the
    clause-scoped lexicon's for the others."""
    verdicts = clause_verdicts(result.targets)
    if verdicts is None or not model:
        return verdicts
    return {brand: model.get(brand, v) for brand, v in verdicts.items()}


def scored_records(scored: ScoredChunk, *, sampling: SamplingPolicy) -> list[ScoredRecord]:
    """Records to store and produce for a scored chunk. A verdict in ``better`` replaces
    the lexicon's (whose compound is kept for analysis), verdicts in ``targeted`` replace
    the clause-scoped lexicon's toward those brands (``final_by_brand``), and the document
    is rebuilt. The spot-check decision (``sampling``: the policy ``score_chunk`` used) is
    taken again on the final verdict — the stratum of a routed mention is the
    transformer's — and its weight goes with the record to the queue. An unscored mention
    is never sampled: there is no verdict to check."""
    chunk = scored.chunk
    better = scored.better or [None] * len(scored.results)
    targeted = scored.targeted or [None] * len(scored.results)
    out = []
    for r, second, model in zip(scored.results, better, targeted, strict=True):
        verdict = final_verdict(r, second)
        by_brand = final_by_brand(r, model)
        doc = r.doc
        m = chunk.mentions[r.position]
        policy = chunk.sampling or sampling
        details = (
            spot_check(m.source, m.id, verdict, policy, r.text, r.brands) if r.scorable else None
        )
        spot = details is not None
        if second is not None or model or spot != r.spot_check:
            raw = chunk.items[r.position].raw
            doc = scored_document(raw, r.brands, verdict, spot, chunk.now, r.language, by_brand)
        out.append(
            ScoredRecord(
                m, r.brands, verdict, spot, chunk.now, doc, details, r.language, by_brand=by_brand
            )
        )
    return out


def stored(records: Sequence[ScoredRecord], refused: Sequence[Refused]) -> Sequence[ScoredRecord]:
    """The records of a write that the store did not refuse."""
    if not refused:
        return records
    gone = {r.record.key for r in refused}
    return [r for r in records if r.key not in gone]


class WriteBatch:
    def __init__(
        self,
        writer: MentionWriter,
        sampling: SamplingPolicy,
        metrics: Metrics,
        next_step: NextStep[Sequence[ScoredRecord]],
    ) -> None:
        self.next_step = next_step
        self._writer = writer
        self._sampling = sampling
        self._metrics = metrics
        self._ready: _Lane = None
        self._waiting: _Lane = None  # chunks waiting for the transformer

    async def submit(self, scored: ScoredChunk | Awaitable[ScoredChunk]) -> None:
        if isinstance(scored, ScoredChunk):
            records = scored_records(scored, sampling=self._sampling)
            self._ready = spawn(self._write(records, self._ready))
        else:
            self._waiting = spawn(self._write(scored, self._waiting))

    def join(self) -> Awaitable[list[Refused]]:
        lanes = [lane for lane in (self._ready, self._waiting) if lane is not None]
        self._ready = self._waiting = None
        return self._finish(lanes)

    def terminate(self) -> None:
        for lane in (self._ready, self._waiting):
            if lane is not None:
                lane.cancel()
        self._ready = self._waiting = None
        self.next_step.terminate()

    async def _finish(self, lanes: Sequence[asyncio.Future[list[Refused]]]) -> list[Refused]:
        refused: list[Refused] = []
        for lane in lanes:
            refused.extend(await lane)
        refused.extend(await self.next_step.join())
        return refused

    async def _write(
        self, records: Sequence[ScoredRecord] | Awaitable[ScoredChunk], previous: _Lane
    ) -> list[Refused]:
        """Store a chunk after ``previous`` (whose refusals are passed on), then hand on
        what was stored; returns what the store refused for good."""
        if not isinstance(records, Sequence):
            # The transformer's lane: its batch first.
            records = scored_records(await records, sampling=self._sampling)
        refused = [] if previous is None else list(await previous)
        gone = await self._store(records)
        refused.extend(gone)
        await self.next_step.submit(stored(records, gone))
        return refused

    async def _store(self, records: Sequence[ScoredRecord]) -> tuple[Refused, ...]:
        t0 = time.perf_counter()
        # The sync driver runs in a thread; SQLite and psycopg release the GIL while they
        # work. A transient error (database away) raises: the batch is delivered again.
        written = await asyncio.to_thread(self._writer.write_isolating, records)
        m = self._metrics
        m.db_write_latency.observe(time.perf_counter() - t0)
        m.db_write_batch_size.observe(len(records))
        m.mentions_stored.inc(written.result.inserted)
        m.mentions_duplicate_at_store.inc(written.result.duplicates)
        return written.refused
