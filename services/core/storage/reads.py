"""Reading stored mentions back: filters and keyset (cursor) pagination, newest first."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, and_, or_, select

from services.core.models import BrandSentiment, ScoredMention
from services.core.storage.tables import mention_brands, mentions


class InvalidCursorError(ValueError):
    """The pagination cursor was not one this API handed out."""


@dataclass(frozen=True, slots=True)
class MentionFilter:
    brand: str | None = None
    label: str | None = None
    source: str | None = None
    language: str | None = None  # ISO 639-1, as stored
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class MentionPage:
    # As served (``brand_view``): every item with its verdict toward each matched brand.
    items: list[ScoredMention]
    next_cursor: str | None


def encode_cursor(created_at: datetime, pk: int) -> str:
    raw = orjson.dumps([created_at.astimezone(UTC).isoformat(), pk])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, pk = orjson.loads(raw)
        created_at = datetime.fromisoformat(ts)
        if created_at.tzinfo is None or not isinstance(pk, int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as e:
        raise InvalidCursorError("cursor: not a cursor returned by this API") from e
    return created_at, pk


def row_to_scored(row: Any) -> ScoredMention:
    return ScoredMention.model_validate_json(row.doc)


def brand_view(mention: ScoredMention, brand: str | None = None) -> ScoredMention:
    """``mention`` as the mentions API serves it: ``sentiment_by_brand`` holds a verdict
    for every matched brand (a brand the document has none for, as in every document
    stored before issue 16, gets the mention's own, ``targeted`` false); with ``brand``,
    ``sentiment`` is the verdict toward that brand (label, score, confidence and method;
    the lexicon's compound, the model version and the fallback flag stay the mention's).
    Pure."""
    by_brand = dict(mention.sentiment_by_brand or {})
    for b in mention.brands:
        by_brand.setdefault(b, BrandSentiment.of(mention.sentiment))
    update: dict[str, Any] = {"sentiment_by_brand": by_brand}
    if brand is not None:
        toward = mention.sentiment_for(brand)
        update["sentiment"] = mention.sentiment.model_copy(
            update={
                "label": toward.label,
                "score": toward.score,
                "confidence": toward.confidence,
                "method": toward.method,
            }
        )
    return mention.model_copy(update=update)


def list_mentions(
    conn: Connection, flt: MentionFilter, *, limit: int, cursor: str | None
) -> MentionPage:
    """One page of mentions matching ``flt``, newest first, each as ``brand_view`` gives
    it for ``flt.brand``; raises ``InvalidCursorError``. With a brand, ``flt.label`` is
    the label toward that brand (``mention_brands.label``, an analyst's once one counts);
    without, the mention's own."""
    m = mentions.c
    if flt.brand is not None:
        mb = mention_brands.c
        ts_col, pk_col = mb.created_at, mb.mention_pk
        stmt = (
            select(mentions)
            .join(mention_brands, mb.mention_pk == m.pk)
            .where(mb.brand == flt.brand)
        )
        if flt.label is not None:
            stmt = stmt.where(mb.label == flt.label)
    else:
        ts_col, pk_col = m.created_at, m.pk
        stmt = select(mentions)
        if flt.label is not None:
            stmt = stmt.where(m.label == flt.label)
    if flt.source is not None:
        stmt = stmt.where(m.source == flt.source)
    if flt.language is not None:
        stmt = stmt.where(m.language == flt.language)
    if flt.start is not None:
        stmt = stmt.where(ts_col >= flt.start)
    if flt.end is not None:
        stmt = stmt.where(ts_col < flt.end)
    if cursor is not None:
        c_ts, c_pk = decode_cursor(cursor)
        stmt = stmt.where(or_(ts_col < c_ts, and_(ts_col == c_ts, pk_col < c_pk)))
    stmt = stmt.order_by(ts_col.desc(), pk_col.desc()).limit(limit + 1)
    rows = list(conn.execute(stmt))
    items = [brand_view(row_to_scored(r), flt.brand) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last.created_at, last.pk)
    return MentionPage(items=items, next_cursor=next_cursor)
