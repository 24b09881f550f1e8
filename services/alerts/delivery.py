"""The delivery worker: sends the outbox — webhooks signed per Standard Webhooks v1, and
the Slack, Microsoft Teams and email channels (``services.alerts.channels``).

Each pass claims the due deliveries (a lease, so several workers never send one
delivery at once), POSTs each body with ``webhook-id`` (fixed per delivery: the same on
every retry, after any restart), ``webhook-timestamp`` and ``webhook-signature`` (made by
the ``standardwebhooks`` library), and records the attempt with what it decided:

* 2xx: delivered.
* 410 Gone: the endpoint is disabled (the receiver said it will never want these).
* anything else (other status, redirect — never followed —, timeout, connection error,
  an address the URL policy refuses): retried after an exponential backoff with jitter,
  or after ``Retry-After`` when the receiver sent one (429/503), until ``give_up_at``
  (default 24 hours after the alert), after which the delivery is given up.

A channel is held to the same outbox, schedule and history, with two differences: a chat
channel answering 403, 404 or 410 is disabled (Slack and Teams answer so when the incoming
webhook was removed or revoked), and one answering another 4xx than 408/429 — or an SMTP
server refusing with a 5xx reply — gives that delivery up at once ("rejected": retrying
the same message cannot help). Each pass first gathers the alerts waiting for a digest
whose time has come into one delivery per channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from services.alerts.channels import ChatSender, SendResult, parse_retry_after, send_email
from services.alerts.messages import digest_envelope, email_message, slack_message, teams_message
from services.alerts.settings import AlertSettings
from services.core.clock import Clock, SystemClock
from services.core.metrics import Metrics
from services.core.storage.webhooks import (
    DELIVERED,
    EMAIL,
    FAILED,
    PENDING,
    SLACK,
    TEAMS,
    WEBHOOK,
    Attempt,
    ClaimedDelivery,
    WebhookStore,
)
from services.core.urls import (
    Resolver,
    WebhookUrlError,
    check_webhook_url,
    pinned_request,
    resolve_host,
)

log = logging.getLogger(__name__)

USER_AGENT = "Sentimon-Webhooks/1"
MAX_ERROR_CHARS = 500
CHAT_GONE = frozenset({401, 403, 404, 410})  # the incoming webhook was removed or revoked
RETRYABLE_4XX = frozenset({408, 429})

__all__ = ["DeliveryWorker", "backoff_delay", "decide", "parse_retry_after", "sign_headers"]


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str  # delivered | retrying | gave_up | endpoint_gone | refused
    status: str  # the delivery's new status
    next_attempt_at: datetime | None
    disable_reason: str | None = None


def backoff_delay(attempt: int, base_s: float, max_s: float, jitter: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    The ceiling doubles with every attempt (``base_s · 2^(attempt−1)``, capped at
    ``max_s``) and the wait is drawn from its upper half (``jitter`` in [0, 1)): receivers
    coming back are not hit by every sender at once, and each wait is still at least as
    long as the one before.
    """
    ceiling = min(max_s, base_s * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + ceiling / 2 * jitter


def decide(
    *,
    status_code: int | None,
    retry_after_s: float | None,
    attempt: int,
    now: datetime,
    give_up_at: datetime,
    settings: AlertSettings,
    jitter: float,
    refused: bool = False,
    kind: str = WEBHOOK,
    permanent: bool = False,
) -> Decision:
    """What an attempt's result means for the delivery. Pure. ``status_code`` is HTTP's
    (webhooks, Slack, Teams) or the SMTP reply code (email, where ``permanent`` says the
    server refused for good)."""
    if status_code is not None and 200 <= status_code < 300:
        return Decision("delivered", DELIVERED, None)
    if kind == WEBHOOK and status_code == 410:
        return Decision("endpoint_gone", FAILED, None, "the receiver answered 410 Gone")
    if (
        kind in (SLACK, TEAMS)
        and status_code is not None
        and 400 <= status_code < 500
        and status_code not in RETRYABLE_4XX
    ):
        if status_code in CHAT_GONE:
            reason = f"the channel answered {status_code}: its webhook was removed or revoked"
            return Decision("endpoint_gone", FAILED, None, reason)
        return Decision("rejected", FAILED, None)
    if permanent:
        return Decision("rejected", FAILED, None)
    delay = backoff_delay(
        attempt, settings.webhook_retry_base_s, settings.webhook_retry_max_delay_s, jitter
    )
    if retry_after_s is not None:
        delay = min(max(retry_after_s, 1.0), settings.webhook_retry_max_delay_s)
    next_at = now + timedelta(seconds=delay)
    if next_at > give_up_at:
        return Decision("gave_up", FAILED, None)
    return Decision("refused" if refused else "retrying", PENDING, next_at)


def sign_headers(secret: str, webhook_id: str, body: bytes, at: datetime) -> dict[str, str]:
    """The Standard Webhooks v1 headers for ``body`` sent at ``at``."""
    signature = Webhook(secret).sign(webhook_id, at, body.decode())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


class DeliveryWorker:
    """Sends due deliveries; ``clock`` schedules retries, ``wall_clock`` stamps signatures
    (receivers compare ``webhook-timestamp`` with their own clock, so it must be real)."""

    def __init__(
        self,
        store: WebhookStore,
        settings: AlertSettings,
        clock: Clock,
        metrics: Metrics,
        *,
        wall_clock: Clock | None = None,
        client: httpx.AsyncClient | None = None,
        resolve: Resolver = resolve_host,
        rng: random.Random | None = None,
        chat: ChatSender | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._wall = wall_clock or SystemClock()
        self._metrics = metrics
        self._client = client
        self._own_client = client is None
        self._resolve = resolve
        self._rng = rng or random.Random()
        self._chat = chat or ChatSender(settings, resolve)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                timeout=httpx.Timeout(self._settings.webhook_timeout_s),
                trust_env=False,  # no proxy from the environment: the URL policy checked this host
            )
        return self._client

    async def deliver_due(self) -> int:
        """Send every delivery due now (one claim of up to ``webhook_batch``); returns how
        many attempts were made."""
        now = self._clock.now()
        await asyncio.to_thread(
            self._store.close_due_digests,
            now,
            now + timedelta(seconds=self._settings.webhook_retry_max_age_s),
            self._digest_body,
        )
        lease = timedelta(seconds=self._settings.webhook_timeout_s + 30)
        claimed = await asyncio.to_thread(
            self._store.claim_due, now, self._settings.webhook_batch, lease
        )
        if claimed:
            await asyncio.gather(*(self._attempt(d) for d in claimed))
        return len(claimed)

    def _digest_body(self, minutes: int, envelopes: list[bytes]) -> bytes:
        alerts = [orjson.loads(e) for e in envelopes]
        return orjson.dumps(digest_envelope(minutes, alerts, self._wall.now()))

    async def _send(self, d: ClaimedDelivery, started: datetime) -> SendResult:
        if d.kind == WEBHOOK:
            return await self._send_webhook(d, started)
        envelope: dict[str, Any] = orjson.loads(d.payload)
        link_base = self._settings.public_url
        if d.kind == SLACK:
            body = orjson.dumps(slack_message(envelope, link_base))
            return await self._chat.post(d.url, body, started)
        if d.kind == TEAMS:
            body = orjson.dumps(teams_message(envelope, link_base))
            return await self._chat.post(d.url, body, started)
        if d.kind == EMAIL:
            to = [str(a) for a in d.config.get("to", [])]
            return await send_email(
                self._settings,
                to,
                email_message(envelope, link_base),
                message_id=d.webhook_id,
                at=self._wall.now(),
            )
        return SendResult(None, f"unknown endpoint kind {d.kind!r}", permanent=True)

    async def _send_webhook(self, d: ClaimedDelivery, started: datetime) -> SendResult:
        status_code: int | None = None
        retry_after: float | None = None
        error: str | None = None
        try:
            addresses = await asyncio.to_thread(
                check_webhook_url,
                d.url,
                allow_loopback=self._settings.webhook_allow_loopback,
                allow_private=self._settings.webhook_allow_private,
                resolve=self._resolve,
            )
            # Connect to the address just checked, not to a second resolution of the name.
            url, host, extensions = pinned_request(d.url, addresses[0])
            headers = sign_headers(d.secret, d.webhook_id, d.payload, self._wall.now())
            async with self._http().stream(
                "POST", url, content=d.payload, headers={**headers, **host}, extensions=extensions
            ) as r:
                status_code = r.status_code
                if not 200 <= status_code < 300:
                    error = f"HTTP {status_code}"
                    if r.is_redirect:
                        error += f": redirect to {r.headers.get('location', '?')!r} not followed"
                    retry_after = parse_retry_after(r.headers.get("retry-after"), started)
        except WebhookUrlError as e:
            return SendResult(None, f"url: {e}", refused=True)
        except httpx.TimeoutException:
            return SendResult(None, f"timed out after {self._settings.webhook_timeout_s:g} s")
        except httpx.HTTPError as e:
            return SendResult(None, f"{type(e).__name__}: {e}")
        return SendResult(status_code, error, retry_after)

    async def _attempt(self, d: ClaimedDelivery) -> None:
        number = d.attempts + 1
        started = self._clock.now()
        t0 = time.perf_counter()
        result = await self._send(d, started)
        error = result.error
        duration = time.perf_counter() - t0
        self._metrics.webhook_attempt_duration.observe(duration)
        decision = decide(
            status_code=result.status_code,
            retry_after_s=result.retry_after_s,
            attempt=number,
            now=started,
            give_up_at=d.give_up_at,
            settings=self._settings,
            jitter=self._rng.random(),
            refused=result.refused,
            kind=d.kind,
            permanent=result.permanent,
        )
        attempt = Attempt(
            attempt=number,
            started_at=started,
            duration_s=duration,
            status_code=result.status_code,
            outcome=decision.outcome,
            error=error[:MAX_ERROR_CHARS] if error else None,
            next_attempt_at=decision.next_attempt_at,
        )
        disable = (
            (d.endpoint_id, decision.disable_reason)
            if decision.disable_reason is not None
            else None
        )
        await asyncio.to_thread(
            self._store.record_attempt,
            d.id,
            attempt,
            status=decision.status,
            disable_endpoint=disable,
        )
        self._metrics.webhook_deliveries.labels(decision.outcome).inc()
        if decision.outcome == "delivered":
            log.info("webhook %s delivered (attempt %d)", d.webhook_id, number)
        elif decision.next_attempt_at is not None:
            log.warning(
                "webhook %s attempt %d failed (%s); retrying in %.0f s",
                d.webhook_id,
                number,
                error,
                (decision.next_attempt_at - started).total_seconds(),
            )
        else:
            log.warning(
                "webhook %s attempt %d: %s (%s)", d.webhook_id, number, decision.outcome, error
            )

    def wake(self) -> None:
        """Send now rather than at the next poll (safe to call from any thread)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set: at every poll, or at once when woken."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    while await self.deliver_due() and not stop.is_set():
                        pass
                except Exception:  # the loop must outlive one bad pass; logged, not hidden
                    log.exception("webhook delivery pass failed; retrying at the next poll")
                waiters = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._wake.wait()),
                ]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait(
                        waiters,
                        timeout=self._settings.webhook_poll_interval_s,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                for w in waiters:
                    w.cancel()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None
        await self._chat.aclose()
