"""HTTP helpers the connectors share: status codes to typed errors, ``Retry-After``,
and bounded line reading for streaming APIs (SSE, newline-delimited JSON)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx

from services.ingest.sources.errors import AuthError, GarbageError, PlatformError, RateLimited

USER_AGENT = "sentimon/0.1 (+https://github.com/sentimon/sentimon; social listening)"
DEFAULT_RETRY_AFTER_S = 60.0
MAX_RETRY_AFTER_S = 3600.0
MAX_LINE_BYTES = 1_048_576


def make_client(
    *, timeout_s: float = 30.0, read_timeout_s: float | None = None
) -> httpx.AsyncClient:
    """A client with Sentimon's user agent; ``read_timeout_s`` bounds silence on a stream."""
    timeout = httpx.Timeout(timeout_s, read=read_timeout_s or timeout_s)
    return httpx.AsyncClient(
        timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT}
    )


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date),
    clamped to ``[0, MAX_RETRY_AFTER_S]``; ``None`` if absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def where(url: httpx.URL) -> str:
    """Host and path of a request, without its query (which may carry search terms)."""
    return f"{url.host}{url.path}"


def check_status(response: httpx.Response, now: datetime, what: str) -> None:
    """Raise the typed error for an error status: ``RateLimited`` (429, honouring
    ``Retry-After``), ``AuthError`` (401/403), ``PlatformError`` (any other >= 400)."""
    status = response.status_code
    if status < 400:
        return
    place = where(response.request.url)
    if status == 429:
        wait = retry_after_seconds(response.headers.get("retry-after"), now)
        raise RateLimited(
            f"{what}: rate limited by {place}",
            DEFAULT_RETRY_AFTER_S if wait is None else wait,
        )
    if status in (401, 403):
        raise AuthError(f"{what}: {place} refused the credentials (HTTP {status})")
    raise PlatformError(f"{what}: HTTP {status} from {place}", status)


async def lines(response: httpx.Response, max_bytes: int = MAX_LINE_BYTES) -> AsyncIterator[bytes]:
    """The lines of a streamed body (``\\n`` or ``\\r\\n``), without their end; a line
    longer than ``max_bytes`` raises ``GarbageError`` rather than filling memory."""
    buffer = b""
    async for chunk in response.aiter_bytes():
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            line, buffer = buffer[:end], buffer[end + 1 :]
            yield line.rstrip(b"\r")
        if len(buffer) > max_bytes:
            raise GarbageError(f"a line longer than {max_bytes} bytes from {where(response.url)}")
    if buffer:
        yield buffer.rstrip(b"\r")


def network_error(what: str, error: Exception) -> PlatformError:
    """A transport failure as a ``PlatformError`` (status 0), without the request's query."""
    return PlatformError(f"{what}: network error: {type(error).__name__}: {error}", 0)
