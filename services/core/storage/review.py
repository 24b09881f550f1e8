"""The analysts' spot-check queue: claim with a lease, label, skip, undo; and the labels
read back (``labelled_items``; the statistics on them are in ``services.core.accuracy``).

The scorer's writer queues sampled mentions (one item per mention and matched brand) in
the transaction that stores them. Analysts then:

- **claim** the next item: a lease of ``lease`` length, taken with a conditional
  ``UPDATE … WHERE the lease is free or expired`` checked by its row count, so two
  analysts never hold one item at once on SQLite or PostgreSQL, and an abandoned claim
  returns to the queue when its lease runs out;
- **label** it positive, neutral, negative or irrelevant (the brand match was wrong);
- **skip** it (never offered to that analyst again), or **undo** their last label.

A human label overrides the automated one in every aggregate. Aggregates are read from
``brand_minute_rollups`` and ``mention_brands.label``, so each change adjusts them in its
own transaction: the old label −1, the new one +1, and "irrelevant" takes the mention
out of that brand's figures altogether (mentions, labels, score, reach, engagement) and
out of ``mention_brands``. The brand's mean score stays the automated polarity toward
it: an analyst gives a label, not a score. The automated verdict stays on the mention and
on the queue item. Everything here is per (mention, brand): a mention naming two brands
has a verdict toward each (issue 16, ``ScoredMention.sentiment_for``), the item carries
that brand's, and relabelling one brand's item moves only that brand's figures. On an
item labelled by two analysts, the first standing label is the one that counts; the
second only measures agreement.

Every label change is written to ``review_audit`` (who, when, before → after).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from services.core.accuracy import IRRELEVANT, LABELS, Estimate, LabelledItem, labelled_accuracy

# Re-exported for the review API, which reads the items here and reports these statistics.
from services.core.accuracy import review_stats as review_stats
from services.core.adjusted import BrandLabel, LabelledMention, LabelSet, pool_start
from services.core.authors import author_role
from services.core.clock import Clock
from services.core.models import ScoredMention
from services.core.storage.db import SQLITE_BEGIN
from services.core.storage.errors import ConflictError, NotFoundError
from services.core.storage.report_rows import (
    COUNTERS,
    day_of,
    fact_rows,
    refresh_author_day,
    refresh_day_peaks,
    refresh_language_hour,
    role_rollup_deltas,
)
from services.core.storage.tables import (
    brand_mention_facts,
    brand_minute_rollups,
    brand_role_day_rollups,
    brand_role_hour_rollups,
    mention_brands,
    mentions,
    review_audit,
    review_items,
    review_labels,
    review_skips,
)
from services.core.storage.writer import ScoredRecord

ReviewLabel = Literal["positive", "neutral", "negative", "irrelevant"]
# How many candidates one claim tries before it gives up on a busy queue.
_CLAIM_CANDIDATES = 25

ri = review_items
rl = review_labels


@dataclass(frozen=True, slots=True)
class Analyst:
    """Who labels: the API key's id and name."""

    key_id: int
    name: str


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One queue item as an analyst sees it: the mention, the brand under review and the
    automated verdict."""

    id: int
    brand: str
    mention: dict[str, Any]  # the stored scored_mention.v1 document
    auto_label: str
    auto_method: str
    auto_confidence: float
    reason: str
    reviews_required: int
    reviews_done: int
    lease_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Progress:
    open_items: int  # items still needing a label from someone
    labelled_by_you: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    item_id: int
    analyst: str
    action: str
    before: str | None
    after: str | None
    at: datetime


def _minute(ts: datetime) -> int:
    epoch = int(ts.timestamp())
    return epoch - epoch % 60


class ReviewStore:
    """The queue's operations, each one transaction (begun IMMEDIATE on SQLite, so a
    read-then-write never meets another writer's lock half-way)."""

    def __init__(self, engine: Engine, clock: Clock, *, lease: timedelta) -> None:
        if lease <= timedelta(0):
            raise ValueError("lease: must be positive")
        self._engine = engine
        self._clock = clock
        self._lease = lease

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        # SQLite has one write lock, and a connection that finds it taken sleeps in
        # growing steps: analysts' threads in one process would mostly sleep (measured
        # in tests/bench/bench_review.py). They queue on a lock of this process instead.
        with (
            _process_lock(self._engine),
            self._engine.connect().execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}) as conn,
            conn.begin(),
        ):
            yield conn

    # --- the queue ----------------------------------------------------------------------

    def claim(self, analyst: Analyst, brand_order: Sequence[str] = ()) -> ReviewItem | None:
        """Lease the next item this analyst has neither labelled nor skipped; ``None``
        when there is none. An item the analyst holds already is returned again, with
        its lease renewed (a reloaded page gets the same item back). Items of the brands
        in ``brand_order`` come first, in that order (the labels that narrow the widest
        intervals: ``services.core.adjusted.review_order``); oldest first within a brand."""
        now = self._clock.now()
        expires = now + self._lease
        with self._tx() as conn:
            held = conn.execute(
                select(ri.c.id)
                .where(
                    ri.c.lease_key_id == analyst.key_id,
                    ri.c.lease_expires_at > now,
                    ri.c.reviews_done < ri.c.reviews_required,
                )
                .order_by(ri.c.id)
                .limit(1)
            ).scalar()
            if held is not None:
                conn.execute(update(ri).where(ri.c.id == held).values(lease_expires_at=expires))
                return self._item(conn, held)
            order: list[Any] = [ri.c.id]
            if brand_order:
                rank = case(
                    {b: i for i, b in enumerate(brand_order)},
                    value=ri.c.brand,
                    else_=len(brand_order),
                )
                order = [rank, ri.c.id]
            candidates = (
                conn.execute(
                    select(ri.c.id)
                    .where(_open(now), *_untouched_by(analyst))
                    .order_by(*order)
                    .limit(_CLAIM_CANDIDATES)
                )
                .scalars()
                .all()
            )
            for item_id in candidates:
                # Another analyst may have leased it since the select: the condition is
                # checked again by the UPDATE itself, and only one can see a row change.
                taken = conn.execute(
                    update(ri)
                    .where(ri.c.id == item_id, _open(now))
                    .values(lease_key_id=analyst.key_id, lease_expires_at=expires)
                )
                if taken.rowcount == 1:
                    return self._item(conn, item_id)
        return None

    def label(self, analyst: Analyst, item_id: int, label: str) -> None:
        """Record the analyst's label on an item they hold (their lease may have run out,
        as long as nobody else has taken the item since) and release it.

        Raises ``NotFoundError`` for an unknown item, ``ConflictError`` when the analyst
        does not hold it or has labelled it already, ``ValueError`` for a label not in
        ``LABELS``."""
        if label not in LABELS:
            raise ValueError(f"label: {label!r} is not one of {', '.join(LABELS)}")
        now = self._clock.now()
        with self._tx() as conn:
            item = self._get(conn, item_id)
            if self._own_label(conn, analyst, item_id) is not None:
                raise ConflictError(
                    f"item {item_id}: you labelled it already; undo your label to change it"
                )
            released = conn.execute(
                update(ri)
                .where(
                    ri.c.id == item_id,
                    ri.c.lease_key_id == analyst.key_id,
                    ri.c.reviews_done < ri.c.reviews_required,
                )
                .values(
                    reviews_done=ri.c.reviews_done + 1, lease_key_id=None, lease_expires_at=None
                )
            )
            if released.rowcount != 1:
                raise ConflictError(
                    f"item {item_id}: not claimed by you (claim it first; an expired claim "
                    "may have gone to another analyst)"
                )
            before = self._effective(conn, item_id)
            conn.execute(
                insert(rl).values(
                    item_id=item_id, analyst_key_id=analyst.key_id, label=label, labelled_at=now
                )
            )
            self._apply(conn, item, before, self._effective(conn, item_id))
            self._audit(conn, analyst, item_id, "label", None, label, now)

    def skip(self, analyst: Analyst, item_id: int) -> None:
        """Release an item the analyst holds; it is not offered to them again."""
        now = self._clock.now()
        with self._tx() as conn:
            self._get(conn, item_id)
            released = conn.execute(
                update(ri)
                .where(ri.c.id == item_id, ri.c.lease_key_id == analyst.key_id)
                .values(lease_key_id=None, lease_expires_at=None)
            )
            if released.rowcount != 1:
                raise ConflictError(f"item {item_id}: not claimed by you")
            conn.execute(
                insert(review_skips).values(
                    item_id=item_id, analyst_key_id=analyst.key_id, skipped_at=now
                )
            )

    def undo(self, analyst: Analyst) -> tuple[ReviewItem, str]:
        """Withdraw the analyst's most recent standing label, restore the aggregates as
        they were before it, and hand the item back to them (leased, unless another
        analyst holds it now). Returns the item and the label withdrawn; raises
        ``NotFoundError`` when there is nothing to undo, ``ConflictError`` when a
        concurrent undo withdrew the same label."""
        now = self._clock.now()
        with self._tx() as conn:
            last = conn.execute(
                select(rl.c.id, rl.c.item_id, rl.c.label)
                .where(rl.c.analyst_key_id == analyst.key_id)
                .order_by(rl.c.id.desc())
                .limit(1)
            ).first()
            if last is None:
                raise NotFoundError("nothing to undo: you have no label standing")
            label_id, item_id, label = last
            # The item's row first, as label() takes it: on PostgreSQL the two then queue
            # on it instead of locking rollups and the item in opposite orders.
            conn.execute(
                update(ri)
                .where(ri.c.id == item_id, ri.c.reviews_done > 0)
                .values(reviews_done=ri.c.reviews_done - 1)
            )
            before = self._effective(conn, item_id)
            if conn.execute(delete(rl).where(rl.c.id == label_id)).rowcount != 1:
                # A concurrent undo of the same label (a double click) got there first.
                raise ConflictError(f"item {item_id}: that label was withdrawn already")
            self._apply(conn, self._get(conn, item_id), before, self._effective(conn, item_id))
            conn.execute(
                update(ri)
                .where(ri.c.id == item_id, _lease_free(now))
                .values(lease_key_id=analyst.key_id, lease_expires_at=now + self._lease)
            )
            self._audit(conn, analyst, item_id, "undo", label, None, now)
            return self._item(conn, item_id), label

    def progress(self, analyst: Analyst) -> Progress:
        with self._engine.connect() as conn:
            open_items = conn.execute(
                select(func.count())
                .select_from(ri)
                .where(ri.c.reviews_done < ri.c.reviews_required)
            ).scalar_one()
            mine = conn.execute(
                select(func.count()).select_from(rl).where(rl.c.analyst_key_id == analyst.key_id)
            ).scalar_one()
        return Progress(open_items=int(open_items), labelled_by_you=int(mine))

    def audit(self, *, item_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
        """Label changes, newest first."""
        a = review_audit
        stmt = select(a).order_by(a.c.id.desc()).limit(limit)
        if item_id is not None:
            stmt = stmt.where(a.c.item_id == item_id)
        with self._engine.connect() as conn:
            return [
                AuditEntry(r.id, r.item_id, r.analyst_name, r.action, r.before, r.after, r.at)
                for r in conn.execute(stmt)
            ]

    # --- inside a transaction -----------------------------------------------------------

    def _get(self, conn: Connection, item_id: int) -> Any:
        row = conn.execute(select(ri).where(ri.c.id == item_id)).first()
        if row is None:
            raise NotFoundError(f"item {item_id}: no such review item")
        return row

    def _item(self, conn: Connection, item_id: int) -> ReviewItem:
        row = conn.execute(
            select(ri, mentions.c.doc)
            .join(mentions, mentions.c.pk == ri.c.mention_pk)
            .where(ri.c.id == item_id)
        ).one()
        return ReviewItem(
            id=row.id,
            brand=row.brand,
            mention=orjson.loads(row.doc),
            auto_label=row.auto_label,
            auto_method=row.auto_method,
            auto_confidence=row.auto_confidence,
            reason=row.reason,
            reviews_required=row.reviews_required,
            reviews_done=row.reviews_done,
            lease_expires_at=row.lease_expires_at,
        )

    @staticmethod
    def _own_label(conn: Connection, analyst: Analyst, item_id: int) -> str | None:
        label: str | None = conn.execute(
            select(rl.c.label).where(rl.c.item_id == item_id, rl.c.analyst_key_id == analyst.key_id)
        ).scalar()
        return label

    @staticmethod
    def _effective(conn: Connection, item_id: int) -> str | None:
        """The human label that counts for the item: the first standing one."""
        label: str | None = conn.execute(
            select(rl.c.label).where(rl.c.item_id == item_id).order_by(rl.c.id).limit(1)
        ).scalar()
        return label

    def _apply(self, conn: Connection, item: Any, before: str | None, after: str | None) -> None:
        """Move the item's mention in its brand's aggregates from the label that counted
        (``before``, or the automated one when ``None``) to the one that counts now."""
        old = before or item.auto_label
        new = after or item.auto_label
        if old == new:
            return
        m = conn.execute(
            select(
                mentions.c.created_at,
                mentions.c.author_followers,
                mentions.c.engagement,
                mentions.c.doc,
            ).where(mentions.c.pk == item.mention_pk)
        ).one()
        scored = ScoredMention.model_validate_json(m.doc)
        _adjust_report_rows(conn, item, scored, old, new)
        rollup = brand_minute_rollups
        key = and_(rollup.c.brand == item.brand, rollup.c.minute == _minute(m.created_at))
        link = and_(
            mention_brands.c.mention_pk == item.mention_pk, mention_brands.c.brand == item.brand
        )
        changes: dict[str, Any] = {}
        if old != IRRELEVANT:
            changes[old] = rollup.c[old] - 1
        if new != IRRELEVANT:
            changes[new] = rollup.c[new] + 1
        if IRRELEVANT in (old, new):
            sign = -1 if new == IRRELEVANT else 1
            changes["mentions"] = rollup.c.mentions + sign
            # The score the writer summed for this brand: the verdict toward it (issue 16).
            score = scored.sentiment_for(item.brand).score
            changes["score_sum"] = rollup.c.score_sum + sign * score
            changes["reach"] = rollup.c.reach + sign * m.author_followers
            changes["engagement"] = rollup.c.engagement + sign * m.engagement
        conn.execute(update(rollup).where(key).values(**changes))
        if new == IRRELEVANT:
            conn.execute(delete(mention_brands).where(link))
        elif old == IRRELEVANT:
            conn.execute(
                insert(mention_brands).values(
                    mention_pk=item.mention_pk, brand=item.brand, created_at=m.created_at, label=new
                )
            )
        else:
            conn.execute(update(mention_brands).where(link).values(label=new))

    @staticmethod
    def _audit(
        conn: Connection,
        analyst: Analyst,
        item_id: int,
        action: str,
        before: str | None,
        after: str | None,
        at: datetime,
    ) -> None:
        conn.execute(
            insert(review_audit).values(
                item_id=item_id,
                analyst_key_id=analyst.key_id,
                analyst_name=analyst.name,
                action=action,
                before=before,
                after=after,
                at=at,
            )
        )


def _adjust_report_rows(
    conn: Connection, item: Any, scored: ScoredMention, old: str, new: str
) -> None:
    """The executive report's per-(brand, hour, author role) rollups and per-mention facts
    (``report_rows``) follow the human label too, so they keep summing to the brand
    rollups: the same moves as ``_apply``'s, with that module's own arithmetic."""
    counted = old if new == IRRELEVANT else new  # the label of the row taken out or put back
    # The record as the writer saw it for this brand (its verdict toward the brand, from
    # the stored document's sentiment_by_brand), with the label that counts put in.
    verdict = scored.sentiment_for(item.brand).model_copy(update={"label": counted})
    record = ScoredRecord(
        scored,
        (item.brand,),
        scored.sentiment,
        False,
        scored.scored_at,
        b"",
        by_brand={item.brand: verdict},
    )
    [((brand, hour, role), delta)] = role_rollup_deltas([record]).items()
    r, f = brand_role_hour_rollups, brand_mention_facts
    # The hour's row and its day's (brand_role_day_rollups) move together.
    rollups = (
        (r, and_(r.c.brand == brand, r.c.hour == hour, r.c.role == role)),
        (
            d := brand_role_day_rollups,
            and_(d.c.brand == brand, d.c.day == day_of(hour), d.c.role == role),
        ),
    )
    fact = and_(f.c.brand == brand, f.c.mention_pk == item.mention_pk)
    if IRRELEVANT not in (old, new):
        for t, rollup in rollups:
            conn.execute(update(t).where(rollup).values({old: t.c[old] - 1, new: t.c[new] + 1}))
        conn.execute(update(f).where(fact).values(label=new))
        refresh_author_day(conn, brand, scored.author.id, scored.created_at)
        refresh_language_hour(conn, brand, scored.created_at)
        return
    sign = -1 if new == IRRELEVANT else 1
    for t, rollup in rollups:
        conn.execute(
            update(t).where(rollup).values({c: t.c[c] + sign * getattr(delta, c) for c in COUNTERS})
        )
    if sign < 0:
        conn.execute(delete(f).where(fact))
    else:
        [row] = fact_rows([(record, item.mention_pk)])
        conn.execute(insert(f).values(dict(zip((c.name for c in f.columns), row, strict=True))))
    refresh_author_day(conn, brand, scored.author.id, scored.created_at)
    refresh_language_hour(conn, brand, scored.created_at)
    refresh_day_peaks(conn, brand, scored.created_at)


_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _process_lock(engine: Engine) -> AbstractContextManager[Any]:
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _LOCKS_GUARD:
        lock = _LOCKS.get(engine)
        if lock is None:
            lock = _LOCKS[engine] = threading.Lock()
    return lock


def _lease_free(now: datetime) -> Any:
    return or_(ri.c.lease_expires_at.is_(None), ri.c.lease_expires_at <= now)


def _open(now: datetime) -> Any:
    return and_(ri.c.reviews_done < ri.c.reviews_required, _lease_free(now))


def _untouched_by(analyst: Analyst) -> tuple[Any, ...]:
    return (
        ~exists().where(rl.c.item_id == ri.c.id, rl.c.analyst_key_id == analyst.key_id),
        ~exists().where(
            review_skips.c.item_id == ri.c.id, review_skips.c.analyst_key_id == analyst.key_id
        ),
    )


# --- the labels read back ---------------------------------------------------------------


def labelled_items(
    conn: Connection,
    *,
    brands: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[LabelledItem]:
    """Items with at least one human label, optionally of ``brands`` only and of mentions
    created in ``[since, until)``."""
    stmt = (
        select(
            ri.c.id,
            ri.c.brand,
            ri.c.source,
            ri.c.auto_method,
            ri.c.auto_label,
            ri.c.weight,
            rl.c.label,
        )
        .join(rl, rl.c.item_id == ri.c.id)
        .order_by(ri.c.id, rl.c.id)
    )
    timed = since is not None or until is not None
    if timed:
        # The period is checked here, not in SQL: with a range on mentions.created_at the
        # planner walks every mention of the period (121,226 index lookups for 30 days
        # of a 1 M store: ~0.2 s per share-of-voice request, growing with the store) to
        # find the few labelled ones; without it, it walks the labels (a sample) and looks
        # each mention up by its key.
        stmt = stmt.join(mentions, mentions.c.pk == ri.c.mention_pk).add_columns(
            mentions.c.created_at
        )
    if brands is not None:
        stmt = stmt.where(ri.c.brand.in_(list(brands)))
    out: dict[int, tuple[Any, list[str]]] = {}
    for row in conn.execute(stmt):
        if timed and not (
            (since is None or row.created_at >= since) and (until is None or row.created_at < until)
        ):
            continue
        out.setdefault(row.id, (row, []))[1].append(row.label)
    return [
        LabelledItem(r.brand, r.source, r.auto_method, r.auto_label, r.weight, tuple(labels))
        for r, labels in out.values()
    ]


def measured_accuracy(
    conn: Connection,
    *,
    brands: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Estimate | None:
    """The accuracy of the automated sentiment, measured against the analysts' labels,
    that applies to a figure over ``brands`` (all when ``None``) and mentions created in
    ``[since, until)`` (unbounded when ``None``).

    Returns ``Estimate(value, ci95, n)`` — the weighted share of labelled items whose
    automated label the analyst confirmed, its 95 % Wilson interval, and the number of
    labelled items — or ``None`` when no item in scope has a sentiment label yet. For the
    executive report and the analytics endpoints; ``conn`` is any open connection.
    """
    return labelled_accuracy(labelled_items(conn, brands=brands, since=since, until=until))


@dataclass(frozen=True, slots=True)
class LabelledDocument:
    """One labelled review item: a (mention, brand) and the analyst's first label."""

    weight: float  # 1 / the probability the item was sampled with
    label: str  # the first label: the sentiment toward ``brand``, or IRRELEVANT
    doc: str  # the stored scored_mention.v1 document
    brand: str


def labelled_documents(conn: Connection) -> list[LabelledDocument]:
    """Every item with a human label (a mention naming two brands may have two), with
    its first label, in item order."""
    stmt = (
        select(ri.c.id, ri.c.weight, rl.c.label, mentions.c.doc, ri.c.brand)
        .join(rl, rl.c.item_id == ri.c.id)
        .join(mentions, mentions.c.pk == ri.c.mention_pk)
        .order_by(ri.c.id, rl.c.id)
    )
    first: dict[int, LabelledDocument] = {}
    for item_id, weight, label, doc, brand in conn.execute(stmt):
        if item_id not in first:
            first[item_id] = LabelledDocument(float(weight), label, doc, brand)
    return list(first.values())


def labels_for_adjustment(conn: Connection, since: datetime, until: datetime) -> list[BrandLabel]:
    """Every labelled (mention, brand) of mentions created in ``[since, until)``, all
    brands, with the label that counts (the first standing one, as the rollups follow)
    and the author's role (from the report facts; from the stored mention for one found
    irrelevant, whose facts row is gone)."""
    f = brand_mention_facts
    stmt = (
        select(
            ri.c.id,
            ri.c.brand,
            ri.c.mention_pk,
            mentions.c.created_at,
            f.c.author_role,
            ri.c.auto_label,
            ri.c.weight,
            rl.c.label,
        )
        .join(rl, rl.c.item_id == ri.c.id)
        .join(mentions, mentions.c.pk == ri.c.mention_pk)
        .outerjoin(f, and_(f.c.brand == ri.c.brand, f.c.mention_pk == ri.c.mention_pk))
        .where(mentions.c.created_at >= since, mentions.c.created_at < until)
        .order_by(ri.c.id, rl.c.id)
    )
    rows: dict[int, Any] = {}
    for row in conn.execute(stmt):
        rows.setdefault(row.id, row)
    missing = {r.mention_pk for r in rows.values() if r.author_role is None}
    roles: dict[int, str] = {}
    if missing:
        for pk, doc in conn.execute(
            select(mentions.c.pk, mentions.c.doc).where(mentions.c.pk.in_(missing))
        ):
            author = ScoredMention.model_validate_json(doc).author
            roles[pk] = author_role(author.name, author.description).value
    return [
        BrandLabel(
            r.brand,
            _minute(r.created_at),
            LabelledMention(r.auto_label, r.label, float(r.weight)),
            r.author_role if r.author_role is not None else roles.get(r.mention_pk, ""),
        )
        for r in rows.values()
    ]


def adjustment_labels(conn: Connection, start: int, end: int) -> LabelSet:
    """The labels behind the adjusted figures of a range ``[start, end)`` (epoch
    seconds): its own and the pool's (``services.core.adjusted``)."""
    since = datetime.fromtimestamp(pool_start(start, end), UTC)
    return LabelSet.of(labels_for_adjustment(conn, since, datetime.fromtimestamp(end, UTC)), end)
