"""Produce: what was stored goes to ``mentions.scored`` for the consumers downstream."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from services.core.bus.protocol import Producer, all_sent
from services.core.metrics import Metrics
from services.core.models import ScoringMethod, VerdictLabel
from services.core.storage.writer import Refused, ScoredRecord
from services.core.topics import SCORED, mention_key


def tally(
    records: Sequence[ScoredRecord],
) -> tuple[Counter[tuple[ScoringMethod, VerdictLabel]], Counter[ScoringMethod]]:
    """Records per (method, label) — an unscored one as ("none", "unscored") — and spot
    checks sampled per method."""
    scored = Counter((r.sentiment.method, r.sentiment.label) for r in records)
    spot = Counter(r.sentiment.method for r in records if r.spot_check)
    return scored, spot


def targeted_tally(records: Sequence[ScoredRecord]) -> Counter[ScoringMethod]:
    """Verdicts toward one brand of a mention scored per brand, per method."""
    return Counter(v.method for r in records if r.by_brand is not None for v in r.by_brand.values())


class ProduceScored:
    def __init__(self, producer: Producer, metrics: Metrics) -> None:
        self._producer = producer
        self._metrics = metrics

    async def submit(self, records: Sequence[ScoredRecord]) -> None:
        # Sent together: on Kafka each send waits for the broker's acknowledgement, and one
        # at a time would cap a scorer at one round trip per mention; in memory the batch
        # is appended at once, with no task per mention. Any failure fails the batch,
        # which is then delivered again (a record sent twice is idempotent downstream).
        all_sent(
            await self._producer.send_many(SCORED, [(mention_key(*r.key), r.doc) for r in records])
        )
        m = self._metrics
        m.messages_produced.labels(SCORED).inc(len(records))
        scored, spot = tally(records)
        for (method, label), n in scored.items():
            m.mentions_scored.labels(method, label).inc(n)
        for method, n in spot.items():
            m.spot_checks_sampled.labels(method).inc(n)
        for method, n in targeted_tally(records).items():
            m.targeted_verdicts.labels(method).inc(n)

    async def join(self) -> list[Refused]:
        await self._producer.flush()
        return []

    def terminate(self) -> None:
        pass
