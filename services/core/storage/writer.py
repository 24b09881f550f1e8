"""The batch writer: stores scored mentions idempotently and keeps rollups in step.

One call is one transaction. A mention whose ``(source, id)`` is stored already is
skipped, and only the mentions this transaction really inserted are added to the
per-minute rollups, so redelivering a batch (at-least-once) changes nothing. If the
transaction fails, nothing of the batch is stored and the caller must not commit the
bus offsets that cover it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite

from services.core.clock import Clock
from services.core.models import BrandSentiment, Mention, Sentiment
from services.core.spotcheck import UNWEIGHTED, SpotCheck
from services.core.storage.analytics import Counts
from services.core.storage.db import SQLITE_BEGIN
from services.core.storage.errors import is_transient, refusal_reason
from services.core.storage.owned import set_aside_owned
from services.core.storage.pg_bulk import insert_unnest
from services.core.storage.report_rows import BatchRows, add_report_rows, batch_rows
from services.core.storage.sqlite_bulk import insert_rows
from services.core.storage.tables import UTCDateTime, mentions, review_items
from services.core.storage.verdicts import verdict_toward

_LABEL_COLUMNS = ("positive", "neutral", "negative")


@dataclass(frozen=True, slots=True)
class ScoredRecord:
    """A scored mention ready to store: the parsed parts queries need, and ``doc``, the
    ``scored_mention.v1`` JSON that is stored and served as it is."""

    mention: Mention
    brands: tuple[str, ...]
    sentiment: Sentiment
    spot_check: bool
    scored_at: datetime
    doc: bytes
    # The sampler's details when ``spot_check``: the mention is queued for analysts.
    spot: SpotCheck | None = None
    # ISO 639-1, as the scorer decided it; None: undetermined.
    language: str | None = None
    # The verdict toward each brand when the mention names several (issue 16); None, or
    # a brand missing from it: that brand gets ``sentiment``.
    by_brand: dict[str, BrandSentiment] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.mention.key

    def sentiment_for(self, brand: str) -> BrandSentiment:
        """The verdict toward ``brand``: what every per-brand figure counts."""
        if self.by_brand is not None and brand in self.by_brand:
            return self.by_brand[brand]
        return BrandSentiment.of(self.sentiment)


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class Refused:
    """A record the database will never take, and the database's reason."""

    record: ScoredRecord
    reason: str


@dataclass(frozen=True, slots=True)
class IsolatedWrite:
    """What ``write_isolating`` stored, and what it set aside."""

    result: WriteResult
    refused: tuple[Refused, ...] = ()


def minute_of(ts: datetime) -> int:
    """Epoch seconds of the start of the minute ``ts`` falls in."""
    epoch = int(ts.timestamp())
    return epoch - epoch % 60


def rollup_deltas(batch: Iterable[ScoredRecord]) -> dict[tuple[str, int], Counts]:
    """Sum a batch into per-(brand, minute) increments. Pure."""
    deltas: dict[tuple[str, int], Counts] = {}
    for r in batch:
        m = r.mention
        minute = minute_of(m.created_at)
        for brand in r.brands:
            # Each brand counts the verdict toward itself (issue 16), not the mention's.
            verdict = verdict_toward(r, brand)
            label, score = verdict.label, verdict.score
            d = deltas.get((brand, minute))
            if d is None:
                d = deltas[(brand, minute)] = Counts()
            d.mentions += 1
            if label == "positive":
                d.positive += 1
            elif label == "negative":
                d.negative += 1
            elif label == "neutral":
                d.neutral += 1
            # An unscored mention counts in volume only (its score is 0).
            d.score_sum += score
            d.reach += m.author.followers
            d.engagement += m.engagement
    return deltas


def mention_row(r: ScoredRecord, stored_at: datetime) -> dict[str, Any]:
    m = r.mention
    return {
        "source": m.source,
        "mention_id": m.id,
        "created_at": m.created_at,
        "author_id": m.author.id,
        "author_handle": m.author.handle,
        "author_followers": m.author.followers,
        "in_reply_to_id": m.in_reply_to_id,
        "conversation_id": m.conversation_id,
        "engagement": m.engagement,
        "label": r.sentiment.label,
        "score": r.sentiment.score,
        "confidence": r.sentiment.confidence,
        "method": r.sentiment.method,
        "spot_check": r.spot_check,
        "scored_at": r.scored_at,
        "stored_at": stored_at,
        "doc": r.doc.decode(),
        "language": r.language,
    }


def review_rows(
    inserted: Sequence[tuple[ScoredRecord, int]], queued_at: datetime
) -> list[dict[str, Any]]:
    """Spot-check queue rows for the inserted mentions sampled for review: one per
    matched brand (a mention matching none has no brand match to check), each with the
    automated verdict toward that brand, the one the analyst is asked about."""
    rows: list[dict[str, Any]] = []
    for r, pk in inserted:
        if not r.spot_check:
            continue
        spot = r.spot or UNWEIGHTED
        for brand in r.brands:
            s = verdict_toward(r, brand)
            rows.append(
                {
                    "mention_pk": pk,
                    "brand": brand,
                    "source": r.mention.source,
                    "auto_label": s.label,
                    "auto_method": s.method,
                    "auto_confidence": s.confidence,
                    "reason": spot.reason,
                    "weight": spot.weight,
                    "reviews_required": spot.reviews_required,
                    "reviews_done": 0,
                    "queued_at": queued_at,
                }
            )
    return rows


def insert_for(conn: Connection, table: Any) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {conn.dialect.name!r}")


_MENTION_COLUMNS = tuple(c.name for c in mentions.columns if c.name != "pk")
_COUNTERS = ("mentions", *_LABEL_COLUMNS, "score_sum", "reach", "engagement")

# Plain SQL, compiled once (SQLAlchemy's ORM-style multi-row VALUES was an order of
# magnitude slower). SQLite's fast path binds plain tuples straight to the driver, many
# rows a statement (``sqlite_bulk``): SQLAlchemy's per-row parameter processing cost more
# than the insert itself. The single writer numbers its rows itself (``pk`` first), so it
# knows each row's key without reading the rows back.
_SQLITE_INSERT_MENTIONS = f"INSERT INTO mentions (pk, {', '.join(_MENTION_COLUMNS)})"
_SQLITE_IGNORE_STORED = "ON CONFLICT (source, mention_id) DO NOTHING"
_UPSERT_ROLLUPS_HEAD = f"INSERT INTO brand_minute_rollups (brand, minute, {', '.join(_COUNTERS)})"
_UPSERT_ROLLUPS_TAIL = "ON CONFLICT (brand, minute) DO UPDATE SET " + ", ".join(
    f"{c} = brand_minute_rollups.{c} + excluded.{c}" for c in _COUNTERS
)
_INSERT_LINKS_HEAD = "INSERT INTO mention_brands (mention_pk, brand, created_at, label)"


def sqlite_timestamp(ts: datetime) -> str:
    """An aware time as ``UTCDateTime`` stores it on SQLite (naive UTC, microseconds)."""
    text = ts.isoformat(" ", "microseconds")
    # Mentions' times are UTC already: cut the offset off rather than convert (half the
    # cost; this runs for every stored mention).
    if text.endswith("+00:00"):
        return text[:-6]
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


TimeT = TypeVar("TimeT")


class BatchTimes(Generic[TimeT]):
    """A time conversion (``sqlite_timestamp``, ``naive_utc``), remembered for one batch's
    records: a mention's time is converted once for its row, its links and its facts.
    Keyed by the time object's identity, which the records keep alive while the batch is
    written: hashing an aware time calls its tzinfo, which costs as much as the lookup
    saves."""

    __slots__ = ("_convert", "_seen")

    def __init__(self, convert: Callable[[datetime], TimeT]) -> None:
        self._convert = convert
        self._seen: dict[int, TimeT] = {}

    def __call__(self, ts: datetime) -> TimeT:
        converted = self._seen.get(id(ts))
        if converted is None:
            converted = self._seen[id(ts)] = self._convert(ts)
        return converted


def _as_bound(ts: datetime) -> datetime:
    """Times for SQLAlchemy to bind (``UTCDateTime`` converts them)."""
    return ts


def naive_utc(ts: datetime) -> datetime:
    """An aware time as a ``timestamp`` column holds it (naive UTC), as ``UTCDateTime``
    binds it: what the PostgreSQL path binds in its arrays."""
    if ts.tzinfo is None:
        raise ValueError("naive datetimes are not stored: give a timezone")
    return ts.astimezone(UTC).replace(tzinfo=None)


def mention_values(
    r: ScoredRecord, stored_at: object, scored_at: object, created_at: object
) -> tuple[object, ...]:
    """``mention_row`` as a tuple in ``_MENTION_COLUMNS`` order, the times as given (as
    the path binds them)."""
    m = r.mention
    s = r.sentiment
    return (
        m.source,
        m.id,
        created_at,
        m.author.id,
        m.author.handle,
        m.author.followers,
        m.in_reply_to_id,
        m.conversation_id,
        m.engagement,
        s.label,
        s.score,
        s.confidence,
        s.method,
        r.spot_check,
        scored_at,
        stored_at,
        r.doc.decode(),
        r.language,
    )


def sqlite_row(
    r: ScoredRecord, stored_at: str, scored_at: str, created_at: str | None = None
) -> tuple[object, ...]:
    """``mention_values`` with SQLite's stored text for times (``sqlite_timestamp``)."""
    created = sqlite_timestamp(r.mention.created_at) if created_at is None else created_at
    return mention_values(r, stored_at, scored_at, created)


# PostgreSQL's path: each statement binds one array a column (``pg_bulk``), the types
# in the columns' order.
_PG_MENTION_TYPES = (
    "text",  # source
    "text",  # mention_id
    "timestamp",  # created_at
    "text",  # author_id
    "text",  # author_handle
    "bigint",  # author_followers
    "text",  # in_reply_to_id
    "text",  # conversation_id
    "bigint",  # engagement
    "text",  # label
    "float8",  # score
    "float8",  # confidence
    "text",  # method
    "boolean",  # spot_check
    "timestamp",  # scored_at
    "timestamp",  # stored_at
    "text",  # doc
    "text",  # language
)
_PG_INSERT_MENTIONS = f"INSERT INTO mentions ({', '.join(_MENTION_COLUMNS)})"
_PG_RETURN_STORED = "ON CONFLICT (source, mention_id) DO NOTHING RETURNING pk, source, mention_id"
_PG_LINK_TYPES = ("bigint", "text", "timestamp", "text")
# brand, minute, then ``_COUNTERS``: mentions, the three labels, score_sum, reach, engagement.
_PG_ROLLUP_TYPES = ("text", "bigint", *("bigint",) * 4, "float8", "bigint", "bigint")


_INSERT_MENTION_BRANDS = text(
    f"{_INSERT_LINKS_HEAD} VALUES (:mention_pk, :brand, :created_at, :label)"
).bindparams(bindparam("created_at", type_=UTCDateTime()))
_UPSERT_ROLLUPS = text(
    f"{_UPSERT_ROLLUPS_HEAD} VALUES (:brand, :minute, {', '.join(':' + c for c in _COUNTERS)}) "
    + _UPSERT_ROLLUPS_TAIL
)


class MentionWriter:
    """Writes batches of scored mentions; the transaction is owned here, per batch.

    Which mentions a batch really inserted decides what goes into the rollups, so it
    must be known exactly. PostgreSQL says so itself (``INSERT … ON CONFLICT DO NOTHING
    RETURNING``), also under concurrent writers. On SQLite the writer begins IMMEDIATE,
    holding the database's single write lock for the whole transaction, so it can number
    the rows itself from the highest key seen at its start: when every row was inserted
    their keys are known, and otherwise the keys above the start are this transaction's.
    That lets it send many rows a statement straight to the driver (``sqlite_bulk``).
    """

    def __init__(self, engine: Engine, clock: Clock, *, use_returning: bool | None = None) -> None:
        self._engine = engine
        self._clock = clock
        self._use_returning = (
            engine.dialect.name != "sqlite" if use_returning is None else use_returning
        )
        # PostgreSQL binds each table's rows as one array a column (``pg_bulk``).
        self._unnest = self._use_returning and engine.dialect.name == "postgresql"

    def write(self, batch: Sequence[ScoredRecord]) -> WriteResult:
        if not batch:
            return WriteResult(0, 0)
        unique: dict[tuple[str, str], ScoredRecord] = {}
        for m in batch:
            unique.setdefault(m.key, m)
        stored_at = self._clock.now()
        records = list(unique.values())
        times = BatchTimes(sqlite_timestamp)
        naive = BatchTimes(naive_utc)
        with (
            self._engine.connect().execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}) as conn,
            conn.begin(),
        ):
            if self._unnest:
                inserted = self._insert_postgres(conn, records, stored_at, naive)
            elif self._use_returning:
                inserted = self._insert_returning(conn, records, stored_at)
            else:
                inserted = self._insert_single_writer(conn, records, stored_at, times)
            # A brand's own accounts' mentions: stored and flagged, counted only for the
            # other brands they name (services/core/storage/owned.py).
            counted = set_aside_owned(conn, inserted) if inserted else inserted
            # Every derived row in one pass, summed per key over the whole batch.
            rows = batch_rows(
                counted, naive if self._unnest else _as_bound if self._use_returning else times
            )
            if counted and self._unnest:
                self._postgres_rollups_and_links(conn, rows)
            elif counted and self._use_returning:
                self._add_to_rollups(conn, rows)
                self._link_brands(conn, rows)
            elif counted:
                self._sqlite_rollups_and_links(conn, rows)
            # Only mentions this transaction inserted are queued: a redelivery queues nothing.
            if queue := review_rows(counted, stored_at):
                stmt = insert_for(conn, review_items).on_conflict_do_nothing(
                    index_elements=["mention_pk", "brand"]
                )
                conn.execute(stmt, queue)
            add_report_rows(conn, rows, fast=not self._use_returning, unnest=self._unnest)
        return WriteResult(inserted=len(inserted), duplicates=len(batch) - len(inserted))

    def write_isolating(self, batch: Sequence[ScoredRecord]) -> IsolatedWrite:
        """``write``, but a batch the database refuses is bisected until the records it
        refuses are found: those are returned with its reason, the rest are stored.

        Raises what ``write`` raises when the error is transient (``is_transient``: the
        database away or busy), so that the caller retries the whole batch later; a
        deterministic refusal never loops. A batch with k refused records costs about
        2·k·log2(n) extra transactions, paid only when something is refused.
        """
        try:
            return IsolatedWrite(self.write(batch))
        except Exception as e:
            if is_transient(e):
                raise
            if len(batch) == 1:
                return IsolatedWrite(WriteResult(0, 0), (Refused(batch[0], refusal_reason(e)),))
        half = len(batch) // 2
        first = self.write_isolating(batch[:half])
        second = self.write_isolating(batch[half:])
        return IsolatedWrite(
            WriteResult(
                first.result.inserted + second.result.inserted,
                first.result.duplicates + second.result.duplicates,
            ),
            first.refused + second.refused,
        )

    def _insert_postgres(
        self,
        conn: Connection,
        batch: Sequence[ScoredRecord],
        stored_at: datetime,
        times: BatchTimes[datetime],
    ) -> list[tuple[ScoredRecord, int]]:
        by_key = {m.key: m for m in batch}
        stored = naive_utc(stored_at)
        # A chunk is scored at one instant: convert each distinct scoring time once.
        scored = {t: naive_utc(t) for t in {m.scored_at for m in batch}}
        rows = [
            mention_values(m, stored, scored[m.scored_at], times(m.mention.created_at))
            for m in batch
        ]
        result = insert_unnest(
            conn, _PG_INSERT_MENTIONS, _PG_MENTION_TYPES, rows, _PG_RETURN_STORED
        )
        assert result is not None  # a batch is never empty here
        return [(by_key[(source, mention_id)], pk) for pk, source, mention_id in result]

    def _insert_returning(
        self, conn: Connection, batch: Sequence[ScoredRecord], stored_at: datetime
    ) -> list[tuple[ScoredRecord, int]]:
        by_key = {m.key: m for m in batch}
        stmt = (
            insert_for(conn, mentions)
            .on_conflict_do_nothing(index_elements=["source", "mention_id"])
            .returning(mentions.c.pk, mentions.c.source, mentions.c.mention_id)
        )
        rows = conn.execute(stmt, [mention_row(m, stored_at) for m in batch])
        return [(by_key[(source, mention_id)], pk) for pk, source, mention_id in rows]

    def _insert_single_writer(
        self,
        conn: Connection,
        batch: Sequence[ScoredRecord],
        stored_at: datetime,
        times: BatchTimes[str],
    ) -> list[tuple[ScoredRecord, int]]:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            # The write lock is held from BEGIN IMMEDIATE: no other writer numbers rows
            # until this transaction ends, so the keys above ``before`` are this batch's.
            cursor.execute("SELECT coalesce(max(pk), 0) FROM mentions")
            (before,) = cursor.fetchone()
            stored = sqlite_timestamp(stored_at)
            # A chunk is scored at one instant: format each distinct scoring time once.
            scored = {t: sqlite_timestamp(t) for t in {m.scored_at for m in batch}}
            values = [
                (
                    before + i,
                    *sqlite_row(m, stored, scored[m.scored_at], times(m.mention.created_at)),
                )
                for i, m in enumerate(batch, start=1)
            ]
            if insert_rows(cursor, _SQLITE_INSERT_MENTIONS, values, _SQLITE_IGNORE_STORED) == len(
                values
            ):
                return [(m, before + i) for i, m in enumerate(batch, start=1)]
            # Some were stored already (a redelivery): the keys that were taken are theirs.
            cursor.execute("SELECT pk FROM mentions WHERE pk > ? ORDER BY pk", (before,))
            return [(batch[pk - before - 1], pk) for (pk,) in cursor.fetchall()]
        finally:
            cursor.close()

    def _postgres_rollups_and_links(self, conn: Connection, rows: BatchRows) -> None:
        # Sorted (``minute_rows``), so concurrent writers lock rollup rows in one order
        # and cannot deadlock; ``unnest`` keeps the order.
        insert_unnest(
            conn, _UPSERT_ROLLUPS_HEAD, _PG_ROLLUP_TYPES, rows.minute_rows(), _UPSERT_ROLLUPS_TAIL
        )
        insert_unnest(conn, _INSERT_LINKS_HEAD, _PG_LINK_TYPES, rows.links)

    def _sqlite_rollups_and_links(self, conn: Connection, rows: BatchRows) -> None:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            insert_rows(cursor, _UPSERT_ROLLUPS_HEAD, rows.minute_rows(), _UPSERT_ROLLUPS_TAIL)
            insert_rows(cursor, _INSERT_LINKS_HEAD, rows.links)
        finally:
            cursor.close()

    def _link_brands(self, conn: Connection, rows: BatchRows) -> None:
        keys = ("mention_pk", "brand", "created_at", "label")
        conn.execute(_INSERT_MENTION_BRANDS, [dict(zip(keys, r, strict=True)) for r in rows.links])

    def _add_to_rollups(self, conn: Connection, rows: BatchRows) -> None:
        keys = ("brand", "minute", *_COUNTERS)
        # Sorted, so concurrent writers lock rollup rows in one order and cannot deadlock.
        conn.execute(_UPSERT_ROLLUPS, [dict(zip(keys, r, strict=True)) for r in rows.minute_rows()])
