"""Which webhook URLs Sentimon will send to.

Only ``http``/``https`` URLs with a host and no credentials, and only hosts whose every
resolved address is public: loopback, private, link-local (cloud metadata at
169.254.169.254), multicast, reserved and unspecified ranges are refused unless the
settings allow them. The check runs when an endpoint is saved and again before every
send (a name can be re-pointed after it was saved).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

MAX_URL_CHARS = 2048

Resolver = Callable[[str, int], Iterable[str]]


class WebhookUrlError(ValueError):
    """The URL is not one Sentimon may send to; the message says why."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``WebhookUrlError`` if it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise WebhookUrlError(f"host {host!r} does not resolve") from e
    return sorted({str(info[4][0]) for info in infos})


def parse_webhook_url(url: str) -> tuple[str, int]:
    """``(host, port)`` of a well-formed webhook URL, else ``WebhookUrlError``."""
    if len(url) > MAX_URL_CHARS:
        raise WebhookUrlError(f"longer than {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise WebhookUrlError("must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise WebhookUrlError(f"not a valid URL: {e}") from e
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlError("scheme must be http or https")
    if not parts.hostname:
        raise WebhookUrlError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError("must not carry credentials (use the signing secret)")
    if parts.fragment:
        raise WebhookUrlError("must not have a #fragment")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def address_problem(address: str, *, allow_loopback: bool, allow_private: bool) -> str | None:
    """Why ``address`` may not be sent to, or ``None`` if it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if allow_loopback else f"{ip} is a loopback address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return f"{ip} is not a unicast address"
    if ip.is_link_local:
        return None if allow_private else f"{ip} is a link-local address"
    if ip.is_private or not ip.is_global:
        return None if allow_private else f"{ip} is a private address"
    return None


def check_webhook_url(
    url: str,
    *,
    allow_loopback: bool,
    allow_private: bool,
    resolve: Resolver = resolve_host,
) -> list[str]:
    """Check ``url`` and every address its host resolves to; return the addresses.

    Raises ``WebhookUrlError`` naming the problem (scheme, form, an address refused).
    """
    host, port = parse_webhook_url(url)
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        addresses = list(resolve(host, port))
    if not addresses:
        raise WebhookUrlError(f"host {host!r} does not resolve")
    for address in addresses:
        problem = address_problem(
            address, allow_loopback=allow_loopback, allow_private=allow_private
        )
        if problem is not None:
            raise WebhookUrlError(f"refused: {problem} (host {host!r})")
    return addresses
