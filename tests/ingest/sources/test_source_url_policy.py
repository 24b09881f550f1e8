"""The source URL policy before every request: redirects are followed on the same host
only (each hop checked again), a name is checked when it is requested (it may have been
re-pointed since the source was configured) and the connection goes to the address
checked, and platform credentials never reach a host that is not the platform's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from services.core.sources import Feed, RedditConfig, RssConfig, SourceUrlPolicy, XConfig
from services.ingest.sources.base import Credentials, Runtime
from services.ingest.sources.config import parse_sources_yaml
from services.ingest.sources.errors import PlatformError, SourceConfigError, UrlRefused
from services.ingest.sources.feeds import FeedConnector
from services.ingest.sources.http import MAX_REDIRECTS
from services.ingest.sources.reddit import RedditConnector
from services.ingest.sources.x import XConnector
from tests.ingest.sources.fakes import (
    LOCAL_URLS,
    FakePlatform,
    FakeTime,
    Reply,
    fixture_bytes,
    mentions_of,
    take,
    until_error,
)

ALERTS = fixture_bytes("rss", "google_alerts.atom")
INTERNAL = b"<rss><channel><item><title>INTERNAL-SECRET 42</title></item></channel></rss>"
TOKEN = "x-bearer-token-not-for-strangers"
REDDIT_SECRET = "reddit-app-secret-not-for-strangers"


@pytest.fixture
def elsewhere() -> Iterator[FakePlatform]:
    """Another server, on a host name other than the platform's (``localhost``)."""
    server = FakePlatform().start()
    yield server
    server.stop()


def _feeds(url: str, fake_time: FakeTime, policy: SourceUrlPolicy = LOCAL_URLS) -> FeedConnector:
    config = RssConfig(name="alerts", feeds=[Feed(url=url, interval_s=600)])
    return FeedConnector(config, Runtime(urls=policy, clock=fake_time.clock, sleep=fake_time.sleep))


async def test_a_redirect_to_another_host_is_neither_followed_nor_reported(
    platform: FakePlatform, elsewhere: FakePlatform, fake_time: FakeTime
) -> None:
    port = elsewhere.base_url.rsplit(":", 1)[1]
    target = f"http://localhost:{port}/internal.rss"
    platform.on("GET", "/alerts.atom", Reply(302, b"", {"Location": target}))
    elsewhere.on("GET", "/internal.rss", Reply(200, INTERNAL))
    # Loopback is allowed here: only the change of host stops the redirect.
    _, error = await until_error(
        _feeds(f"{platform.base_url}/alerts.atom", fake_time).batches(None)
    )
    assert isinstance(error, PlatformError) and "not followed" in str(error)
    assert elsewhere.requests == []
    assert "INTERNAL-SECRET" not in str(error) and "localhost" not in str(error)


async def test_a_redirect_on_the_same_host_is_followed_a_bounded_number_of_times(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    platform.on("GET", "/old.atom", Reply(301, b"", {"Location": "/alerts.atom"}))
    platform.on("GET", "/alerts.atom", Reply(200, ALERTS))
    batches = await take(_feeds(f"{platform.base_url}/old.atom", fake_time).batches(None), 1)
    assert len(mentions_of(batches)) == 3

    platform.on("GET", "/loop.atom", Reply(302, b"", {"Location": "/loop.atom"}))
    _, error = await until_error(_feeds(f"{platform.base_url}/loop.atom", fake_time).batches(None))
    assert isinstance(error, PlatformError) and "not followed" in str(error)
    assert len(platform.hits("GET", "/loop.atom")) == MAX_REDIRECTS + 1


async def test_a_name_is_checked_when_requested_and_the_checked_address_is_used(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    port = platform.base_url.rsplit(":", 1)[1]
    url = f"http://feeds.example:{port}/alerts.atom"
    platform.on("GET", "/alerts.atom", Reply(200, ALERTS))
    # Re-pointed to the metadata service since it was configured: refused, nothing sent.
    metadata = SourceUrlPolicy(allow_loopback=True, resolve=lambda h, p: ["169.254.169.254"])
    _, error = await until_error(_feeds(url, fake_time, metadata).batches(None))
    assert isinstance(error, UrlRefused) and "169.254.169.254" in str(error)
    # Pointing at loopback, which this operator allows: the request goes to the address
    # that was checked, for the name the URL gives.
    local = SourceUrlPolicy(allow_loopback=True, resolve=lambda h, p: ["127.0.0.1"])
    batches = await take(_feeds(url, fake_time, local).batches(None), 1)
    assert len(mentions_of(batches)) == 3
    assert platform.hits("GET", "/alerts.atom")[0].headers["host"] == f"feeds.example:{port}"


async def test_the_x_token_is_not_sent_to_a_host_that_is_not_x(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    platform.on("GET", "/2/tweets/search/stream/rules", Reply(200, b'{"data": []}'))
    # A configuration stored before the check existed: its api_base is the fake's, which
    # the operator let Sentimon reach (loopback) but did not name as an X host.
    reachable = SourceUrlPolicy(allow_loopback=True)
    connector = XConnector(
        XConfig(name="x", api_base=platform.base_url),
        Runtime(
            urls=reachable,
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            credentials=Credentials(x_bearer_token=SecretStr(TOKEN)),
        ),
    )
    _, error = await until_error(connector.batches(None))
    assert isinstance(error, UrlRefused) and "credentials" in str(error)
    assert [r.headers.get("authorization") for r in platform.requests] == []
    assert TOKEN not in str(error)


async def test_the_reddit_app_secret_is_not_sent_to_a_host_that_is_not_reddit(
    platform: FakePlatform, fake_time: FakeTime
) -> None:
    platform.on("POST", "/api/v1/access_token", Reply(200, b'{"access_token": "t"}'))
    config = RedditConfig(
        name="reddit",
        subreddits=["sysadmin"],
        api_base=platform.base_url,
        auth_url=f"{platform.base_url}/api/v1/access_token",
    )
    creds = Credentials(reddit_client_id="app-id", reddit_client_secret=SecretStr(REDDIT_SECRET))
    connector = RedditConnector(
        config,
        Runtime(
            urls=SourceUrlPolicy(allow_loopback=True),
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            credentials=creds,
        ),
    )
    _, error = await until_error(connector.batches(None))
    assert isinstance(error, UrlRefused)
    assert all("authorization" not in r.headers for r in platform.requests)
    assert platform.requests == []


def test_a_sources_file_pointing_inward_is_refused_naming_the_entry_and_field() -> None:
    text = (
        "- name: ok\n  kind: rss\n  feeds:\n    - url: https://93.184.215.14/feed\n"
        "- name: meta\n  kind: rss\n  feeds:\n    - url: http://169.254.169.254/latest/\n"
    )
    with pytest.raises(SourceConfigError, match=r"^sources\.yaml: \[1\]\.feeds\[0\]\.url: refused"):
        parse_sources_yaml(text, "sources.yaml", SourceUrlPolicy())
    text = "- name: x\n  kind: x\n  api_base: https://collector.example\n"
    with pytest.raises(SourceConfigError, match=r"\[0\]\.api_base: 'collector\.example'"):
        parse_sources_yaml(text, "sources.yaml", SourceUrlPolicy())
