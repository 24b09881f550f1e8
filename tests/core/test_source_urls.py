"""The source URL policy at configuration time: a source may not point Sentimon at an
internal address (cloud metadata, the private network, its own metrics), nor send the
X or Reddit credentials to a host that is not the platform's, unless the operator allows
it; every refusal names the field."""

from __future__ import annotations

import pytest

from services.core.sources import (
    SOURCE_CONFIG,
    SourceUrlError,
    SourceUrlPolicy,
    check_source_urls,
)
from services.core.urls import WebhookUrlError

PUBLIC = "93.184.215.14"


def _resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise WebhookUrlError(f"host {host!r} does not resolve")
        return table[host]

    return resolve


STRICT = SourceUrlPolicy(
    resolve=_resolver(
        {
            "news.example": [PUBLIC],
            "metadata.example": ["169.254.169.254"],
            "api.x.com": [PUBLIC],
            "oauth.reddit.com": [PUBLIC],
            "www.reddit.com": [PUBLIC],
            "evil.example": [PUBLIC],
        }
    )
)


def _rss(*urls: str) -> object:
    return SOURCE_CONFIG.validate_python(
        {"name": "feeds", "kind": "rss", "feeds": [{"url": u} for u in urls]}
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.0.0.1/feed.xml",
        "http://127.0.0.1:8200/metrics",
        "http://[::ffff:127.0.0.1]:8200/metrics",
        "http://metadata.example/feed",  # a name that resolves to an internal address
    ],
)
def test_a_feed_at_an_internal_address_is_refused_naming_the_field(url: str) -> None:
    config = _rss("https://news.example/feed", url)
    with pytest.raises(SourceUrlError, match=r"^feeds\[1\]\.url: refused"):
        check_source_urls(config, STRICT)  # type: ignore[arg-type]


def test_the_operator_may_allow_internal_feeds() -> None:
    config = _rss("http://127.0.0.1:8200/feed", "http://10.0.0.1/feed.xml")
    allowed = SourceUrlPolicy(allow_loopback=True, allow_private=True, resolve=STRICT.resolve)
    check_source_urls(config, allowed)  # type: ignore[arg-type]
    with pytest.raises(SourceUrlError, match=r"feeds\[1\]\.url: refused: 10\.0\.0\.1"):
        check_source_urls(config, SourceUrlPolicy(allow_loopback=True))  # type: ignore[arg-type]


def test_a_public_feed_and_a_name_that_does_not_resolve_yet_are_accepted() -> None:
    # The check before every request refuses the second if it comes to resolve inward.
    check_source_urls(_rss("https://news.example/f", "https://later.example/f"), STRICT)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"kind": "x", "api_base": "https://evil.example"}, "api_base"),
        ({"kind": "x", "api_base": "http://api.x.com"}, "api_base"),  # not over https
        ({"kind": "reddit", "api_base": "https://evil.example"}, "api_base"),
        ({"kind": "reddit", "auth_url": "https://evil.example/token"}, "auth_url"),
        ({"kind": "reddit", "auth_url": "https://oauth.reddit.com.evil.example/t"}, "auth_url"),
    ],
)
def test_credentials_go_to_the_platforms_own_hosts_only(doc: dict[str, str], field: str) -> None:
    config = SOURCE_CONFIG.validate_python({"name": "p", **doc})
    with pytest.raises(SourceUrlError, match=rf"^{field}: .*(not a host of|https only)"):
        check_source_urls(config, STRICT)


def test_the_defaults_and_an_operator_named_host_may_receive_credentials() -> None:
    for kind in ("x", "reddit"):
        check_source_urls(SOURCE_CONFIG.validate_python({"name": "p", "kind": kind}), STRICT)
    config = SOURCE_CONFIG.validate_python(
        {"name": "p", "kind": "x", "api_base": "http://127.0.0.1:9000"}
    )
    with pytest.raises(SourceUrlError, match=r"^api_base: "):
        check_source_urls(config, SourceUrlPolicy(allow_loopback=True))
    proxy = SourceUrlPolicy(allow_loopback=True, credential_hosts=frozenset({"127.0.0.1"}))
    check_source_urls(config, proxy)


def test_mastodon_and_bluesky_urls_are_held_to_the_policy_too() -> None:
    mastodon = SOURCE_CONFIG.validate_python(
        {
            "name": "m",
            "kind": "mastodon",
            "instance": "https://news.example",
            "streaming": "http://169.254.169.254",
        }
    )
    with pytest.raises(SourceUrlError, match=r"^streaming: refused"):
        check_source_urls(mastodon, STRICT)
    bluesky = SOURCE_CONFIG.validate_python(
        {"name": "b", "kind": "bluesky", "endpoint": "ws://10.0.0.1/subscribe"}
    )
    with pytest.raises(SourceUrlError, match=r"^endpoint: refused"):
        check_source_urls(bluesky, STRICT)
