"""What the executive report reads. Every total comes from the hourly per-role rollups;
lists of mentions and voices from one range scan of the slim per-(mention, brand) facts
of the period (then ``LIMIT``), and only the few mentions shown are read whole."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, and_, case, exists, func, select
from sqlalchemy.orm import aliased

from services.core.storage.report_rows import COUNTERS, RoleCounts
from services.core.storage.tables import (
    brand_mention_facts,
    brand_role_hour_rollups,
    mention_brands,
    mentions,
)

MAX_TEXT_CHARS = 500  # of a mention's text in the report: enough to read, bounded to mail
MAX_VOICES_SCANNED = 50_000  # authors grouped per request, most followed first


def ts(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def role_totals(
    conn: Connection, names: Sequence[str], start: int, end: int
) -> dict[tuple[str, str], RoleCounts]:
    """Per-(brand, author role) totals over ``[start, end)`` (hour-aligned epoch seconds);
    absent pairs are zeros."""
    r = brand_role_hour_rollups.c
    out: dict[tuple[str, str], RoleCounts] = {}
    if not names:
        return out
    stmt = (
        select(r.brand, r.role, *(func.sum(r[c]) for c in COUNTERS))
        .where(r.brand.in_(list(names)), r.hour >= start, r.hour < end)
        .group_by(r.brand, r.role)
    )
    for brand, role, *values in conn.execute(stmt):
        out[(brand, role)] = RoleCounts(*(int(v) for v in values))
    return out


def brand_series(
    conn: Connection, brand: str, start: int, end: int, interval: int
) -> dict[int, RoleCounts]:
    """Totals of ``brand`` (all roles) per bucket of ``interval`` seconds (a multiple of an
    hour), keyed by the bucket's start; buckets with no mention are absent."""
    r = brand_role_hour_rollups.c
    # Floor, not SQL's truncating %, so hours before 1970 land in the right bucket.
    bucket = r.hour - ((r.hour % interval) + interval) % interval
    stmt = (
        select(bucket.label("bucket"), *(func.sum(r[c]) for c in COUNTERS))
        .where(r.brand == brand, r.hour >= start, r.hour < end)
        .group_by(bucket)
    )
    return {int(b): RoleCounts(*(int(v) for v in values)) for b, *values in conn.execute(stmt)}


@dataclass(frozen=True, slots=True)
class MentionRow:
    pk: int
    source: str
    mention_id: str
    created_at: datetime
    author_handle: str
    followers: int
    engagement: int
    label: str
    score: float
    doc: str
    author_role: str = "other"

    def parsed(self) -> dict[str, Any]:
        try:
            data = orjson.loads(self.doc)
        except orjson.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}


def mention_rows(conn: Connection, ranked: Sequence[tuple[int, str]]) -> list[MentionRow]:
    """The stored mentions of ``ranked`` ``(pk, author role)`` pairs, in that order."""
    if not ranked:
        return []
    m = mentions.c
    rows = {
        row.pk: row
        for row in conn.execute(
            select(
                m.pk,
                m.source,
                m.mention_id,
                m.created_at,
                m.author_handle,
                m.author_followers,
                m.engagement,
                m.label,
                m.score,
                m.doc,
            ).where(m.pk.in_([pk for pk, _ in ranked]))
        )
    }
    out = []
    for pk, role in ranked:
        if (r := rows.get(pk)) is not None:
            out.append(
                MentionRow(
                    pk=r.pk,
                    source=r.source,
                    mention_id=r.mention_id,
                    created_at=r.created_at,
                    author_handle=r.author_handle,
                    followers=r.author_followers,
                    engagement=r.engagement,
                    label=r.label,
                    score=r.score,
                    doc=r.doc,
                    author_role=role,
                )
            )
    return out


def _facts(brand: str, start: int, end: int) -> Any:
    f = brand_mention_facts.c
    return select(f.mention_pk, f.author_role).where(
        f.brand == brand, f.created_at >= ts(start), f.created_at < ts(end)
    )


def top_by_reach(
    conn: Connection, brand: str, start: int, end: int, label: str, limit: int
) -> list[MentionRow]:
    """The ``label`` mentions of ``brand`` with the most-followed authors (then engagement)."""
    f = brand_mention_facts.c
    stmt = (
        _facts(brand, start, end)
        .where(f.label == label)
        .order_by(f.followers.desc(), f.engagement.desc(), f.mention_pk.desc())
        .limit(limit)
    )
    return mention_rows(conn, [(int(pk), str(role)) for pk, role in conn.execute(stmt)])


def unanswered_negative(
    conn: Connection, brand: str, start: int, end: int, min_reach: int, limit: int
) -> list[MentionRow]:
    """Negative mentions by authors with ≥ ``min_reach`` followers that nobody answered:
    the platform counted no reply and no stored mention replies to them."""
    f = brand_mention_facts.c
    reply = aliased(mentions)
    answered = exists().where(
        and_(reply.c.in_reply_to_id == mentions.c.mention_id, reply.c.source == mentions.c.source)
    )
    stmt = (
        _facts(brand, start, end)
        .join(mentions, mentions.c.pk == f.mention_pk)
        .where(f.label == "negative", f.followers >= min_reach, f.replies == 0, ~answered)
        .order_by(f.followers.desc(), f.mention_pk.desc())
        .limit(limit)
    )
    return mention_rows(conn, [(int(pk), str(role)) for pk, role in conn.execute(stmt)])


@dataclass(frozen=True, slots=True)
class VoiceRow:
    author_id: str
    role: str
    followers: int
    mentions: int
    engagement: int
    replies: int
    positive: int
    negative: int
    last_pk: int


def voices(conn: Connection, brand: str, start: int, end: int) -> list[VoiceRow]:
    """Every author of a mention of ``brand`` in the period, with their totals there
    (at most ``MAX_VOICES_SCANNED``, most followed first)."""
    f = brand_mention_facts.c
    stmt = (
        select(
            f.author_id,
            func.max(f.author_role),
            func.max(f.followers),
            func.count(),
            func.sum(f.engagement),
            func.sum(f.replies),
            func.sum(case((f.label == "positive", 1), else_=0)),
            func.sum(case((f.label == "negative", 1), else_=0)),
            func.max(f.mention_pk),
        )
        .where(f.brand == brand, f.created_at >= ts(start), f.created_at < ts(end))
        .group_by(f.author_id)
        .order_by(func.max(f.followers).desc())
        .limit(MAX_VOICES_SCANNED)
    )
    return [
        VoiceRow(str(a), str(r), int(fl), int(n), int(e), int(rp), int(p), int(ng), int(pk))
        for a, r, fl, n, e, rp, p, ng, pk in conn.execute(stmt)
    ]


def docs(conn: Connection, pks: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Stored documents by primary key, parsed (a broken document reads as ``{}``)."""
    if not pks:
        return {}
    out: dict[int, dict[str, Any]] = {}
    for pk, doc in conn.execute(
        select(mentions.c.pk, mentions.c.doc).where(mentions.c.pk.in_(pks))
    ):
        try:
            data = orjson.loads(doc)
        except orjson.JSONDecodeError:
            data = {}
        out[int(pk)] = data if isinstance(data, dict) else {}
    return out


def text_sample(
    conn: Connection, brand: str, start: int, end: int, slices: int, per_slice: int
) -> list[str]:
    """Stored documents of up to ``slices × per_slice`` mentions of ``brand``, the latest
    ``per_slice`` of each of ``slices`` equal slices of the period: spread over the whole
    period, and bounded however many mentions it holds."""
    mb = mention_brands.c
    out: list[str] = []
    step = max(60, (end - start) // slices)
    for s in range(start, end, step):
        stmt = (
            select(mentions.c.doc)
            .join_from(mention_brands, mentions, mentions.c.pk == mb.mention_pk)
            .where(
                mb.brand == brand, mb.created_at >= ts(s), mb.created_at < ts(min(end, s + step))
            )
            .order_by(mb.created_at.desc())
            .limit(per_slice)
        )
        out.extend(d for (d,) in conn.execute(stmt))
    return out
