"""The senders of the channels beside webhooks: Slack and Microsoft Teams (a JSON POST to
the channel's incoming-webhook URL) and email (SMTP). Each returns what the outbox needs to
decide — the status (HTTP, or the SMTP reply code), ``Retry-After``, an error text with no
secret in it, and whether the failure is permanent — and never raises for a failed send.

Why not a notification library: Apprise (2.3) speaks all three, but reports a bool per
service (a 410, a 404 and a 500 are all "failure", the status only in its log text),
follows redirects by default and resolves the host itself (so the address the URL policy
checked cannot be pinned), and logs through ``requests``; notifiers (2.0) has no Teams.
The chat POST here goes through httpcore (httpx's own transport, already installed) to the
checked address, with no redirect followed and no request line logged (httpx logs every
URL at INFO, and a chat URL is its secret); SMTP goes through aiosmtplib (asyncio, typed,
no dependencies), whose exceptions carry the reply code.
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib
import httpcore

from services.alerts.messages import Email
from services.alerts.settings import AlertSettings
from services.core.urls import (
    Resolver,
    WebhookUrlError,
    check_channel_url,
    mask_url,
    pinned_request,
    resolve_host,
)

USER_AGENT = "Sentimon-Channels/1"
MASK = "****"


@dataclass(frozen=True, slots=True)
class SendResult:
    """One attempt's result. ``status_code``: HTTP status, or the SMTP reply code."""

    status_code: int | None
    error: str | None = None
    retry_after_s: float | None = None
    refused: bool = False  # the URL policy refused the address: nothing was sent
    permanent: bool = False  # retrying cannot help (an SMTP 5xx reply)


def secret_parts(url: str) -> list[str]:
    """The pieces of a chat URL that are its secret (path and query, raw and decoded),
    longest first, to be masked wherever a text might echo them."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    pieces = {url, parts.path, parts.query}
    for segment in parts.path.split("/")[2:]:
        pieces.add(segment)
    pieces |= {unquote(p) for p in list(pieces)}
    return sorted((p for p in pieces if len(p) >= 4), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret masked."""
    for s in secrets:
        if s:
            text = text.replace(s, MASK)
    return text


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class ChatSender:
    """POSTs JSON to Slack/Teams incoming-webhook URLs, each to the address the URL policy
    checked just before (``check_channel_url``: https, public addresses)."""

    def __init__(self, settings: AlertSettings, resolve: Resolver = resolve_host) -> None:
        self._settings = settings
        self._resolve = resolve
        self._pool: httpcore.AsyncConnectionPool | None = None

    def _connections(self) -> httpcore.AsyncConnectionPool:
        if self._pool is None:
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=ssl.create_default_context(), max_connections=20
            )
        return self._pool

    async def post(self, url: str, body: bytes, now: datetime) -> SendResult:
        secrets = secret_parts(url)
        timeout = self._settings.webhook_timeout_s
        try:
            addresses = await asyncio.to_thread(
                check_channel_url,
                url,
                allow_loopback=self._settings.webhook_allow_loopback,
                allow_private=self._settings.webhook_allow_private,
                resolve=self._resolve,
            )
            pinned, host, extensions = pinned_request(url, addresses[0])
            headers = [
                (b"Host", host["Host"].encode()),
                (b"Content-Type", b"application/json"),
                (b"User-Agent", USER_AGENT.encode()),
            ]
            limits = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
            # The whole exchange is bounded too: a receiver trickling bytes resets no clock.
            async with asyncio.timeout(timeout):
                r = await self._connections().request(
                    "POST",
                    pinned,
                    headers=headers,
                    content=body,
                    extensions={"timeout": limits, **extensions},
                )
        except WebhookUrlError as e:
            return SendResult(None, redact(f"url: {e}", secrets), refused=True)
        except (TimeoutError, httpcore.TimeoutException):
            return SendResult(None, f"timed out after {timeout:g} s")
        except httpcore.NetworkError as e:
            return SendResult(None, redact(f"{type(e).__name__}: {e}", secrets))
        except httpcore.ProtocolError as e:
            return SendResult(None, redact(f"{type(e).__name__}: {e}", secrets))
        status = r.status
        if 200 <= status < 300:
            return SendResult(status)
        retry_after = next(
            (v.decode("latin-1") for k, v in r.headers if k.lower() == b"retry-after"), None
        )
        # Slack and Teams say why in a short body ("invalid_token", "channel_is_archived").
        said = r.content[:200].decode("utf-8", "replace").strip()
        error = f"HTTP {status}" + (f": {said}" if said else "")
        if 300 <= status < 400:
            error = f"HTTP {status}: redirect not followed"
        return SendResult(
            status, redact(error, secrets), retry_after_s=parse_retry_after(retry_after, now)
        )

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


def email_of(
    message: Email, *, sender: str, to: Sequence[str], message_id: str, at: datetime
) -> EmailMessage:
    """The MIME message: plain text with an HTML alternative. ``Message-ID`` is fixed per
    delivery (the same on every retry), as ``webhook-id`` is for webhooks."""
    m = EmailMessage()
    m["From"] = sender
    m["To"] = ", ".join(to)
    m["Subject"] = message.subject
    m["Date"] = email.utils.format_datetime(at)
    m["Message-ID"] = f"<{message_id}@sentimon>"
    m["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    m.set_content(message.text)
    m.add_alternative(message.html, subtype="html")
    return m


async def send_email(
    settings: AlertSettings, to: Sequence[str], message: Email, *, message_id: str, at: datetime
) -> SendResult:
    """Send through the configured SMTP server. A 4xx reply, a timeout or a lost
    connection is worth retrying; a 5xx reply (recipient or message refused) is not,
    except an authentication failure (the operator may fix the password)."""
    if settings.smtp_host is None or settings.smtp_from is None:
        return SendResult(None, "no SMTP server is configured (SENTIMON_SMTP_HOST)")
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    secrets = [password] if password else []
    mime = email_of(message, sender=settings.smtp_from, to=to, message_id=message_id, at=at)
    timeout = settings.webhook_timeout_s
    try:
        # The whole exchange is bounded, so an attempt ends within the claim's lease.
        async with asyncio.timeout(timeout):
            await aiosmtplib.send(
                mime,
                hostname=settings.smtp_host,
                port=settings.smtp_port_or_default(),
                username=settings.smtp_username,
                password=password,
                use_tls=settings.smtp_security == "tls",
                start_tls=settings.smtp_security == "starttls",
                validate_certs=settings.smtp_validate_certs,
                timeout=timeout,
            )
    except (TimeoutError, aiosmtplib.SMTPTimeoutError):
        return SendResult(None, f"timed out after {timeout:g} s")
    except aiosmtplib.SMTPRecipientsRefused as e:
        codes = [r.code for r in e.recipients]
        said = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in e.recipients)
        return SendResult(
            max(codes, default=None),
            redact(f"recipients refused: {said}", secrets),
            permanent=all(c >= 500 for c in codes),
        )
    except aiosmtplib.SMTPAuthenticationError as e:
        return SendResult(e.code, f"SMTP authentication failed ({e.code})")
    except aiosmtplib.SMTPResponseException as e:
        return SendResult(
            e.code, redact(f"SMTP {e.code}: {e.message}", secrets), permanent=e.code >= 500
        )
    except (aiosmtplib.SMTPException, OSError) as e:
        return SendResult(None, redact(f"{type(e).__name__}: {e}", secrets))
    return SendResult(250)


__all__ = ["ChatSender", "SendResult", "mask_url", "redact", "secret_parts", "send_email"]
