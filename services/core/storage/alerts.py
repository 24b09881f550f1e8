"""Alert rules and alerts in the database, and the mentions an alert quotes.

``list_alerts`` is the read other features use (executive reports list "alerts and
spikes in the period"); ``store_alert`` is the evaluator's single write: the alert and
its webhook outbox rows in one transaction, at most once per (rule, window);
``negative_mentions_by_reach`` and ``mention_texts`` read a window's mentions for the
alert's top mentions and rising terms.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Row, and_, delete, insert, or_, select, update

from services.core.alerting import AlertKind, RuleParams, severity
from services.core.clock import Clock
from services.core.storage.db import SQLITE_BEGIN, writing
from services.core.storage.errors import NotFoundError
from services.core.storage.tables import alert_rules, alerts, brands, mention_brands, mentions
from services.core.storage.webhooks import enqueue_deliveries
from services.core.storage.writer import insert_for


@dataclass(frozen=True, slots=True)
class AlertRule:
    id: int
    brand: str
    params: RuleParams
    enabled: bool
    created_at: datetime
    updated_at: datetime
    snoozed_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One stored alert; ``doc`` is the ``data`` object of ``schemas/alert.v1.json``."""

    id: int
    rule_id: int
    brand: str
    kind: str
    window_start: datetime
    window_end: datetime
    observed: float
    expected: float
    p_value: float
    created_at: datetime
    doc: dict[str, Any]
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_by_key: str | None = None


@dataclass(frozen=True, slots=True)
class AlertPage:
    items: list[AlertRecord]
    next_cursor: str | None


class InvalidAlertCursorError(ValueError):
    """The pagination cursor was not one this API handed out."""


class AlertRuleStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def create(self, brand: str, params: RuleParams, *, enabled: bool = True) -> AlertRule:
        """Store a rule; ``NotFoundError`` if ``brand`` is not tracked."""
        now = self._clock.now()
        with writing(self._engine) as conn:
            _require_brand(conn, brand)
            rule_id = conn.execute(
                insert(alert_rules).values(
                    brand=brand, enabled=enabled, created_at=now, updated_at=now, **_cols(params)
                )
            ).inserted_primary_key
        assert rule_id is not None
        return AlertRule(int(rule_id[0]), brand, params, enabled, now, now)

    def update(self, rule_id: int, brand: str, params: RuleParams, *, enabled: bool) -> AlertRule:
        now = self._clock.now()
        with writing(self._engine) as conn:
            _require_brand(conn, brand)
            done = conn.execute(
                update(alert_rules)
                .where(alert_rules.c.id == rule_id)
                .values(brand=brand, enabled=enabled, updated_at=now, **_cols(params))
            ).rowcount
        if done == 0:
            raise NotFoundError(f"alert rule {rule_id} does not exist")
        return self.get(rule_id)

    def get(self, rule_id: int) -> AlertRule:
        with self._engine.connect() as conn:
            row = conn.execute(select(alert_rules).where(alert_rules.c.id == rule_id)).first()
        if row is None:
            raise NotFoundError(f"alert rule {rule_id} does not exist")
        return _to_rule(row)

    def list(self, *, brand: str | None = None, enabled_only: bool = False) -> list[AlertRule]:
        stmt = select(alert_rules).order_by(alert_rules.c.id)
        if brand is not None:
            stmt = stmt.where(alert_rules.c.brand == brand)
        if enabled_only:
            stmt = stmt.where(alert_rules.c.enabled.is_(True))
        with self._engine.connect() as conn:
            return [_to_rule(r) for r in conn.execute(stmt)]

    def snooze(self, rule_id: int, until: datetime | None) -> AlertRule:
        """Silence the rule until ``until`` (``None``: unsnooze); ``NotFoundError`` if the
        rule does not exist. The rule's definition, and ``updated_at``, are unchanged."""
        with writing(self._engine) as conn:
            done = conn.execute(
                update(alert_rules).where(alert_rules.c.id == rule_id).values(snoozed_until=until)
            ).rowcount
        if done == 0:
            raise NotFoundError(f"alert rule {rule_id} does not exist")
        return self.get(rule_id)

    def delete(self, rule_id: int) -> None:
        """Delete a rule; the alerts it raised are kept."""
        with writing(self._engine) as conn:
            if conn.execute(delete(alert_rules).where(alert_rules.c.id == rule_id)).rowcount == 0:
                raise NotFoundError(f"alert rule {rule_id} does not exist")


def _require_brand(conn: Connection, brand: str) -> None:
    if conn.execute(select(brands.c.id).where(brands.c.name == brand)).first() is None:
        raise NotFoundError(f"brand {brand!r} is not tracked")


def _cols(p: RuleParams) -> dict[str, Any]:
    return {
        "kind": p.kind.value,
        "window_s": p.window_s,
        "baseline_days": p.baseline_days,
        "sensitivity": p.sensitivity,
        "min_count": p.min_count,
        "warmup_days": p.warmup_days,
        "cooldown_s": p.cooldown_s,
    }


def _to_rule(r: Row[Any]) -> AlertRule:
    params = RuleParams(
        kind=AlertKind(r.kind),
        window_s=r.window_s,
        baseline_days=r.baseline_days,
        sensitivity=r.sensitivity,
        min_count=r.min_count,
        warmup_days=r.warmup_days,
        cooldown_s=r.cooldown_s,
    )
    return AlertRule(
        r.id, r.brand, params, bool(r.enabled), r.created_at, r.updated_at, r.snoozed_until
    )


# --- alerts ------------------------------------------------------------------------------


def alert_exists(conn: Connection, rule_id: int, window_start: datetime) -> bool:
    stmt = select(alerts.c.id).where(
        alerts.c.rule_id == rule_id, alerts.c.window_start == window_start
    )
    return conn.execute(stmt).first() is not None


def alert_within(
    conn: Connection, rule_id: int, window_start: datetime, cooldown: timedelta
) -> bool:
    """Whether the rule has an alert whose window starts within ``cooldown`` of this one
    (the window itself included)."""
    stmt = select(alerts.c.id).where(
        alerts.c.rule_id == rule_id,
        alerts.c.window_start > window_start - cooldown,
        alerts.c.window_start < window_start + max(cooldown, timedelta(seconds=1)),
    )
    return conn.execute(stmt).first() is not None


def store_alert(
    engine: Engine,
    rule: AlertRule,
    window_start: datetime,
    build_doc: Callable[[int, datetime], dict[str, Any]],
    *,
    now: datetime,
    observed: float,
    expected: float,
    p_value: float,
    retry_max_age: timedelta,
) -> AlertRecord | None:
    """Store the alert of ``rule`` for the window starting at ``window_start``, and one
    pending webhook delivery per enabled endpoint subscribed to its event type, in one
    transaction.

    Returns ``None`` (and writes nothing) when that window has its alert already (another
    evaluator, or an earlier run, stored it) or another alert of the rule lies within the
    rule's cooldown. ``build_doc(alert_id, created_at)`` makes the alert's document.
    """
    window_end = window_start + timedelta(seconds=rule.params.window_s)
    cooldown = timedelta(seconds=rule.params.cooldown_s)
    with engine.connect().execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}) as conn, conn.begin():
        # Serialises evaluators on this rule (PostgreSQL; SQLite's IMMEDIATE does it), so the
        # cooldown check below stays true until commit.
        conn.execute(select(alert_rules.c.id).where(alert_rules.c.id == rule.id).with_for_update())
        if alert_within(conn, rule.id, window_start, cooldown):
            return None
        inserted = conn.execute(
            insert_for(conn, alerts)
            .values(
                rule_id=rule.id,
                brand=rule.brand,
                kind=rule.params.kind.value,
                window_start=window_start,
                window_end=window_end,
                observed=observed,
                expected=expected,
                p_value=p_value,
                doc="{}",
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["rule_id", "window_start"])
            .returning(alerts.c.id)
        ).first()
        if inserted is None:
            return None
        alert_id = int(inserted[0])
        doc = build_doc(alert_id, now)
        conn.execute(
            update(alerts).where(alerts.c.id == alert_id).values(doc=orjson.dumps(doc).decode())
        )
        event_type = f"alert.{rule.params.kind.value}"
        envelope = {"type": event_type, "timestamp": now.isoformat(), "data": doc}
        enqueue_deliveries(
            conn,
            alert_id=alert_id,
            event_type=event_type,
            payload=orjson.dumps(envelope),
            now=now,
            give_up_at=now + retry_max_age,
        )
    return AlertRecord(
        alert_id,
        rule.id,
        rule.brand,
        rule.params.kind.value,
        window_start,
        window_end,
        observed,
        expected,
        p_value,
        now,
        doc,
    )


def list_alerts(
    conn: Connection,
    *,
    brand: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str | None = None,
    rule_id: int | None = None,
    limit: int = 1000,
) -> list[AlertRecord]:
    """Alerts whose window starts in ``[since, until)``, newest window first.

    For reports ("alerts and spikes in the period"): each record has the brand, kind,
    window, observed and expected values, the p-value and the full document (top
    mentions, rising terms). At most ``limit`` records.
    """
    return page_alerts(
        conn,
        brand=brand,
        since=since,
        until=until,
        kind=kind,
        rule_id=rule_id,
        limit=limit,
        cursor=None,
    ).items


def page_alerts(
    conn: Connection,
    *,
    brand: str | None,
    since: datetime | None,
    until: datetime | None,
    kind: str | None,
    rule_id: int | None,
    limit: int,
    cursor: str | None,
    acknowledged: bool | None = None,
) -> AlertPage:
    """One page of ``list_alerts``; raises ``InvalidAlertCursorError`` for a bad cursor.
    ``acknowledged``: only the alerts acknowledged (``True``) or not yet (``False``)."""
    a = alerts.c
    stmt = select(alerts)
    if acknowledged is not None:
        stmt = stmt.where(
            a.acknowledged_at.is_not(None) if acknowledged else a.acknowledged_at.is_(None)
        )
    if brand is not None:
        stmt = stmt.where(a.brand == brand)
    if kind is not None:
        stmt = stmt.where(a.kind == kind)
    if rule_id is not None:
        stmt = stmt.where(a.rule_id == rule_id)
    if since is not None:
        stmt = stmt.where(a.window_start >= since)
    if until is not None:
        stmt = stmt.where(a.window_start < until)
    if cursor is not None:
        ts, last_id = _decode_cursor(cursor)
        stmt = stmt.where(or_(a.window_start < ts, and_(a.window_start == ts, a.id < last_id)))
    rows = list(conn.execute(stmt.order_by(a.window_start.desc(), a.id.desc()).limit(limit + 1)))
    items = [_to_alert(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = _encode_cursor(last.window_start, last.id)
    return AlertPage(items, next_cursor)


def acknowledge_alert(
    engine: Engine, alert_id: int, *, by: str, by_key: str, now: datetime
) -> AlertRecord:
    """Record that the key named ``by`` (prefix ``by_key``) acknowledged the alert at
    ``now``, and return the alert. The first acknowledgement is kept: acknowledging again,
    by anyone, changes nothing. ``NotFoundError`` if there is no such alert."""
    a = alerts.c
    with writing(engine) as conn:
        conn.execute(
            update(alerts)
            .where(a.id == alert_id, a.acknowledged_at.is_(None))
            .values(acknowledged_at=now, acknowledged_by=by[:128], acknowledged_by_key=by_key)
        )
        return get_alert(conn, alert_id)


def get_alert(conn: Connection, alert_id: int) -> AlertRecord:
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFoundError(f"alert {alert_id} does not exist")
    return _to_alert(row)


def _to_alert(r: Row[Any]) -> AlertRecord:
    doc = orjson.loads(r.doc)
    # Alerts raised before severities were stored get theirs from the same rule.
    if "severity" not in doc and isinstance(doc.get("rule"), dict):
        doc["severity"] = severity(r.p_value, float(doc["rule"]["sensitivity"])).value
    if r.acknowledged_at is not None:
        doc["acknowledged_at"] = r.acknowledged_at.isoformat()
        doc["acknowledged_by"] = {"name": r.acknowledged_by, "key": r.acknowledged_by_key}
    return AlertRecord(
        id=r.id,
        rule_id=r.rule_id,
        brand=r.brand,
        kind=r.kind,
        window_start=r.window_start,
        window_end=r.window_end,
        observed=r.observed,
        expected=r.expected,
        p_value=r.p_value,
        created_at=r.created_at,
        doc=doc,
        acknowledged_at=r.acknowledged_at,
        acknowledged_by=r.acknowledged_by,
        acknowledged_by_key=r.acknowledged_by_key,
    )


def _encode_cursor(ts: datetime, alert_id: int) -> str:
    raw = orjson.dumps([ts.astimezone(UTC).isoformat(), alert_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, alert_id = orjson.loads(raw)
        when = datetime.fromisoformat(ts)
        if when.tzinfo is None or not isinstance(alert_id, int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as e:
        raise InvalidAlertCursorError("cursor: not a cursor returned by this API") from e
    return when, alert_id


# --- what an alert quotes ---------------------------------------------------------------


def negative_mentions_by_reach(
    conn: Connection, brand: str, start: int, end: int, limit: int
) -> list[tuple[dict[str, Any], int]]:
    """``(stored document, author followers)`` of ``brand``'s negative mentions created in
    ``[start, end)`` (epoch seconds), widest author reach first, at most ``limit``."""
    mb, m = mention_brands.c, mentions.c
    stmt = (
        select(m.doc, m.author_followers)
        .join(mention_brands, mb.mention_pk == m.pk)
        .where(mb.label == "negative", *_in_window(brand, start, end))
        .order_by(m.author_followers.desc(), m.pk)
        .limit(limit)
    )
    return [(orjson.loads(doc), int(followers)) for doc, followers in conn.execute(stmt)]


def mention_texts(
    conn: Connection, brand: str, start: int, end: int, limit: int, *, negative_only: bool = False
) -> list[str]:
    """Texts of ``brand``'s mentions created in ``[start, end)`` (epoch seconds), newest
    first, at most ``limit``."""
    mb, m = mention_brands.c, mentions.c
    stmt = (
        select(m.doc)
        .join(mention_brands, mb.mention_pk == m.pk)
        .where(*_in_window(brand, start, end))
        .order_by(mb.created_at.desc())
        .limit(limit)
    )
    if negative_only:
        stmt = stmt.where(mb.label == "negative")
    return [str(orjson.loads(doc).get("text", "")) for (doc,) in conn.execute(stmt)]


def _in_window(brand: str, start: int, end: int) -> tuple[Any, ...]:
    mb = mention_brands.c
    return (
        mb.brand == brand,
        mb.created_at >= datetime.fromtimestamp(start, UTC),
        mb.created_at < datetime.fromtimestamp(end, UTC),
    )
