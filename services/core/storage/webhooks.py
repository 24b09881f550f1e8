"""Webhook endpoints and the delivery outbox.

A delivery row is written in the same transaction as what it announces (an alert) and
is then sent by the delivery worker until it is delivered or given up. Its ``webhook_id``
is fixed when it is written, so every retry, from any process and after any restart,
carries the same Standard Webhooks ``webhook-id`` and receivers can deduplicate on it.
Every attempt is recorded in ``delivery_attempts``.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, update

from services.core.clock import Clock
from services.core.storage.db import writing
from services.core.storage.errors import NotFoundError
from services.core.storage.tables import delivery_attempts, webhook_deliveries, webhook_endpoints

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


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

    def create(self, url: str, event_types: Sequence[str], secret: str | None = None) -> Endpoint:
        now = self._clock.now()
        secret = secret or new_secret()
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
                )
            ).inserted_primary_key
        assert key is not None
        return Endpoint(int(key[0]), url, secret, tuple(event_types), True, None, now, now)

    def get(self, endpoint_id: int) -> Endpoint:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
            ).first()
        if row is None:
            raise NotFoundError(f"webhook {endpoint_id} does not exist")
        return _to_endpoint(row)

    def endpoints(self) -> list[Endpoint]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(webhook_endpoints).order_by(webhook_endpoints.c.id))
            return [_to_endpoint(r) for r in rows]

    def update(
        self,
        endpoint_id: int,
        *,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> Endpoint:
        values: dict[str, Any] = {"updated_at": self._clock.now()}
        if url is not None:
            values["url"] = url
        if event_types is not None:
            values["event_types"] = list(event_types)
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
        """Delete an endpoint with its deliveries and their attempts."""
        with writing(self._engine) as conn:
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
        return [_to_delivery(r, attempts.get(r.id, ())) for r in rows]

    def delivery(self, delivery_id: int) -> Delivery:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
            ).first()
            if row is None:
                raise NotFoundError(f"delivery {delivery_id} does not exist")
            attempts = _attempts_of(conn, [delivery_id])
        return _to_delivery(row, attempts.get(delivery_id, ()))

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
    the caller's transaction. Returns how many were written."""
    endpoints = conn.execute(
        select(webhook_endpoints.c.id, webhook_endpoints.c.event_types).where(
            webhook_endpoints.c.enabled.is_(True)
        )
    )
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
        for endpoint_id, types in endpoints
        if event_type in (types or ())
    ]
    if rows:
        conn.execute(insert(webhook_deliveries), rows)
    return len(rows)


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
    )


def _to_delivery(r: Row[Any], attempts: tuple[Attempt, ...]) -> Delivery:
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
    )
