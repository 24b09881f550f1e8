"""Webhook endpoints and the delivery outbox.

A delivery row is written in the same transaction as what it announces (an alert) and
is then sent by the delivery worker until it is delivered or given up. Its ``webhook_id``
is fixed when it is written, so every retry, from any process and after any restart,
carries the same Standard Webhooks ``webhook-id`` and receivers can deduplicate on it.
Every attempt is recorded in ``delivery_attempts``.

An endpoint is a webhook or a channel (Slack, Microsoft Teams, email): all share the
outbox, its retries and its history; only the sender differs. A channel with
``digest_minutes`` gets no delivery per alert: its alerts wait in ``digest_items`` (written
in the alert's transaction) until ``close_due_digests`` gathers them into one delivery.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import EllipsisType
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, update

from services.core.clock import Clock
from services.core.storage.db import writing
from services.core.storage.errors import NotFoundError
from services.core.storage.tables import (
    delivery_attempts,
    digest_items,
    webhook_deliveries,
    webhook_endpoints,
)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

WEBHOOK = "webhook"
SLACK = "slack"
TEAMS = "teams"
EMAIL = "email"
CHANNEL_KINDS = (SLACK, TEAMS, EMAIL)
KINDS = (WEBHOOK, *CHANNEL_KINDS)
DIGEST_EVENT = "alert.digest"
MAX_DIGEST_ALERTS = 50  # per digest message; the rest go in the next one, due at once


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    url: str
    secret: str
    event_types: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime
    kind: str = WEBHOOK
    config: dict[str, Any] = field(default_factory=dict)  # email: {"to": [addresses]}
    digest_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    started_at: datetime
    duration_s: float
    status_code: int | None
    outcome: str
    error: str | None
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_id: str
    endpoint_id: int
    alert_id: int | None
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    give_up_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    payload: bytes
    attempt_log: tuple[Attempt, ...] = ()
    alert_ids: tuple[int, ...] = ()  # the alert, or every alert a digest carries


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A due delivery this worker holds until ``lease_until`` (then others may retry it)."""

    id: int
    webhook_id: str
    endpoint_id: int
    url: str
    secret: str
    payload: bytes
    attempts: int
    give_up_at: datetime
    kind: str = WEBHOOK
    config: dict[str, Any] = field(default_factory=dict)


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_webhook_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


class WebhookStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    # --- endpoints -----------------------------------------------------------------------

    def create(
        self,
        url: str,
        event_types: Sequence[str],
        secret: str | None = None,
        *,
        kind: str = WEBHOOK,
        config: dict[str, Any] | None = None,
        digest_minutes: int | None = None,
    ) -> Endpoint:
        """Save an endpoint. A webhook gets a signing secret (``secret`` or a new one); a
        channel has none (a chat channel's URL is its secret, an email channel's
        recipients are in ``config``)."""
        if kind not in KINDS:
            raise ValueError(f"unknown endpoint kind {kind!r}")
        now = self._clock.now()
        secret = (secret or new_secret()) if kind == WEBHOOK else ""
        config = dict(config or {})
        with writing(self._engine) as conn:
            key = conn.execute(
                insert(webhook_endpoints).values(
                    url=url,
                    secret=secret,
                    event_types=list(event_types),
                    enabled=True,
                    disabled_reason=None,
                    created_at=now,
                    updated_at=now,
                    kind=kind,
                    config=config,
                    digest_minutes=digest_minutes,
                )
            ).inserted_primary_key
        assert key is not None
        return Endpoint(
            int(key[0]),
            url,
            secret,
            tuple(event_types),
            True,
            None,
            now,
            now,
            kind,
            config,
            digest_minutes,
        )

    def get(self, endpoint_id: int, kinds: Collection[str] | None = None) -> Endpoint:
        """The endpoint; ``NotFoundError`` if there is none, or none of ``kinds``."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
            ).first()
        if row is None or (kinds is not None and row.kind not in kinds):
            noun = "webhook" if kinds is None or WEBHOOK in kinds else "channel"
            raise NotFoundError(f"{noun} {endpoint_id} does not exist")
        return _to_endpoint(row)

    def endpoints(self, kinds: Collection[str] | None = None) -> list[Endpoint]:
        stmt = select(webhook_endpoints).order_by(webhook_endpoints.c.id)
        if kinds is not None:
            stmt = stmt.where(webhook_endpoints.c.kind.in_(list(kinds)))
        with self._engine.connect() as conn:
            return [_to_endpoint(r) for r in conn.execute(stmt)]

    def digest_queued(self, endpoint_id: int) -> int:
        """How many alerts wait for the endpoint's next digest."""
        i = digest_items.c
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(digest_items)
                    .where(i.endpoint_id == endpoint_id, i.delivery_id.is_(None))
                ).scalar_one()
            )

    def update(
        self,
        endpoint_id: int,
        *,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        enabled: bool | None = None,
        config: dict[str, Any] | None = None,
        digest_minutes: int | EllipsisType | None = ...,
    ) -> Endpoint:
        """Change what is given (``digest_minutes=None`` turns the digest off; ``...``
        leaves it). Alerts waiting for a digest still go out in it."""
        values: dict[str, Any] = {"updated_at": self._clock.now()}
        if url is not None:
            values["url"] = url
        if event_types is not None:
            values["event_types"] = list(event_types)
        if config is not None:
            values["config"] = dict(config)
        if not isinstance(digest_minutes, EllipsisType):
            values["digest_minutes"] = digest_minutes
        if enabled is not None:
            values["enabled"] = enabled
            if enabled:
                values["disabled_reason"] = None
        with writing(self._engine) as conn:
            done = conn.execute(
                update(webhook_endpoints)
                .where(webhook_endpoints.c.id == endpoint_id)
                .values(**values)
            ).rowcount
        if done == 0:
            raise NotFoundError(f"webhook {endpoint_id} does not exist")
        return self.get(endpoint_id)

    def delete(self, endpoint_id: int) -> None:
        """Delete an endpoint with its deliveries, their attempts and its digest queue."""
        with writing(self._engine) as conn:
            conn.execute(delete(digest_items).where(digest_items.c.endpoint_id == endpoint_id))
            conn.execute(
                delete(delivery_attempts).where(
                    delivery_attempts.c.delivery_id.in_(
                        select(webhook_deliveries.c.id).where(
                            webhook_deliveries.c.endpoint_id == endpoint_id
                        )
                    )
                )
            )
            conn.execute(
                delete(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
            )
            done = conn.execute(
                delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
            ).rowcount
        if done == 0:
            raise NotFoundError(f"webhook {endpoint_id} does not exist")

    # --- deliveries ----------------------------------------------------------------------

    def deliveries(
        self, endpoint_id: int, *, limit: int = 50, before_id: int | None = None
    ) -> list[Delivery]:
        """The endpoint's deliveries, newest first, each with its attempts (oldest first)."""
        self.get(endpoint_id)
        d = webhook_deliveries.c
        stmt = select(webhook_deliveries).where(d.endpoint_id == endpoint_id)
        if before_id is not None:
            stmt = stmt.where(d.id < before_id)
        with self._engine.connect() as conn:
            rows = list(conn.execute(stmt.order_by(d.id.desc()).limit(limit)))
            attempts = _attempts_of(conn, [r.id for r in rows])
            carried = _digested_alerts(conn, [r.id for r in rows if r.alert_id is None])
        return [_to_delivery(r, attempts.get(r.id, ()), carried.get(r.id, ())) for r in rows]

    def delivery(self, delivery_id: int) -> Delivery:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
            ).first()
            if row is None:
                raise NotFoundError(f"delivery {delivery_id} does not exist")
            attempts = _attempts_of(conn, [delivery_id])
            carried = _digested_alerts(conn, [delivery_id])
        return _to_delivery(row, attempts.get(delivery_id, ()), carried.get(delivery_id, ()))

    def redeliver(self, endpoint_id: int, delivery_id: int, retry_max_age: timedelta) -> Delivery:
        """Send a delivery again now, with the same ``webhook-id`` and a fresh retry budget."""
        now = self._clock.now()
        d = webhook_deliveries.c
        with writing(self._engine) as conn:
            done = conn.execute(
                update(webhook_deliveries)
                .where(d.id == delivery_id, d.endpoint_id == endpoint_id)
                .values(status=PENDING, next_attempt_at=now, give_up_at=now + retry_max_age)
            ).rowcount
        if done == 0:
            raise NotFoundError(f"delivery {delivery_id} of webhook {endpoint_id} does not exist")
        return self.delivery(delivery_id)

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[ClaimedDelivery]:
        """Take up to ``limit`` due deliveries of enabled endpoints for ``lease``.

        Claiming moves ``next_attempt_at`` to the end of the lease with a conditional
        update, so two workers never hold one delivery; a worker that dies mid-send
        leaves it to be retried (same ``webhook_id``) once the lease has passed.
        """
        d, e = webhook_deliveries.c, webhook_endpoints.c
        stmt = (
            select(d.id, d.next_attempt_at)
            .join(webhook_endpoints, e.id == d.endpoint_id)
            .where(d.status == PENDING, d.next_attempt_at <= now, e.enabled.is_(True))
            .order_by(d.next_attempt_at, d.id)
            .limit(limit)
        )
        claimed: list[int] = []
        with writing(self._engine) as conn:
            for delivery_id, seen in list(conn.execute(stmt)):
                got = conn.execute(
                    update(webhook_deliveries)
                    .where(d.id == delivery_id, d.status == PENDING, d.next_attempt_at == seen)
                    .values(next_attempt_at=now + lease)
                ).rowcount
                if got == 1:
                    claimed.append(delivery_id)
            if not claimed:
                return []
            rows = conn.execute(
                select(
                    d.id,
                    d.webhook_id,
                    d.endpoint_id,
                    e.url,
                    e.secret,
                    d.payload,
                    d.attempts,
                    d.give_up_at,
                    e.kind,
                    e.config,
                )
                .join(webhook_endpoints, e.id == d.endpoint_id)
                .where(d.id.in_(claimed))
                .order_by(d.next_attempt_at, d.id)
            )
            return [
                ClaimedDelivery(
                    r.id,
                    r.webhook_id,
                    r.endpoint_id,
                    r.url,
                    r.secret,
                    r.payload.encode(),
                    r.attempts,
                    r.give_up_at,
                    r.kind,
                    dict(r.config or {}),
                )
                for r in rows
            ]

    def record_attempt(
        self,
        delivery_id: int,
        attempt: Attempt,
        *,
        status: str,
        disable_endpoint: tuple[int, str] | None = None,
    ) -> None:
        """Record an attempt and what it decided, in one transaction: the delivery's new
        status and next attempt, and (``(endpoint_id, reason)``) disabling its endpoint."""
        with writing(self._engine) as conn:
            conn.execute(
                insert(delivery_attempts).values(
                    delivery_id=delivery_id,
                    attempt=attempt.attempt,
                    started_at=attempt.started_at,
                    duration_s=attempt.duration_s,
                    status_code=attempt.status_code,
                    outcome=attempt.outcome,
                    error=attempt.error,
                    next_attempt_at=attempt.next_attempt_at,
                )
            )
            values: dict[str, Any] = {
                "status": status,
                "attempts": attempt.attempt,
                "last_error": attempt.error,
            }
            if attempt.next_attempt_at is not None:
                values["next_attempt_at"] = attempt.next_attempt_at
            if status == DELIVERED:
                values["delivered_at"] = attempt.started_at
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(**values)
            )
            if disable_endpoint is not None:
                endpoint_id, reason = disable_endpoint
                conn.execute(
                    update(webhook_endpoints)
                    .where(webhook_endpoints.c.id == endpoint_id)
                    .values(enabled=False, disabled_reason=reason, updated_at=attempt.started_at)
                )

    def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due (for the worker's idle wait)."""
        d = webhook_deliveries.c
        with self._engine.connect() as conn:
            value = conn.execute(
                select(func.min(d.next_attempt_at)).where(d.status == PENDING)
            ).scalar_one()
        return value if isinstance(value, datetime) else None

    def close_due_digests(
        self,
        now: datetime,
        give_up_at: datetime,
        build_payload: Callable[[int, list[bytes]], bytes],
    ) -> list[int]:
        """Gather the alerts of every enabled digest endpoint whose oldest waiting alert
        has waited ``digest_minutes`` into one pending delivery each (up to
        ``MAX_DIGEST_ALERTS``; the rest stay due). ``build_payload(minutes, envelopes)``
        makes the delivery's body from the alerts' envelopes, oldest first. Returns the
        new deliveries' ids.

        Each digest is written in one transaction that also marks its alerts taken, on
        the condition that no other worker took them first (then nothing is written).
        """
        i, e = digest_items.c, webhook_endpoints.c
        with self._engine.connect() as conn:
            waiting = list(
                conn.execute(
                    select(i.endpoint_id, e.digest_minutes, func.min(i.created_at))
                    .join(webhook_endpoints, e.id == i.endpoint_id)
                    .where(
                        i.delivery_id.is_(None),
                        e.enabled.is_(True),
                        e.digest_minutes.is_not(None),
                    )
                    .group_by(i.endpoint_id, e.digest_minutes)
                )
            )
        made: list[int] = []
        for endpoint_id, minutes, oldest in waiting:
            if oldest + timedelta(minutes=minutes) > now:
                continue
            try:
                delivery_id = self._close_digest(
                    endpoint_id, int(minutes), now, give_up_at, build_payload
                )
            except _DigestTaken:
                continue  # another worker took some: its digest carries them
            if delivery_id is not None:
                made.append(delivery_id)
        return made

    def _close_digest(
        self,
        endpoint_id: int,
        minutes: int,
        now: datetime,
        give_up_at: datetime,
        build_payload: Callable[[int, list[bytes]], bytes],
    ) -> int | None:
        i = digest_items.c
        with writing(self._engine) as conn:
            items = list(
                conn.execute(
                    select(i.id, i.payload)
                    .where(i.endpoint_id == endpoint_id, i.delivery_id.is_(None))
                    .order_by(i.created_at, i.id)
                    .limit(MAX_DIGEST_ALERTS)
                )
            )
            if not items:
                return None
            payload = build_payload(int(minutes), [r.payload.encode() for r in items])
            key = conn.execute(
                insert(webhook_deliveries).values(
                    webhook_id=new_webhook_id(),
                    endpoint_id=endpoint_id,
                    alert_id=None,
                    event_type=DIGEST_EVENT,
                    payload=payload.decode(),
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    give_up_at=give_up_at,
                    created_at=now,
                )
            ).inserted_primary_key
            assert key is not None
            delivery_id = int(key[0])
            taken = conn.execute(
                update(digest_items)
                .where(i.id.in_([r.id for r in items]), i.delivery_id.is_(None))
                .values(delivery_id=delivery_id)
            ).rowcount
            if taken != len(items):
                raise _DigestTaken  # rolls this digest back
        return delivery_id


class _DigestTaken(Exception):
    """Another worker closed part of this digest first."""


def enqueue_deliveries(
    conn: Connection,
    *,
    alert_id: int | None,
    event_type: str,
    payload: bytes,
    now: datetime,
    give_up_at: datetime,
) -> int:
    """Write one pending delivery per enabled endpoint subscribed to ``event_type``, in
    the caller's transaction (for an endpoint in digest mode, the alert joins its digest
    queue instead). Returns how many endpoints will hear of it."""
    e = webhook_endpoints.c
    endpoints = [
        (endpoint_id, minutes)
        for endpoint_id, types, minutes in conn.execute(
            select(e.id, e.event_types, e.digest_minutes).where(e.enabled.is_(True))
        )
        if event_type in (types or ())
    ]
    queued = [
        {
            "endpoint_id": endpoint_id,
            "alert_id": alert_id,
            "payload": payload.decode(),
            "created_at": now,
        }
        for endpoint_id, minutes in endpoints
        if minutes is not None and alert_id is not None
    ]
    if queued:
        conn.execute(insert(digest_items), queued)
    rows = [
        {
            "webhook_id": new_webhook_id(),
            "endpoint_id": endpoint_id,
            "alert_id": alert_id,
            "event_type": event_type,
            "payload": payload.decode(),
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "give_up_at": give_up_at,
            "created_at": now,
        }
        for endpoint_id, minutes in endpoints
        if minutes is None or alert_id is None
    ]
    if rows:
        conn.execute(insert(webhook_deliveries), rows)
    return len(rows) + len(queued)


def _digested_alerts(conn: Connection, delivery_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
    if not delivery_ids:
        return {}
    i = digest_items.c
    out: dict[int, list[int]] = {}
    rows = conn.execute(
        select(i.delivery_id, i.alert_id)
        .where(i.delivery_id.in_(list(delivery_ids)))
        .order_by(i.created_at, i.id)
    )
    for delivery_id, alert_id in rows:
        out.setdefault(int(delivery_id), []).append(int(alert_id))
    return {k: tuple(v) for k, v in out.items()}


def _attempts_of(conn: Connection, delivery_ids: Sequence[int]) -> dict[int, tuple[Attempt, ...]]:
    if not delivery_ids:
        return {}
    a = delivery_attempts.c
    out: dict[int, list[Attempt]] = {}
    rows = conn.execute(
        select(delivery_attempts).where(a.delivery_id.in_(list(delivery_ids))).order_by(a.id)
    )
    for r in rows:
        out.setdefault(r.delivery_id, []).append(
            Attempt(
                r.attempt,
                r.started_at,
                r.duration_s,
                r.status_code,
                r.outcome,
                r.error,
                r.next_attempt_at,
            )
        )
    return {k: tuple(v) for k, v in out.items()}


def _to_endpoint(r: Row[Any]) -> Endpoint:
    return Endpoint(
        r.id,
        r.url,
        r.secret,
        tuple(r.event_types or ()),
        bool(r.enabled),
        r.disabled_reason,
        r.created_at,
        r.updated_at,
        r.kind,
        dict(r.config or {}),
        r.digest_minutes,
    )


def _to_delivery(
    r: Row[Any], attempts: tuple[Attempt, ...], carried: tuple[int, ...] = ()
) -> Delivery:
    return Delivery(
        id=r.id,
        webhook_id=r.webhook_id,
        endpoint_id=r.endpoint_id,
        alert_id=r.alert_id,
        event_type=r.event_type,
        status=r.status,
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        give_up_at=r.give_up_at,
        created_at=r.created_at,
        delivered_at=r.delivered_at,
        last_error=r.last_error,
        payload=r.payload.encode(),
        attempt_log=attempts,
        alert_ids=(r.alert_id,) if r.alert_id is not None else carried,
    )
