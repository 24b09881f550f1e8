"""What the executive report reads. Every total comes from the hourly per-role rollups;
the lists of mentions by reach from a walk of the facts' reach index, most followed first
(or, for a period too small for it, one range scan of the period's slim per-(mention,
brand) facts, then ``LIMIT``), and only the few mentions shown are read whole; top voices
from the per-(brand, day, author) rollups of the period's whole days."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.orm import aliased

from services.core.storage.report_rows import COUNTERS, DAY, RoleCounts
from services.core.storage.tables import (
    author_day_followers_index,
    brand_author_day_rollups,
    brand_day_peaks,
    brand_mention_facts,
    brand_role_day_rollups,
    brand_role_hour_rollups,
    facts_reach_index,
    mention_brands,
    mentions,
)

MAX_TEXT_CHARS = 500  # of a mention's text in the report: enough to read, bounded to mail
MAX_VOICES_SCANNED = 50_000  # authors grouped per request, most followed first
TOP_BY_REACH_READ = 4  # rows read at first, per mention listed and label (both labels at once)
UNANSWERED_BATCH = 4  # candidates checked for a reply at first, per unanswered mention listed
# How many of a label's most followed facts are walked in the reach index's order, in
# turn, before the period's own facts are sorted: the first is enough for a period that
# holds a sizeable share of the brand's history, the second for a smaller one.
REACH_WALKS = (2_048, 16_384)
# Likewise, how many of the brand's author days are walked by followers, in turn, before
# the period's own are sorted (top voices' candidates), as multiples of the rows wanted.
VOICE_WALKS = (4, 16)


def ts(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def role_totals(
    conn: Connection, names: Sequence[str], start: int, end: int
) -> dict[tuple[str, str], RoleCounts]:
    """Per-(brand, author role) totals over ``[start, end)`` (hour-aligned epoch seconds);
    absent pairs are zeros. The whole UTC days are summed from the day rollups, the
    partial first and last days from the hour rollups (which the days sum exactly)."""
    out: dict[tuple[str, str], RoleCounts] = {}
    if not names:
        return out
    brands = list(names)
    d, r = brand_role_day_rollups.c, brand_role_hour_rollups.c
    first_day, last_day = _whole_days(start, end)
    parts: list[Any] = [
        select(r.brand, r.role, *(func.sum(r[c]) for c in COUNTERS))
        .where(r.brand.in_(brands), r.hour >= lo, r.hour < hi)
        .group_by(r.brand, r.role)
        for lo, hi in _partial_days(start, end)
    ]
    if first_day < last_day:
        parts.append(
            select(d.brand, d.role, *(func.sum(d[c]) for c in COUNTERS))
            .where(d.brand.in_(brands), d.day >= first_day, d.day < last_day)
            .group_by(d.brand, d.role)
        )
    for stmt in parts:
        for brand, role, *values in conn.execute(stmt):
            counts = RoleCounts(*(int(v) for v in values))
            if (seen := out.get((brand, role))) is None:
                out[(brand, role)] = counts
            else:
                seen.add(counts)
    return out


def brand_series(
    conn: Connection, brand: str, start: int, end: int, interval: int
) -> dict[int, RoleCounts]:
    """Totals of ``brand`` (all roles) per bucket of ``interval`` seconds (a multiple of an
    hour), keyed by the bucket's start; buckets with no mention are absent."""
    r = brand_role_hour_rollups.c
    # Floor, not SQL's truncating %, so hours before 1970 land in the right bucket.
    bucket = r.hour - ((r.hour % interval) + interval) % interval
    # Bigint sums cast back from PostgreSQL's numeric (a Decimal each, read by the driver).
    stmt = (
        select(bucket.label("bucket"), *(cast(func.sum(r[c]), BigInteger) for c in COUNTERS))
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


def score_toward(doc: str, brand: str, score: float) -> float:
    """The score toward ``brand`` in a stored document (its ``sentiment_by_brand``, issue
    16); ``score``, the mention's own, where it has none (or is broken). Pure."""
    try:
        data = orjson.loads(doc)
    except orjson.JSONDecodeError:
        return score
    by_brand = data.get("sentiment_by_brand") if isinstance(data, dict) else None
    verdict = by_brand.get(brand) if isinstance(by_brand, dict) else None
    toward = verdict.get("score") if isinstance(verdict, dict) else None
    return float(toward) if isinstance(toward, int | float) else score


def mention_rows(
    conn: Connection, brand: str, ranked: Sequence[tuple[int, str, str]]
) -> list[MentionRow]:
    """The stored mentions of ``ranked`` ``(pk, author role, label)`` facts of ``brand``,
    in that order: label and score are toward ``brand`` (the facts' label, an analyst's
    once one counts), not the mention's own."""
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
                m.score,
                m.doc,
            ).where(m.pk.in_([pk for pk, _, _ in ranked]))
        )
    }
    out = []
    for pk, role, label in ranked:
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
                    label=label,
                    score=score_toward(r.doc, brand, r.score),
                    doc=r.doc,
                    author_role=role,
                )
            )
    return out


def _facts(brand: str, start: int, end: int) -> Any:
    f = brand_mention_facts.c
    return select(f.mention_pk, f.author_role, f.label).where(
        f.brand == brand, f.created_at >= ts(start), f.created_at < ts(end)
    )


def _reach_walk(brand: str, label: str, n: int) -> Any:
    """The ``n`` first facts of ``brand`` with ``label`` in the reach index's order
    (followers, engagement, pk: all descending), read from the index alone (it holds
    every column read here)."""
    f = brand_mention_facts.c
    return (
        select(f.created_at, f.mention_pk, f.author_role, f.followers, f.engagement, f.replies)
        .where(f.brand == brand, f.label == label)
        .order_by(f.followers.desc(), f.engagement.desc(), f.mention_pk.desc())
        .limit(n)
        # SQLite would scan the period's range by primary key and sort it instead.
        .with_hint(brand_mention_facts, f"INDEXED BY {facts_reach_index.name}", "sqlite")
    )


def _walk_floor(conn: Connection, brand: str, label: str, n: int) -> int | None:
    """The followers of a walk's last (``n``-th) fact; None when the walk holds every
    fact of (brand, label). Every fact with more followers than this is in the walk."""
    walk = _reach_walk(brand, label, 1).with_only_columns(brand_mention_facts.c.followers)
    last = conn.execute(walk.offset(n - 1)).scalar()
    return None if last is None else int(last)


def _walked(brand: str, start: int, end: int, label: str, n: int) -> tuple[Any, Any]:
    """The facts of an ``n``-long walk that lie in the period, and the walk."""
    w = _reach_walk(brand, label, n).subquery()
    stmt = select(w.c.mention_pk, w.c.author_role, w.c.followers).where(
        w.c.created_at >= ts(start), w.c.created_at < ts(end)
    )
    return stmt, w


def _top_by_reach_walked(
    conn: Connection, brand: str, start: int, end: int, label: str, limit: int
) -> list[tuple[int, str, str]] | None:
    """``label``'s first ``limit`` facts of the period by reach, from a walk: its order is
    total and its facts a prefix of every (brand, label) fact in that order, so its first
    ``limit`` in the period are the period's. None when no walk holds that many."""
    for n in REACH_WALKS:
        stmt, w = _walked(brand, start, end, label, n)
        stmt = stmt.order_by(w.c.followers.desc(), w.c.engagement.desc(), w.c.mention_pk.desc())
        rows = conn.execute(stmt.limit(limit)).all()
        if len(rows) == limit:
            return [(int(pk), str(role), label) for pk, role, _ in rows]
    return None


def top_by_reach(
    conn: Connection, brand: str, start: int, end: int, label: str, limit: int
) -> list[MentionRow]:
    """The ``label`` mentions of ``brand`` with the most-followed authors (then engagement)."""
    return top_by_reach_labels(conn, brand, start, end, (label,), limit)[label]


def top_by_reach_labels(
    conn: Connection, brand: str, start: int, end: int, labels: Sequence[str], limit: int
) -> dict[str, list[MentionRow]]:
    """``top_by_reach`` for each of ``labels``, from one scan of the period where it can:
    the most followed rows of all the labels at once, in the same order, hold each label's
    first ``limit`` once they hold ``limit`` of its rows (or every row of the labels)."""
    f = brand_mention_facts.c
    ranked: dict[str, list[tuple[int, str, str]]] = {}
    for label in labels:
        walked = _top_by_reach_walked(conn, brand, start, end, label, limit)
        if walked is not None:
            ranked[label] = walked
    rest = [label for label in labels if label not in ranked]
    if not rest:
        return {label: mention_rows(conn, brand, ranked[label]) for label in labels}
    # A period too small for the walks: its own facts, sorted.
    by_reach = _facts(brand, start, end).order_by(
        f.followers.desc(), f.engagement.desc(), f.mention_pk.desc()
    )
    read = limit * len(rest) * TOP_BY_REACH_READ
    rows = conn.execute(by_reach.where(f.label.in_(rest)).limit(read)).all()
    for label in rest:
        ranked[label] = []
    for pk, role, label in rows:
        if len(ranked[label]) < limit:
            ranked[label].append((int(pk), str(role), str(label)))
    for label in rest:
        if len(ranked[label]) < limit and len(rows) == read:
            # Too few of this label among the rows read: its own read, as before.
            stmt = by_reach.where(f.label == label).limit(limit)
            ranked[label] = [(int(pk), str(role), str(lb)) for pk, role, lb in conn.execute(stmt)]
    return {label: mention_rows(conn, brand, ranked[label]) for label in labels}


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
    candidates = (
        _facts(brand, start, end)
        .where(f.label == "negative", f.followers >= min_reach, f.replies == 0)
        .order_by(f.followers.desc(), f.mention_pk.desc())
    )
    # The most followed candidates first, each joined to its mention and looked up for a
    # reply only among them: doing that for every candidate of the period took most of
    # the query. When the batch holds enough unanswered ones (or every candidate) they are
    # the list; otherwise every candidate is checked as before.
    batch = limit * UNANSWERED_BATCH
    first = _unanswered_walked(conn, brand, start, end, min_reach, batch)
    if first is None:
        first = [
            (int(pk), str(role), str(label))
            for pk, role, label in conn.execute(candidates.limit(batch))
        ]
    unanswered: set[int] = set()
    if first:
        unanswered = set(
            conn.execute(
                select(mentions.c.pk).where(
                    mentions.c.pk.in_([pk for pk, _, _ in first]), ~answered
                )
            ).scalars()
        )
    ranked = [r for r in first if r[0] in unanswered]
    if len(ranked) < limit and len(first) == batch:
        stmt = (
            candidates.join(mentions, mentions.c.pk == f.mention_pk).where(~answered).limit(limit)
        )
        ranked = [(int(pk), str(role), str(label)) for pk, role, label in conn.execute(stmt)]
    return mention_rows(conn, brand, ranked[:limit])


def _unanswered_walked(
    conn: Connection, brand: str, start: int, end: int, min_reach: int, batch: int
) -> list[tuple[int, str, str]] | None:
    """The first ``batch`` negative candidates of the period (followers, then pk, both
    descending), from a walk of the negatives; None when no walk proves them. The
    candidates' order breaks ties on followers by pk, not engagement as the walk does:
    only those with more followers than the walk's last fact are surely all in it."""
    if batch <= 0:
        return []
    for n in REACH_WALKS:
        stmt, w = _walked(brand, start, end, "negative", n)
        stmt = (
            stmt.where(w.c.followers >= min_reach, w.c.replies == 0)
            .order_by(w.c.followers.desc(), w.c.mention_pk.desc())
            .limit(batch)
        )
        rows = conn.execute(stmt).all()
        floor = _walk_floor(conn, brand, "negative", n)
        if floor is None or (len(rows) == batch and int(rows[-1][2]) > floor):
            return [(int(pk), str(role), "negative") for pk, role, _ in rows]
    return None


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
    return [VoiceRow(*row) for row in voice_tuples(conn, brand, start, end)]


def _whole_days(start: int, end: int) -> tuple[int, int]:
    """The period's whole UTC days, ``[first, last)``; ``(end, end)`` when it has none."""
    first_day = start + -start % DAY
    last_day = end - end % DAY
    if first_day >= last_day:
        return end, end
    return first_day, last_day


def _partial_days(start: int, end: int) -> list[tuple[int, int]]:
    """The period's spans outside its whole days (read from the facts)."""
    first_day, last_day = _whole_days(start, end)
    return [(lo, hi) for lo, hi in ((start, first_day), (last_day, end)) if lo < hi]


def _voice_rows(brand: str, start: int, end: int) -> Any:
    """The period's rows per author, one per (whole UTC day, author) from the
    per-(brand, day, author) rollups and one per mention of its partial days from the
    facts, as a subquery with ``VoiceRow``'s columns (``None``: no rows at all)."""
    f, a = brand_mention_facts.c, brand_author_day_rollups.c
    first_day, last_day = _whole_days(start, end)
    parts: list[Any] = [
        select(
            f.author_id.label("author_id"),
            f.author_role.label("role"),
            f.followers.label("followers"),
            literal(1, BigInteger).label("mentions"),
            f.engagement.label("engagement"),
            f.replies.label("replies"),
            case((f.label == "positive", 1), else_=0).label("positive"),
            case((f.label == "negative", 1), else_=0).label("negative"),
            f.mention_pk.label("last_pk"),
        ).where(f.brand == brand, f.created_at >= ts(lo), f.created_at < ts(hi))
        for lo, hi in ((start, first_day), (last_day, end))
        if lo < hi
    ]
    if first_day < last_day:
        parts.append(
            select(
                a.author_id,
                a.author_role.label("role"),
                a.followers,
                a.mentions,
                a.engagement,
                a.replies,
                a.positive,
                a.negative,
                a.last_pk,
            ).where(a.brand == brand, a.day >= first_day, a.day < last_day)
        )
    if not parts:
        return None
    combined: Any = parts[0] if len(parts) == 1 else union_all(*parts)
    return combined.subquery()


def _grouped(rows: Any) -> Any:
    v = rows.c
    return select(
        v.author_id,
        func.max(v.role),
        # PostgreSQL sums bigints as numeric: cast back, so the figures are ints.
        cast(func.max(v.followers), BigInteger),
        cast(func.sum(v.mentions), BigInteger),
        cast(func.sum(v.engagement), BigInteger),
        cast(func.sum(v.replies), BigInteger),
        cast(func.sum(v.positive), BigInteger),
        cast(func.sum(v.negative), BigInteger),
        cast(func.max(v.last_pk), BigInteger),
    ).group_by(v.author_id)


def voice_tuples(conn: Connection, brand: str, start: int, end: int) -> Sequence[Any]:
    """``voices`` as plain rows in ``VoiceRow`` field order (every number an ``int`` on
    both databases), for ranking many authors without an object each."""
    rows = _voice_rows(brand, start, end)
    if rows is None:
        return []
    stmt = _grouped(rows).order_by(func.max(rows.c.followers).desc()).limit(MAX_VOICES_SCANNED)
    return conn.execute(stmt).all()


@dataclass(frozen=True, slots=True)
class VoiceCandidates:
    """The authors with a row of at least ``followers`` followers in the period (as
    ``voice_tuples`` rows): every other author has fewer followers than that, at most
    ``engagement`` engagement and ``replies`` replies per mention (an author's average
    is at most the most one mention of the period had)."""

    rows: Sequence[Any]
    followers: int
    engagement: float
    replies: float


def _top_voice_rows(
    conn: Connection, brand: str, start: int, end: int, n: int
) -> list[tuple[str, int]] | None:
    """The ``n`` most followed voice rows of the period as ``(author, followers)``, most
    followed first (ties in any order); None when a walk cannot give them. The whole
    days' rows are the first ``n`` of the period in a walk of the author days' followers
    index (a prefix of every row of the brand in one total order); the partial days'
    facts are sorted; the two lists merged."""
    first_day, last_day = _whole_days(start, end)
    found: list[tuple[str, int]] = []
    if first_day < last_day:
        a = brand_author_day_rollups.c
        for times in VOICE_WALKS:
            walk = (
                select(a.author_id, a.followers, a.day)
                .where(a.brand == brand)
                .order_by(a.followers.desc(), a.day.desc(), a.author_id.desc())
                .limit(times * n)
                .with_hint(
                    brand_author_day_rollups,
                    f"INDEXED BY {author_day_followers_index.name}",
                    "sqlite",
                )
                .subquery()
            )
            stmt = (
                select(walk.c.author_id, walk.c.followers)
                .where(walk.c.day >= first_day, walk.c.day < last_day)
                .order_by(walk.c.followers.desc(), walk.c.day.desc(), walk.c.author_id.desc())
                .limit(n)
            )
            rows = conn.execute(stmt).all()
            if len(rows) == n:
                found = [(str(x), int(y)) for x, y in rows]
                break
        else:
            return None
    f = brand_mention_facts.c
    for lo, hi in _partial_days(start, end):
        stmt = (
            select(f.author_id, f.followers)
            .where(f.brand == brand, f.created_at >= ts(lo), f.created_at < ts(hi))
            .order_by(f.followers.desc())
            .limit(n)
        )
        found += [(str(x), int(y)) for x, y in conn.execute(stmt)]
    return heapq.nlargest(n, found, key=lambda r: r[1])


def _peaks(conn: Connection, brand: str, start: int, end: int) -> tuple[float, float]:
    """The most engagement and replies one mention of ``brand`` had in the period (its
    whole days' peaks, its partial days' facts): bounds on any author's averages."""
    first_day, last_day = _whole_days(start, end)
    engagement = replies = 0
    parts: list[Any] = []
    if first_day < last_day:
        p = brand_day_peaks.c
        parts.append(
            select(func.max(p.engagement), func.max(p.replies)).where(
                p.brand == brand, p.day >= first_day, p.day < last_day
            )
        )
    f = brand_mention_facts.c
    parts += [
        select(func.max(f.engagement), func.max(f.replies)).where(
            f.brand == brand, f.created_at >= ts(lo), f.created_at < ts(hi)
        )
        for lo, hi in _partial_days(start, end)
    ]
    for stmt in parts:
        e, r = conn.execute(stmt).one()
        engagement = max(engagement, int(e or 0))
        replies = max(replies, int(r or 0))
    return float(engagement), float(replies)


def voice_candidates(
    conn: Connection, brand: str, start: int, end: int, rows_scanned: int
) -> VoiceCandidates | None:
    """The authors of the ``rows_scanned`` most followed rows of the period (all their
    rows grouped) and bounds on every other author; ``None`` when the period holds no
    more rows than that (group them all instead)."""
    rows = _voice_rows(brand, start, end)
    if rows is None:
        return None
    v = rows.c
    # The n + 1 most followed rows give both the cut (the last one's followers) and the
    # authors above it: every row strictly above the cut is among them.
    top = _top_voice_rows(conn, brand, start, end, rows_scanned + 1)
    if top is None:
        top = [
            (str(x), int(y))
            for x, y in conn.execute(
                select(v.author_id, v.followers)
                .order_by(v.followers.desc())
                .limit(rows_scanned + 1)
            )
        ]
    if len(top) <= rows_scanned:
        return None
    # Strictly above the cut: an author left out has every row at or below it.
    cut = top[-1][1] + 1
    authors = list(dict.fromkeys(a for a, followers in top if followers >= cut))
    if not authors:
        return None
    engagement, replies = _peaks(conn, brand, start, end)
    found = conn.execute(_grouped(rows).where(v.author_id.in_(authors))).all()
    return VoiceCandidates(found, cut, engagement, replies)


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
