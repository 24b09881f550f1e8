"""What can go wrong while reading a platform, as a shallow hierarchy.

Connectors translate transport errors (httpx, websockets, feedparser) into these at the
boundary, so the supervisor decides how long to wait from the type alone.
"""

from __future__ import annotations


class SourceError(Exception):
    """A connector could not read from its platform (it is retried after a backoff)."""


class RateLimited(SourceError):
    """The platform said to slow down (HTTP 429); retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AuthError(SourceError):
    """The platform refused the credentials (HTTP 401/403), or none are configured."""


class PlatformError(SourceError):
    """The platform answered with an error status (``status``; 0 for a network error)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class GarbageError(SourceError):
    """The platform answered with something its documented format does not explain."""


class UrlRefused(SourceError):
    """The source URL policy refused a request: an address not allowed, or credentials
    for a host that is not the platform's (``SENTIMON_SOURCE_*`` settings)."""


class SourceConfigError(ValueError):
    """A source's configuration is invalid; the message names the source and the field."""
