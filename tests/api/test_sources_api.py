"""/api/v1/sources: admin-only configuration of the connectors, their status, and a
feed added through the API read end to end into the store."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from services.embedded import Embedded
from tests.fixtures.app import Keys
from tests.ingest.sources.fakes import FakePlatform, Reply, eventually, fixture_bytes

SOURCES = "/api/v1/sources"
BOUND_S = 20.0


@pytest.fixture(autouse=True)
def lexicon_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests are about sources; the scorer's model (another issue) is not needed.
    monkeypatch.setenv("SENTIMON_SCORER_MODE", "lexicon")
    # The fake platform listens on 127.0.0.1, which the source URL policy refuses by default.
    monkeypatch.setenv("SENTIMON_SOURCE_ALLOW_LOOPBACK", "true")


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    server = FakePlatform().start()
    yield server
    server.stop()


async def test_only_admins_manage_sources(client: httpx.AsyncClient, keys: Keys) -> None:
    for role in ("analyst", "viewer", "ingest"):
        r = await client.get(SOURCES, headers=keys.header(role))
        assert r.status_code == 403, role
    assert (await client.get(SOURCES)).status_code == 401


async def test_bad_configurations_name_the_field(client: httpx.AsyncClient, keys: Keys) -> None:
    admin = keys.header("admin")
    cases = [
        ({"name": "f", "kind": "rss", "feeds": [{"url": "ftp://x"}]}, "feeds[0].url"),
        ({"name": "f", "kind": "rss", "feeds": []}, "feeds"),
        ({"name": "../etc", "kind": "rss", "feeds": [{"url": "https://a.example"}]}, "name"),
        ({"name": "f", "kind": "myspace"}, "body"),
        ({"name": "x", "kind": "x", "bearer_token": "AAAA"}, "bearer_token"),  # never here
        (
            {"name": "m", "kind": "mastodon", "instance": "https://m.example", "hashtags": ["a b"]},
            "hashtags[0]",
        ),
    ]
    for body, field in cases:
        r = await client.post(SOURCES, json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        fields = [e["field"] for e in r.json()["errors"]]
        assert any(field in f for f in fields), (field, fields)
        assert "AAAA" not in r.text
    r = await client.post(SOURCES, content=b"{" * 10_000, headers=admin)
    assert r.status_code == 422


async def test_a_feed_added_through_the_api_is_read_into_the_store(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded, platform: FakePlatform
) -> None:
    admin = keys.header("admin")
    platform.on("GET", "/alerts.atom", Reply(200, fixture_bytes("rss", "google_alerts.atom")))
    body = {"name": "alerts", "kind": "rss", "feeds": [{"url": f"{platform.base_url}/alerts.atom"}]}
    r = await client.post(SOURCES, json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["config"]["feeds"][0]["interval_s"] == 900.0
    assert (await client.post(SOURCES, json=body, headers=admin)).status_code == 409

    async def status() -> dict[str, object]:
        r = await client.get(f"{SOURCES}/alerts/status", headers=admin)
        assert r.status_code == 200, r.text
        doc: dict[str, object] = r.json()
        return doc

    seen: dict[str, object] = {}

    async def refresh() -> None:
        seen.update(await status())

    async def accepted() -> bool:
        await refresh()
        return seen["mentions_accepted"] == 3

    await eventually(accepted, "the feed read")
    assert seen["state"] == "running" and seen["last_error"] is None
    assert seen["last_success_at"] is not None and seen["checkpoint_updated_at"] is not None
    assert isinstance(seen["lag_seconds"], float)

    async def stored() -> bool:
        r = await client.get("/api/v1/mentions", params={"source": "rss"}, headers=admin)
        return len(r.json()["items"]) == 3

    await eventually(stored, "its mentions stored", BOUND_S)

    listed = (await client.get(SOURCES, headers=admin)).json()
    assert [s["name"] for s in listed] == ["alerts"]
    changed = {**body, "enabled": False}
    r = await client.put(f"{SOURCES}/alerts", json=changed, headers=admin)
    assert r.status_code == 200 and r.json()["status"]["state"] == "disabled"
    r = await client.put(f"{SOURCES}/other", json=changed, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
    assert (await client.delete(f"{SOURCES}/alerts", headers=admin)).status_code == 204
    assert (await client.get(f"{SOURCES}/alerts", headers=admin)).status_code == 404
    assert (await client.delete(f"{SOURCES}/alerts", headers=admin)).status_code == 404


async def test_a_failing_source_reports_its_error(
    client: httpx.AsyncClient, keys: Keys, platform: FakePlatform
) -> None:
    admin = keys.header("admin")
    platform.on("GET", "/down.rss", Reply(503, b"maintenance"))
    body = {"name": "down", "kind": "rss", "feeds": [{"url": f"{platform.base_url}/down.rss"}]}
    assert (await client.post(SOURCES, json=body, headers=admin)).status_code == 201

    async def failed() -> bool:
        r = await client.get(f"{SOURCES}/down/status", headers=admin)
        return bool(r.json()["last_error"])

    await eventually(failed, "the error reported")
    doc = (await client.get(f"{SOURCES}/down", headers=admin)).json()["status"]
    assert doc["state"] == "backoff" and doc["consecutive_failures"] >= 1
    assert "HTTP 503" in doc["last_error"] and doc["next_attempt_at"] is not None
    assert doc["last_success_at"] is None
