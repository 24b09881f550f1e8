"""/api/v1/sources refuses, by default, a source that would point Sentimon at an internal
address or send platform credentials to another host; the 422 names the field."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.app import Keys

SOURCES = "/api/v1/sources"


@pytest.fixture(autouse=True)
def lexicon_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMON_SCORER_MODE", "lexicon")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/feed.xml",
        "http://127.0.0.1:8200/metrics",
    ],
)
async def test_a_feed_at_an_internal_address_is_refused(
    client: httpx.AsyncClient, keys: Keys, url: str
) -> None:
    body = {"name": "inward", "kind": "rss", "feeds": [{"url": url}]}
    r = await client.post(SOURCES, json=body, headers=keys.header("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "feeds[0].url"
    assert "refused" in r.json()["detail"]
    assert (await client.get(f"{SOURCES}/inward", headers=keys.header("admin"))).status_code == 404


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"kind": "x", "api_base": "https://collector.example"}, "api_base"),
        ({"kind": "reddit", "auth_url": "https://collector.example/token"}, "auth_url"),
        ({"kind": "reddit", "api_base": "https://collector.example"}, "api_base"),
    ],
)
async def test_credentials_bound_for_another_host_are_refused(
    client: httpx.AsyncClient, keys: Keys, doc: dict[str, str], field: str
) -> None:
    r = await client.post(SOURCES, json={"name": "p", **doc}, headers=keys.header("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field
    assert "collector.example" in r.json()["detail"]


async def test_a_change_pointing_inward_is_refused(client: httpx.AsyncClient, keys: Keys) -> None:
    admin = keys.header("admin")
    body = {"name": "feeds", "kind": "rss", "feeds": [{"url": "https://93.184.215.14/f"}]}
    assert (await client.post(SOURCES, json=body, headers=admin)).status_code == 201
    inward = {**body, "feeds": [{"url": "https://93.184.215.14/f"}, {"url": "http://10.0.0.1/"}]}
    r = await client.put(f"{SOURCES}/feeds", json=inward, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "feeds[1].url"
    stored = (await client.get(f"{SOURCES}/feeds", headers=admin)).json()["config"]
    assert [f["url"] for f in stored["feeds"]] == ["https://93.184.215.14/f"]
