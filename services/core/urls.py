"""Which URLs Sentimon will send to: webhooks, and the places sources read from
(``services.core.sources`` adds which hosts may receive platform credentials).

Only ``http``/``https`` URLs with a host and no credentials, and only hosts whose every
resolved address is public: loopback, private, link-local (cloud metadata at
169.254.169.254), multicast, reserved and unspecified ranges are refused unless the
settings allow them. The check runs when an endpoint is saved and again before every
send (a name can be re-pointed after it was saved), and the send connects to the address
that was checked (``pinned_request``), so a name re-pointed between the check and the
connection (DNS rebinding) reaches nothing new.
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


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and reaches: mapped (``::ffff:a.b.c.d``),
    6to4 (``2002::/16``), Teredo, NAT64 (``64:ff9b::/96``) and the old compatible form."""
    out: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        out.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.extend(ip.teredo)
    if any(ip in net for net in _NAT64):
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if int(ip) >> 32 == 0 and int(ip) > 1:  # ::a.b.c.d (deprecated "IPv4-compatible")
        out.append(ipaddress.IPv4Address(int(ip)))
    return out


def address_problem(address: str, *, allow_loopback: bool, allow_private: bool) -> str | None:
    """Why ``address`` may not be sent to, or ``None`` if it may. An IPv6 address that
    carries an IPv4 one (6to4, NAT64, Teredo, mapped) is judged by that one too."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in embedded_ipv4(ip):
            problem = address_problem(
                str(inner), allow_loopback=allow_loopback, allow_private=allow_private
            )
            if problem is not None:
                return f"{problem} (inside {ip})"
        if ip.ipv4_mapped is not None:
            return None
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
    unresolved_ok: bool = False,
) -> list[str]:
    """Check ``url`` and every address its host resolves to; return the addresses.

    Raises ``WebhookUrlError`` naming the problem (scheme, form, an address refused).
    With ``unresolved_ok`` a name that does not resolve (now) is no error: the result is
    empty, and the check before each request refuses it if it resolves somewhere refused.
    """
    host, port = parse_webhook_url(url)
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        try:
            addresses = list(resolve(host, port))
        except WebhookUrlError:
            if unresolved_ok:
                return []
            raise
    if not addresses:
        if unresolved_ok:
            return []
        raise WebhookUrlError(f"host {host!r} does not resolve")
    for address in addresses:
        problem = address_problem(
            address, allow_loopback=allow_loopback, allow_private=allow_private
        )
        if problem is not None:
            raise WebhookUrlError(f"refused: {problem} (host {host!r})")
    return addresses


def pinned_request(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """``url`` rewritten to connect to ``address`` (one the check returned): the URL to
    request, the ``Host`` header to send, and the request extensions (TLS is still checked
    against the original name, through SNI)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
    pinned = parts._replace(netloc=netloc).geturl()
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


def check_channel_url(
    url: str,
    *,
    allow_loopback: bool,
    allow_private: bool,
    resolve: Resolver = resolve_host,
    unresolved_ok: bool = False,
) -> list[str]:
    """``check_webhook_url`` for a chat channel's incoming-webhook URL (Slack, Teams),
    which carries its secret in the path and so must be ``https``: plain ``http`` only
    to a loopback address where loopback is allowed (a local stand-in)."""
    plain = urlsplit(url).scheme.lower() != "https"
    if plain and not allow_loopback:
        parse_webhook_url(url)  # a malformed URL is told as such
        raise WebhookUrlError("scheme must be https (the URL carries the channel's secret)")
    addresses = check_webhook_url(
        url,
        allow_loopback=allow_loopback,
        allow_private=allow_private,
        resolve=resolve,
        unresolved_ok=unresolved_ok and not plain,
    )
    if plain and not all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses):
        raise WebhookUrlError("scheme must be https (the URL carries the channel's secret)")
    return addresses


def mask_url(url: str) -> str:
    """A secret-bearing URL as it may be shown: scheme, host, port and the first path
    segment, the rest masked (``https://hooks.slack.com/services/****``)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "****"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    first = parts.path.lstrip("/").split("/", 1)[0]
    shown = f"/{first}" if first and len(parts.path.strip("/").split("/")) > 1 else ""
    return f"{parts.scheme}://{netloc}{shown}/****"
