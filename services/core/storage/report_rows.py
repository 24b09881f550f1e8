"""What the executive report reads, written by ``MentionWriter`` in the batch's transaction:
per-(brand, hour, author role) rollups, one slim fact row per (mention, brand), and the
facts summed per (brand, day, author).

Only the mentions the transaction really inserted are passed here (as for the brand
rollups), so a redelivered batch adds nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
)

from services.core.authors import author_role, in_conversation
from services.core.models import Mention
from services.core.storage.tables import (
    UTCDateTime,
    brand_author_day_rollups,
    brand_mention_facts,
)
from services.core.storage.verdicts import verdict_toward

if TYPE_CHECKING:
    from services.core.storage.writer import ScoredRecord

HOUR = 3600
DAY = 86_400
COUNTERS = ("mentions", "positive", "neutral", "negative", "reach", "engagement", "conversation")
_FACT_COLUMNS = (
    "brand",
    "created_at",
    "mention_pk",
    "label",
    "author_id",
    "author_role",
    "followers",
    "engagement",
    "replies",
    "language",
)


@dataclass(slots=True)
class RoleCounts:
    mentions: int = 0
    positive: int = 0
    neutral: int = 0
    negative: int = 0
    reach: int = 0
    engagement: int = 0
    conversation: int = 0

    def add(self, other: RoleCounts) -> None:
        for c in COUNTERS:
            setattr(self, c, getattr(self, c) + getattr(other, c))

    def row(self) -> tuple[int, ...]:
        return tuple(getattr(self, c) for c in COUNTERS)


def hour_of(epoch: int) -> int:
    return epoch - epoch % HOUR


def mention_replies(m: Mention) -> int:
    """The platform's reply count (0 when it reported no metrics)."""
    return 0 if m.metrics is None else m.metrics.replies


def mention_role(m: Mention) -> str:
    return author_role(m.author.name, m.author.description).value


def role_rollup_deltas(batch: Iterable[ScoredRecord]) -> dict[tuple[str, int, str], RoleCounts]:
    """Sum a batch into per-(brand, hour, role) increments. Pure."""
    deltas: dict[tuple[str, int, str], RoleCounts] = {}
    for r in batch:
        m = r.mention
        hour = hour_of(int(m.created_at.timestamp()))
        role = mention_role(m)
        talk = in_conversation(m.id, m.in_reply_to_id, m.conversation_id, mention_replies(m))
        for brand in r.brands:
            label = verdict_toward(r, brand).label
            d = deltas.get((brand, hour, role))
            if d is None:
                d = deltas[(brand, hour, role)] = RoleCounts()
            d.mentions += 1
            if label == "positive":
                d.positive += 1
            elif label == "negative":
                d.negative += 1
            elif label == "neutral":  # an unscored mention counts in volume only
                d.neutral += 1
            d.reach += m.author.followers
            d.engagement += m.engagement
            d.conversation += talk
    return deltas


def day_of(epoch: int) -> int:
    return epoch - epoch % DAY


AUTHOR_DAY_COUNTERS = ("mentions", "engagement", "replies", "positive", "negative")
_AUTHOR_DAY_COLUMNS = (
    "brand",
    "day",
    "author_id",
    "author_role",
    "followers",
    *AUTHOR_DAY_COUNTERS,
    "last_pk",
)


def author_day_rows(facts: Iterable[Sequence[object]]) -> list[tuple[object, ...]]:
    """Sum fact rows (``fact_rows`` order) into ``brand_author_day_rollups`` increments,
    in ``_AUTHOR_DAY_COLUMNS`` order, sorted by key (one lock order for concurrent
    writers). Pure."""
    out: dict[tuple[str, int, str], tuple[str, int, int, int, int, int, int, int]] = {}
    for brand, created, pk, label, author_id, role, followers, engagement, replies, _ in facts:
        assert isinstance(created, datetime)
        assert isinstance(pk, int)
        assert isinstance(followers, int)
        assert isinstance(engagement, int)
        assert isinstance(replies, int)
        key = (str(brand), day_of(int(created.timestamp())), str(author_id))
        new = (
            str(role),
            followers,
            1,
            engagement,
            replies,
            int(label == "positive"),
            int(label == "negative"),
            pk,
        )
        old = out.get(key)
        if old is not None:
            new = (
                max(old[0], new[0]),
                max(old[1], new[1]),
                old[2] + new[2],
                old[3] + new[3],
                old[4] + new[4],
                old[5] + new[5],
                old[6] + new[6],
                max(old[7], new[7]),
            )
        out[key] = new
    return [(*k, *v) for k, v in sorted(out.items())]


def refresh_author_day(conn: Connection, brand: str, author_id: str, created: datetime) -> None:
    """Recompute one ``brand_author_day_rollups`` row from the facts (after a relabel
    changed them): a maximum cannot be taken back by subtraction."""
    a, f = brand_author_day_rollups, brand_mention_facts.c
    day = day_of(int(created.timestamp()))
    conn.execute(delete(a).where(a.c.brand == brand, a.c.day == day, a.c.author_id == author_id))
    start = datetime.fromtimestamp(day, UTC)
    grouped = (
        select(
            f.brand,
            cast(literal(day), BigInteger),
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
        .where(
            and_(
                f.brand == brand,
                f.created_at >= start,
                f.created_at < datetime.fromtimestamp(day + DAY, UTC),
                f.author_id == author_id,
            )
        )
        .group_by(f.brand, f.author_id)
    )
    conn.execute(insert(a).from_select(list(_AUTHOR_DAY_COLUMNS), grouped))


def fact_rows(inserted: Iterable[tuple[ScoredRecord, int]]) -> list[tuple[object, ...]]:
    """``brand_mention_facts`` rows, in ``_FACT_COLUMNS`` order (times as aware datetimes)."""
    out: list[tuple[object, ...]] = []
    for r, pk in inserted:
        m = r.mention
        role = mention_role(m)
        replies = mention_replies(m)
        # A record rebuilt from a stored document (a relabel) has it in the document.
        language = r.language if r.language is not None else getattr(m, "language", None)
        for brand in r.brands:
            out.append(
                (
                    brand,
                    m.created_at,
                    pk,
                    verdict_toward(r, brand).label,
                    m.author.id,
                    role,
                    m.author.followers,
                    m.engagement,
                    replies,
                    language,
                )
            )
    return out


_UPSERT_SQL = (
    f"INSERT INTO brand_role_hour_rollups (brand, hour, role, {', '.join(COUNTERS)}) "  # noqa: S608 (our own column names)
    "VALUES ({marks}) ON CONFLICT (brand, hour, role) DO UPDATE SET "
    + ", ".join(f"{c} = brand_role_hour_rollups.{c} + excluded.{c}" for c in COUNTERS)
)
_SQLITE_UPSERT = _UPSERT_SQL.format(marks=", ".join("?" for _ in range(3 + len(COUNTERS))))
_UPSERT = text(
    _UPSERT_SQL.format(marks=", ".join(f":{c}" for c in ("brand", "hour", "role", *COUNTERS)))
)


def _greater(c: str) -> str:
    t = f"brand_author_day_rollups.{c}"
    return f"{c} = CASE WHEN excluded.{c} > {t} THEN excluded.{c} ELSE {t} END"


_AUTHOR_DAY_SQL = (
    f"INSERT INTO brand_author_day_rollups ({', '.join(_AUTHOR_DAY_COLUMNS)}) "  # noqa: S608 (our own column names)
    "VALUES ({marks}) ON CONFLICT (brand, day, author_id) DO UPDATE SET "
    + ", ".join(
        [
            *(_greater(c) for c in ("author_role", "followers", "last_pk")),
            *(f"{c} = brand_author_day_rollups.{c} + excluded.{c}" for c in AUTHOR_DAY_COUNTERS),
        ]
    )
)
_SQLITE_AUTHOR_DAY = _AUTHOR_DAY_SQL.format(marks=", ".join("?" for _ in _AUTHOR_DAY_COLUMNS))
_AUTHOR_DAY = text(_AUTHOR_DAY_SQL.format(marks=", ".join(f":{c}" for c in _AUTHOR_DAY_COLUMNS)))
_FACTS_SQL = f"INSERT INTO brand_mention_facts ({', '.join(_FACT_COLUMNS)}) VALUES ({{marks}})"  # noqa: S608
_SQLITE_FACTS = _FACTS_SQL.format(marks=", ".join("?" for _ in _FACT_COLUMNS))
_FACTS = text(_FACTS_SQL.format(marks=", ".join(f":{c}" for c in _FACT_COLUMNS))).bindparams(
    bindparam("created_at", type_=UTCDateTime())
)


def _sqlite_time(t: object) -> str:
    """As ``UTCDateTime`` stores a time on SQLite (the writer's ``sqlite_timestamp``)."""
    assert isinstance(t, datetime)
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def add_report_rows(
    conn: Connection, inserted: Sequence[tuple[ScoredRecord, int]], *, fast: bool
) -> None:
    """Add the inserted mentions to the hourly role rollups and the facts, in the caller's
    transaction. ``fast``: bind tuples straight to the SQLite driver (the writer's
    single-writer path). Rollup rows are sorted so that concurrent writers lock them in
    one order (no deadlocks)."""
    deltas = sorted(role_rollup_deltas(r for r, _ in inserted).items())
    facts = fact_rows(inserted)
    if not deltas:
        return
    author_days = author_day_rows(facts)
    if fast:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(_SQLITE_UPSERT, [(*k, *d.row()) for k, d in deltas])
            cursor.executemany(_SQLITE_FACTS, [(f[0], _sqlite_time(f[1]), *f[2:]) for f in facts])
            cursor.executemany(_SQLITE_AUTHOR_DAY, author_days)
        finally:
            cursor.close()
        return
    conn.execute(
        _UPSERT,
        [
            {"brand": b, "hour": hour, "role": role, **dict(zip(COUNTERS, d.row(), strict=True))}
            for (b, hour, role), d in deltas
        ],
    )
    conn.execute(_FACTS, [dict(zip(_FACT_COLUMNS, f, strict=True)) for f in facts])
    conn.execute(_AUTHOR_DAY, [dict(zip(_AUTHOR_DAY_COLUMNS, r, strict=True)) for r in author_days])
