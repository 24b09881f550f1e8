"""What the executive report reads, written by ``MentionWriter`` in the batch's transaction:
per-(brand, hour, author role) rollups, one slim fact row per (mention, brand), the facts
summed per (brand, day, author), counted per (brand, hour, language) and their peaks per
(brand, day); and
``batch_rows``, which derives those and the writer's brand links and per-minute rollups
from a batch in one pass.

Only the mentions the transaction really inserted are passed here (as for the brand
rollups), so a redelivered batch adds nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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
    literal_column,
    select,
    text,
)

from services.core.authors import author_role, in_conversation
from services.core.models import Mention
from services.core.storage.pg_bulk import insert_unnest
from services.core.storage.sqlite_bulk import insert_rows
from services.core.storage.tables import (
    UTCDateTime,
    brand_author_day_rollups,
    brand_day_peaks,
    brand_language_hour_rollups,
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


def role_day_rows(
    role_hours: Mapping[tuple[str, int, str], Sequence[int]],
) -> list[tuple[Any, ...]]:
    """Per-(brand, hour, role) increments (``COUNTERS`` order) summed per (brand, UTC
    day, role), sorted by key. Pure."""
    days: dict[tuple[str, int, str], list[int]] = {}
    for (brand, hour, role), counts in role_hours.items():
        d = days.get(k := (brand, day_of(hour), role))
        if d is None:
            days[k] = list(counts)
        else:
            for i, c in enumerate(counts):
                d[i] += c
    return [(*k, *v) for k, v in sorted(days.items())]


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


def refresh_language_hour(conn: Connection, brand: str, created: datetime) -> None:
    """Recompute ``brand``'s ``brand_language_hour_rollups`` rows of ``created``'s hour
    from the facts (after a relabel added or removed a fact)."""
    g, f = brand_language_hour_rollups, brand_mention_facts.c
    hour = hour_of(int(created.timestamp()))
    conn.execute(delete(g).where(g.c.brand == brand, g.c.hour == hour))
    language = func.coalesce(f.language, literal_column("''"))
    grouped = (
        select(
            f.brand,
            cast(literal(hour), BigInteger),
            language,
            func.count(),
            func.sum(case((f.label == "unscored", 1), else_=0)),
        )
        .where(
            f.brand == brand,
            f.created_at >= datetime.fromtimestamp(hour, UTC),
            f.created_at < datetime.fromtimestamp(hour + HOUR, UTC),
        )
        .group_by(f.brand, language)
    )
    conn.execute(insert(g).from_select(list(_LANGUAGE_HOUR_COLUMNS), grouped))


def refresh_day_peaks(conn: Connection, brand: str, created: datetime) -> None:
    """Recompute ``brand``'s ``brand_day_peaks`` row of ``created``'s UTC day from the
    facts (after a relabel removed or added one): a maximum cannot be taken back."""
    p, f = brand_day_peaks, brand_mention_facts.c
    day = day_of(int(created.timestamp()))
    conn.execute(delete(p).where(p.c.brand == brand, p.c.day == day))
    grouped = (
        select(
            f.brand,
            cast(literal(day), BigInteger),
            func.max(f.engagement),
            func.max(f.replies),
        )
        .where(
            f.brand == brand,
            f.created_at >= datetime.fromtimestamp(day, UTC),
            f.created_at < datetime.fromtimestamp(day + DAY, UTC),
        )
        .group_by(f.brand)
    )
    conn.execute(insert(p).from_select(list(_DAY_PEAK_COLUMNS), grouped))


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


# Each statement as head and tail around its VALUES: SQLite's fast path puts many rows
# between them (``sqlite_bulk``), SQLAlchemy one row of named parameters.
def _role_rollup_statement(table: str, period: str) -> tuple[str, str]:
    """Head and tail of the additive upsert into a per-(brand, ``period``, role) rollup."""
    head = f"INSERT INTO {table} (brand, {period}, role, {', '.join(COUNTERS)})"
    tail = f"ON CONFLICT (brand, {period}, role) DO UPDATE SET " + ", ".join(
        f"{c} = {table}.{c} + excluded.{c}" for c in COUNTERS
    )
    return head, tail


_ROLE_HOUR_HEAD, _ROLE_HOUR_TAIL = _role_rollup_statement("brand_role_hour_rollups", "hour")
_ROLE_HOUR_MARKS = ", ".join(f":{c}" for c in ("brand", "hour", "role", *COUNTERS))
_UPSERT = text(f"{_ROLE_HOUR_HEAD} VALUES ({_ROLE_HOUR_MARKS}) {_ROLE_HOUR_TAIL}")
_ROLE_DAY_HEAD, _ROLE_DAY_TAIL = _role_rollup_statement("brand_role_day_rollups", "day")
_ROLE_DAY_KEYS = ("brand", "day", "role", *COUNTERS)
_ROLE_DAY = text(
    f"{_ROLE_DAY_HEAD} VALUES ({', '.join(f':{c}' for c in _ROLE_DAY_KEYS)}) {_ROLE_DAY_TAIL}"
)


def _greater(c: str) -> str:
    t = f"brand_author_day_rollups.{c}"
    return f"{c} = CASE WHEN excluded.{c} > {t} THEN excluded.{c} ELSE {t} END"


_AUTHOR_DAY_HEAD = f"INSERT INTO brand_author_day_rollups ({', '.join(_AUTHOR_DAY_COLUMNS)})"
_AUTHOR_DAY_TAIL = "ON CONFLICT (brand, day, author_id) DO UPDATE SET " + ", ".join(
    [
        *(_greater(c) for c in ("author_role", "followers", "last_pk")),
        *(f"{c} = brand_author_day_rollups.{c} + excluded.{c}" for c in AUTHOR_DAY_COUNTERS),
    ]
)
_AUTHOR_DAY = text(
    f"{_AUTHOR_DAY_HEAD} VALUES ({', '.join(f':{c}' for c in _AUTHOR_DAY_COLUMNS)}) "
    + _AUTHOR_DAY_TAIL
)
_FACTS_HEAD = f"INSERT INTO brand_mention_facts ({', '.join(_FACT_COLUMNS)})"
_LANGUAGE_HOUR_COLUMNS = ("brand", "hour", "language", "mentions", "unscored")
_DAY_PEAK_COLUMNS = ("brand", "day", "engagement", "replies")
_DAY_PEAK_HEAD = f"INSERT INTO brand_day_peaks ({', '.join(_DAY_PEAK_COLUMNS)})"
_DAY_PEAK_TAIL = "ON CONFLICT (brand, day) DO UPDATE SET " + ", ".join(
    f"{c} = CASE WHEN excluded.{c} > brand_day_peaks.{c} THEN excluded.{c} "
    f"ELSE brand_day_peaks.{c} END"
    for c in ("engagement", "replies")
)
_DAY_PEAK = text(
    f"{_DAY_PEAK_HEAD} VALUES ({', '.join(f':{c}' for c in _DAY_PEAK_COLUMNS)}) " + _DAY_PEAK_TAIL
)
_LANGUAGE_HOUR_HEAD = (
    f"INSERT INTO brand_language_hour_rollups ({', '.join(_LANGUAGE_HOUR_COLUMNS)})"
)
_LANGUAGE_HOUR_TAIL = "ON CONFLICT (brand, hour, language) DO UPDATE SET " + ", ".join(
    f"{c} = brand_language_hour_rollups.{c} + excluded.{c}" for c in ("mentions", "unscored")
)
_LANGUAGE_HOUR = text(
    f"{_LANGUAGE_HOUR_HEAD} VALUES ({', '.join(f':{c}' for c in _LANGUAGE_HOUR_COLUMNS)}) "
    + _LANGUAGE_HOUR_TAIL
)
# PostgreSQL's path (``pg_bulk``): the columns' types, in the statements' order.
_PG_ROLE_HOUR_TYPES = ("text", "bigint", "text", *("bigint",) * len(COUNTERS))
_PG_FACT_TYPES = (
    "text",
    "timestamp",
    "bigint",
    "text",
    "text",
    "text",
    "bigint",
    "bigint",
    "bigint",
    "text",
)
_PG_AUTHOR_DAY_TYPES = ("text", "bigint", "text", "text", *("bigint",) * 7)
_PG_LANGUAGE_HOUR_TYPES = ("text", "bigint", "text", "bigint", "bigint")
_PG_DAY_PEAK_TYPES = ("text", "bigint", "bigint", "bigint")
_FACTS = text(f"{_FACTS_HEAD} VALUES ({', '.join(f':{c}' for c in _FACT_COLUMNS)})").bindparams(
    bindparam("created_at", type_=UTCDateTime())
)


@dataclass(slots=True)
class BatchRows:
    """Every derived row a batch of inserted mentions adds, summed per key within the
    batch: one upsert per key per batch, whatever the batch's size.

    Times are as ``time_of`` gave them (the SQLite writer's stored text, or the aware
    datetime for SQLAlchemy to bind). Counter lists are in the tables' column order:
    ``minutes`` in ``writer._COUNTERS`` order, ``role_hours`` in ``COUNTERS`` order,
    ``author_days`` as ``author_day_rows`` gives them after the key.
    """

    links: list[tuple[object, ...]] = field(default_factory=list)
    minutes: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    role_hours: dict[tuple[str, int, str], list[int]] = field(default_factory=dict)
    facts: list[tuple[object, ...]] = field(default_factory=list)
    author_days: dict[tuple[str, int, str], list[Any]] = field(default_factory=dict)
    language_hours: dict[tuple[str, int, str], list[int]] = field(default_factory=dict)
    day_peaks: dict[tuple[str, int], list[int]] = field(default_factory=dict)

    def minute_rows(self) -> list[tuple[Any, ...]]:
        """``brand_minute_rollups`` increments, sorted by key (one lock order)."""
        return [(*k, *v) for k, v in sorted(self.minutes.items())]

    def role_hour_rows(self) -> list[tuple[Any, ...]]:
        return [(*k, *v) for k, v in sorted(self.role_hours.items())]

    def role_day_rows(self) -> list[tuple[Any, ...]]:
        """``brand_role_day_rollups`` increments: the role hours summed per (brand, UTC
        day, role), sorted by key."""
        return role_day_rows(self.role_hours)

    def author_day_rows(self) -> list[tuple[Any, ...]]:
        return [(*k, *v) for k, v in sorted(self.author_days.items())]

    def language_hour_rows(self) -> list[tuple[Any, ...]]:
        """``brand_language_hour_rollups`` increments: (brand, hour, language, mentions,
        unscored), sorted by key."""
        return [(*k, *v) for k, v in sorted(self.language_hours.items())]

    def day_peak_rows(self) -> list[tuple[Any, ...]]:
        """``brand_day_peaks`` candidates: (brand, day, engagement, replies), by key."""
        return [(*k, *v) for k, v in sorted(self.day_peaks.items())]


def batch_rows(
    inserted: Iterable[tuple[ScoredRecord, int]], time_of: Callable[[datetime], object]
) -> BatchRows:
    """The brand links, per-minute rollups, per-(hour, role) rollups, facts and author
    days of the inserted mentions, in one pass. Pure.

    The same sums as ``writer.rollup_deltas``, ``role_rollup_deltas``, ``fact_rows`` and
    ``author_day_rows`` (a test holds them equal), added in the same order, so float
    sums are the same to the last bit; each mention's time, role, engagement and
    verdicts are worked out once instead of once per table."""
    out = BatchRows()
    links, facts = out.links, out.facts
    minutes, role_hours, author_days = out.minutes, out.role_hours, out.author_days
    language_hours, day_peaks = out.language_hours, out.day_peaks
    for r, pk in inserted:
        m = r.mention
        author = m.author
        created = m.created_at
        epoch = int(created.timestamp())
        stored_time = time_of(created)
        minute = epoch - epoch % 60
        hour = epoch - epoch % HOUR
        day = epoch - epoch % DAY
        role = mention_role(m)
        replies = mention_replies(m)
        talk = int(in_conversation(m.id, m.in_reply_to_id, m.conversation_id, replies))
        followers = author.followers
        engagement = m.engagement
        author_id = author.id
        # A record rebuilt from a stored document (a relabel) has it in the document.
        language = r.language if r.language is not None else getattr(m, "language", None)
        language_key = language or ""
        for brand in r.brands:
            # Each brand counts the verdict toward itself (issue 16), not the mention's.
            verdict = verdict_toward(r, brand)
            label = verdict.label
            positive = int(label == "positive")
            neutral = int(label == "neutral")
            negative = int(label == "negative")
            links.append((pk, brand, stored_time, label))
            facts.append(
                (
                    brand,
                    stored_time,
                    pk,
                    label,
                    author_id,
                    role,
                    followers,
                    engagement,
                    replies,
                    language,
                )
            )
            # An unscored mention counts in volume only (its score is 0, its label none).
            mk = (brand, minute)
            d = minutes.get(mk)
            if d is None:
                minutes[mk] = [
                    1,
                    positive,
                    neutral,
                    negative,
                    0.0 + verdict.score,
                    followers,
                    engagement,
                ]
            else:
                d[0] += 1
                d[1] += positive
                d[2] += neutral
                d[3] += negative
                d[4] += verdict.score
                d[5] += followers
                d[6] += engagement
            hk = (brand, hour, role)
            h = role_hours.get(hk)
            if h is None:
                role_hours[hk] = [1, positive, neutral, negative, followers, engagement, talk]
            else:
                h[0] += 1
                h[1] += positive
                h[2] += neutral
                h[3] += negative
                h[4] += followers
                h[5] += engagement
                h[6] += talk
            ak = (brand, day, author_id)
            a = author_days.get(ak)
            if a is None:
                author_days[ak] = [role, followers, 1, engagement, replies, positive, negative, pk]
            else:
                a[0] = max(a[0], role)
                a[1] = max(a[1], followers)
                a[2] += 1
                a[3] += engagement
                a[4] += replies
                a[5] += positive
                a[6] += negative
                a[7] = max(a[7], pk)
            lk = (brand, hour, language_key)
            lh = language_hours.get(lk)
            if lh is None:
                language_hours[lk] = [1, int(label == "unscored")]
            else:
                lh[0] += 1
                lh[1] += label == "unscored"
            dk = (brand, day)
            peak = day_peaks.get(dk)
            if peak is None:
                day_peaks[dk] = [engagement, replies]
            else:
                peak[0] = max(peak[0], engagement)
                peak[1] = max(peak[1], replies)
    return out


def add_report_rows(conn: Connection, rows: BatchRows, *, fast: bool, unnest: bool = False) -> None:
    """Add a batch's hourly and daily role rollups, facts and author days (``batch_rows``) in the
    caller's transaction. ``fast``: bind tuples straight to the SQLite driver (the
    writer's single-writer path; the times in ``rows`` are then SQLite's stored text).
    ``unnest``: PostgreSQL, one statement a table with a binary array a column
    (``pg_bulk``; the times in ``rows`` are then naive UTC). Rollup rows are sorted so
    that concurrent writers lock them in one order (no deadlocks)."""
    if not rows.facts:
        return
    role_hours = rows.role_hour_rows()
    role_days = rows.role_day_rows()
    author_days = rows.author_day_rows()
    language_hours = rows.language_hour_rows()
    day_peaks = rows.day_peak_rows()
    if unnest:
        insert_unnest(conn, _ROLE_HOUR_HEAD, _PG_ROLE_HOUR_TYPES, role_hours, _ROLE_HOUR_TAIL)
        insert_unnest(conn, _ROLE_DAY_HEAD, _PG_ROLE_HOUR_TYPES, role_days, _ROLE_DAY_TAIL)
        insert_unnest(conn, _FACTS_HEAD, _PG_FACT_TYPES, rows.facts)
        insert_unnest(conn, _AUTHOR_DAY_HEAD, _PG_AUTHOR_DAY_TYPES, author_days, _AUTHOR_DAY_TAIL)
        insert_unnest(
            conn,
            _LANGUAGE_HOUR_HEAD,
            _PG_LANGUAGE_HOUR_TYPES,
            language_hours,
            _LANGUAGE_HOUR_TAIL,
        )
        insert_unnest(conn, _DAY_PEAK_HEAD, _PG_DAY_PEAK_TYPES, day_peaks, _DAY_PEAK_TAIL)
        return
    if fast:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            insert_rows(cursor, _ROLE_HOUR_HEAD, role_hours, _ROLE_HOUR_TAIL)
            insert_rows(cursor, _ROLE_DAY_HEAD, role_days, _ROLE_DAY_TAIL)
            insert_rows(cursor, _FACTS_HEAD, rows.facts)
            insert_rows(cursor, _AUTHOR_DAY_HEAD, author_days, _AUTHOR_DAY_TAIL)
            insert_rows(cursor, _LANGUAGE_HOUR_HEAD, language_hours, _LANGUAGE_HOUR_TAIL)
            insert_rows(cursor, _DAY_PEAK_HEAD, day_peaks, _DAY_PEAK_TAIL)
        finally:
            cursor.close()
        return
    hour_keys = ("brand", "hour", "role", *COUNTERS)
    conn.execute(_UPSERT, [dict(zip(hour_keys, r, strict=True)) for r in role_hours])
    conn.execute(_ROLE_DAY, [dict(zip(_ROLE_DAY_KEYS, r, strict=True)) for r in role_days])
    conn.execute(_FACTS, [dict(zip(_FACT_COLUMNS, f, strict=True)) for f in rows.facts])
    conn.execute(_AUTHOR_DAY, [dict(zip(_AUTHOR_DAY_COLUMNS, r, strict=True)) for r in author_days])
    conn.execute(
        _LANGUAGE_HOUR,
        [dict(zip(_LANGUAGE_HOUR_COLUMNS, r, strict=True)) for r in language_hours],
    )
    conn.execute(_DAY_PEAK, [dict(zip(_DAY_PEAK_COLUMNS, r, strict=True)) for r in day_peaks])
