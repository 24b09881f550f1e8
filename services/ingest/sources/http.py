"""HTTP helpers the connectors share: the client that holds every request to the
source URL policy, status codes to typed errors, ``Retry-After``, and bounded line
reading for streaming APIs (SSE, newline-delimited JSON)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx

from services.core.sources import SourceUrlPolicy
from services.core.urls import WebhookUrlError, pinned_request
from services.ingest.sources.errors import (
    AuthError,
    GarbageError,
    PlatformError,
    RateLimited,
    UrlRefused,
)

USER_AGENT = "sentimon/0.1 (+https://github.com/sentimon/sentimon; social listening)"
DEFAULT_RETRY_AFTER_S = 60.0
MAX_RETRY_AFTER_S = 3600.0
MAX_LINE_BYTES = 1_048_576
MAX_REDIRECTS = 5


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    """Whether a redirect from ``a`` to ``b`` stays on the same host and port (``http``
    to ``https`` on the same host's default port counts as staying)."""
    if a.host.lower() != b.host.lower():
        return False
    if (a.scheme, a.port) == (b.scheme, b.port):
        return True
    return a.scheme == "http" and b.scheme == "https" and b.port is None


class GuardedTransport(httpx.AsyncBaseTransport):
    """Sends a request only where the source URL policy allows, checked before every
    request and every redirect hop, and connects to the address it checked (a name
    re-pointed in between reaches nothing new). An ``Authorization`` header goes only to
    ``credential_hosts``. Redirects of ``GET``/``HEAD`` are followed on the same origin,
    at most ``MAX_REDIRECTS`` times; any other redirect is answered as it came, unread.

    Raises ``UrlRefused`` for a request the policy refuses.
    """

    def __init__(
        self,
        policy: SourceUrlPolicy,
        credential_hosts: Collection[str] = (),
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._policy = policy
        self._credential_hosts = frozenset(h.lower() for h in credential_hosts)
        self._inner = inner or httpx.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._send_checked(request)
        for _ in range(MAX_REDIRECTS):
            location = response.headers.get("location")
            if not (300 <= response.status_code < 400 and response.status_code != 304):
                return response
            if location is None or request.method not in ("GET", "HEAD"):
                return response
            try:
                target = request.url.join(location)
            except httpx.InvalidURL:
                return response
            if not same_origin(request.url, target):
                return response
            await response.aclose()
            headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
            request = httpx.Request(
                request.method, target, headers=headers, extensions=request.extensions
            )
            response = await self._send_checked(request)
        return response

    async def _send_checked(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        host = request.url.host.lower()
        if "authorization" in request.headers:
            if host not in self._credential_hosts:
                raise UrlRefused(f"{host}: credentials are not sent to this host")
            if request.url.scheme != "https" and host not in self._policy.credential_hosts:
                raise UrlRefused(f"{host}: credentials are sent over https only")
        try:
            addresses = await asyncio.to_thread(self._policy.check, url)
        except WebhookUrlError as e:
            raise UrlRefused(f"{host}: {e}") from e
        pinned, host_header, tls = pinned_request(url, addresses[0])
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
        headers.append((b"Host", host_header["Host"].encode("ascii")))
        sent = httpx.Request(
            request.method,
            pinned,
            headers=headers,
            stream=request.stream,
            extensions={**request.extensions, **tls},
        )
        return await self._inner.handle_async_request(sent)

    async def aclose(self) -> None:
        await self._inner.aclose()


def make_client(
    policy: SourceUrlPolicy,
    *,
    credential_hosts: Collection[str] = (),
    timeout_s: float = 30.0,
    read_timeout_s: float | None = None,
) -> httpx.AsyncClient:
    """A client with Sentimon's user agent that sends only where ``policy`` allows (see
    ``GuardedTransport``); ``read_timeout_s`` bounds silence on a stream. No proxy from
    the environment: the policy judged the host itself."""
    timeout = httpx.Timeout(timeout_s, read=read_timeout_s or timeout_s)
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        transport=GuardedTransport(policy, credential_hosts),
        headers={"User-Agent": USER_AGENT},
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
    ``Retry-After``), ``AuthError`` (401/403), ``PlatformError`` (any other >= 400, and a
    redirect the client did not follow)."""
    status = response.status_code
    place = where(response.request.url)
    if 300 <= status < 400 and status != 304:
        # What a refused redirect pointed at is not reported: it came from the platform.
        raise PlatformError(
            f"{what}: HTTP {status} from {place}: a redirect to another host (or one too "
            "many) is not followed",
            status,
        )
    if status < 400:
        return
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
