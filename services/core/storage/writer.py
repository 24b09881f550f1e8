"""The batch writer: stores scored mentions idempotently and keeps rollups in step.

One call is one transaction. A mention whose ``(source, id)`` is stored already is
skipped, and only the mentions this transaction really inserted are added to the
per-minute rollups, so redelivering a batch (at-least-once) changes nothing. If the
transaction fails, nothing of the batch is stored and the caller must not commit the
bus offsets that cover it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, tuple_
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite

from services.core.clock import Clock
from services.core.models import ScoredMention
from services.core.storage.tables import brand_minute_rollups, mention_brands, mentions

_LABEL_COLUMNS = ("positive", "neutral", "negative")
# Keeps each IN (...) / VALUES list well under SQLite's bound-parameter limit.
_CHUNK = 400

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    duplicates: int


@dataclass(slots=True)
class RollupDelta:
    mentions: int = 0
    positive: int = 0
    neutral: int = 0
    negative: int = 0
    score_sum: float = 0.0
    reach: int = 0
    engagement: int = 0


def minute_of(ts: datetime) -> int:
    """Epoch seconds of the start of the minute ``ts`` falls in."""
    epoch = int(ts.timestamp())
    return epoch - epoch % 60


def rollup_deltas(batch: Iterable[ScoredMention]) -> dict[tuple[str, int], RollupDelta]:
    """Sum a batch into per-(brand, minute) increments. Pure."""
    deltas: dict[tuple[str, int], RollupDelta] = {}
    for m in batch:
        minute = minute_of(m.created_at)
        label = m.sentiment.label
        for brand in m.brands:
            d = deltas.get((brand, minute))
            if d is None:
                d = deltas[(brand, minute)] = RollupDelta()
            d.mentions += 1
            if label == "positive":
                d.positive += 1
            elif label == "negative":
                d.negative += 1
            else:
                d.neutral += 1
            d.score_sum += m.sentiment.score
            d.reach += m.author.followers
            d.engagement += m.engagement
    return deltas


def mention_row(m: ScoredMention, stored_at: datetime) -> dict[str, Any]:
    metrics = m.metrics
    return {
        "source": m.source,
        "mention_id": m.id,
        "url": m.url,
        "text": m.text,
        "lang": m.lang,
        "created_at": m.created_at,
        "author_id": m.author.id,
        "author_handle": m.author.handle,
        "author_name": m.author.name,
        "author_followers": m.author.followers,
        "author_description": m.author.description,
        "author_verified": m.author.verified,
        "in_reply_to_id": m.in_reply_to_id,
        "conversation_id": m.conversation_id,
        "likes": None if metrics is None else metrics.likes,
        "reposts": None if metrics is None else metrics.reposts,
        "replies": None if metrics is None else metrics.replies,
        "brands": list(m.brands),
        "label": m.sentiment.label,
        "score": m.sentiment.score,
        "confidence": m.sentiment.confidence,
        "method": m.sentiment.method,
        "lexicon_compound": m.sentiment.lexicon_compound,
        "spot_check": m.spot_check,
        "scored_at": m.scored_at,
        "stored_at": stored_at,
    }


def insert_for(conn: Connection, table: Any) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {conn.dialect.name!r}")


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class MentionWriter:
    """Writes batches of scored mentions; the transaction is owned here, per batch."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def write(self, batch: Sequence[ScoredMention]) -> WriteResult:
        if not batch:
            return WriteResult(0, 0)
        unique: dict[tuple[str, str], ScoredMention] = {}
        for m in batch:
            unique.setdefault(m.key, m)
        stored_at = self._clock.now()
        with self._engine.begin() as conn:
            inserted = self._insert_new(conn, list(unique.values()), stored_at)
            if inserted:
                self._add_to_rollups(conn, rollup_deltas(m for m, _ in inserted))
                self._link_brands(conn, inserted)
        return WriteResult(inserted=len(inserted), duplicates=len(batch) - len(inserted))

    def _insert_new(
        self, conn: Connection, batch: Sequence[ScoredMention], stored_at: datetime
    ) -> list[tuple[ScoredMention, int]]:
        by_key = {m.key: m for m in batch}
        inserted: list[tuple[ScoredMention, int]] = []
        for chunk in _chunks(batch):
            stmt = (
                insert_for(conn, mentions)
                .values([mention_row(m, stored_at) for m in chunk])
                .on_conflict_do_nothing(index_elements=["source", "mention_id"])
                .returning(mentions.c.pk, mentions.c.source, mentions.c.mention_id)
            )
            for pk, source, mention_id in conn.execute(stmt):
                inserted.append((by_key[(source, mention_id)], pk))
        return inserted

    def _link_brands(self, conn: Connection, inserted: Sequence[tuple[ScoredMention, int]]) -> None:
        rows = [
            {"mention_pk": pk, "brand": b, "created_at": m.created_at, "label": m.sentiment.label}
            for m, pk in inserted
            for b in m.brands
        ]
        for chunk in _chunks(rows, 200):
            conn.execute(mention_brands.insert(), list(chunk))

    def _add_to_rollups(self, conn: Connection, deltas: dict[tuple[str, int], RollupDelta]) -> None:
        rows = [
            {
                "brand": brand,
                "minute": minute,
                "mentions": d.mentions,
                "positive": d.positive,
                "neutral": d.neutral,
                "negative": d.negative,
                "score_sum": d.score_sum,
                "reach": d.reach,
                "engagement": d.engagement,
            }
            # Sorted, so concurrent writers lock rollup rows in one order and cannot deadlock.
            for (brand, minute), d in sorted(deltas.items())
        ]
        counters = ("mentions", *_LABEL_COLUMNS, "score_sum", "reach", "engagement")
        for chunk in _chunks(rows, 100):
            stmt = insert_for(conn, brand_minute_rollups).values(list(chunk))
            stmt = stmt.on_conflict_do_update(
                index_elements=["brand", "minute"],
                set_={c: brand_minute_rollups.c[c] + stmt.excluded[c] for c in counters},
            )
            conn.execute(stmt)


def existing_keys(conn: Connection, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these ``(source, id)`` keys are stored already."""
    found: set[tuple[str, str]] = set()
    for chunk in _chunks(keys):
        rows = conn.execute(
            sa_select(mentions.c.source, mentions.c.mention_id).where(
                tuple_(mentions.c.source, mentions.c.mention_id).in_(list(chunk))
            )
        )
        found.update((r[0], r[1]) for r in rows)
    return found
