"""POST/GET /api/v1/mentions: partial acceptance, clear errors, limits and auth."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from services.embedded import Embedded
from tests.fixtures.app import Keys
from tests.fixtures.mentions import mention_doc


async def post(client: httpx.AsyncClient, keys: Keys, body: Any, **kw: Any) -> httpx.Response:
    return await client.post("/api/v1/mentions", json=body, headers=keys.header("ingest"), **kw)


async def test_one_bad_item_never_rejects_the_good_ones(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    good = [mention_doc(id=f"g{i}", text=f"Acme is great #{i}") for i in range(3)]
    bad = [
        mention_doc(id="naive", created_at="2026-03-02T10:15:00"),
        mention_doc(id="neg", author={"id": "u", "handle": "h", "followers": -1}),
        mention_doc(id="src", source="myspace"),
        mention_doc(id="long", text="a" * 10_001),
        mention_doc(id="empty", text=""),
        {k: v for k, v in mention_doc(id="notext").items() if k != "text"},
        mention_doc(id="typed", text=42),
        "not an object",
        mention_doc(id="extra", colour="blue"),
    ]
    r = await post(client, keys, [good[0], *bad, *good[1:]])
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 3
    errors = {e["index"]: e["error"] for e in body["rejected"]}
    assert set(errors) == set(range(1, 10))
    assert errors[1].startswith("created_at: naive datetime")
    assert errors[2].startswith("author.followers:")
    assert errors[3].startswith("source:")
    assert errors[4].startswith("text:") and "10000" in errors[4]
    assert errors[5].startswith("text:")
    assert errors[6].startswith("text: field required")
    assert errors[7].startswith("text:")
    assert errors[8].startswith("body: expected a JSON object")
    assert errors[9].startswith("colour: unknown field")
    await embedded.drain()
    r = await client.get("/api/v1/mentions", headers=keys.header("viewer"))
    assert sorted(m["id"] for m in r.json()["items"]) == ["g0", "g1", "g2"]


async def test_ndjson_with_a_malformed_line(client: httpx.AsyncClient, keys: Keys) -> None:
    lines = [orjson.dumps(mention_doc(id="n1")), b"{not json", orjson.dumps(mention_doc(id="n2"))]
    r = await client.post(
        "/api/v1/mentions",
        content=b"\n".join(lines),
        headers={**keys.header("ingest"), "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 2
    assert r.json()["rejected"][0]["index"] == 1
    assert r.json()["rejected"][0]["error"].startswith("body: invalid JSON")


async def test_a_repeat_is_counted_as_duplicate(client: httpx.AsyncClient, keys: Keys) -> None:
    doc = mention_doc(id="dup")
    assert (await post(client, keys, [doc])).json()["accepted"] == 1
    again = (await post(client, keys, [doc, doc])).json()
    assert (again["accepted"], again["duplicates"]) == (0, 2)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        (b'{"id": ', "application/json", 422, "body"),
        (b'{"id": "x"}', "application/json", 422, "body"),
        (b"[1, 2", "application/json", 422, "body"),
    ],
)
async def test_malformed_bodies_get_422_naming_the_body(
    client: httpx.AsyncClient, keys: Keys, body: bytes, content_type: str, status: int, field: str
) -> None:
    r = await client.post(
        "/api/v1/mentions",
        content=body,
        headers={**keys.header("ingest"), "Content-Type": content_type},
    )
    assert r.status_code == status
    assert r.json()["errors"][0]["field"] == field


async def test_oversized_bodies_get_413(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    big = b"[" + b" " * (10 * 1024 * 1024) + b"]"
    r = await client.post(
        "/api/v1/mentions",
        content=big,
        headers={**keys.header("ingest"), "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["errors"][0]["field"] == "body"
    too_many = [mention_doc(id=f"x{i}") for i in range(10_001)]
    r = await post(client, keys, too_many)
    assert r.status_code == 413
    assert "10000" in r.json()["detail"]


async def test_auth_and_roles(client: httpx.AsyncClient, keys: Keys) -> None:
    doc = [mention_doc(id="auth")]
    assert (await client.post("/api/v1/mentions", json=doc)).status_code == 401
    r = await client.post("/api/v1/mentions", json=doc, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = await client.post("/api/v1/mentions", json=doc, headers=keys.header("viewer"))
    assert r.status_code == 403
    assert (await client.get("/api/v1/mentions", headers=keys.header("ingest"))).status_code == 403
    assert (await client.get("/api/v1/mentions", headers=keys.header("analyst"))).status_code == 200
    assert (
        await client.post("/api/v1/mentions", json=doc, headers=keys.header("admin"))
    ).status_code == 202
    for open_path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(open_path)).status_code == 200


async def test_listing_filters_and_bad_parameters(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    docs = [
        mention_doc(id="p", text="Acme is wonderful", source="x"),
        mention_doc(id="n", text="Acme is awful and broken", source="reddit"),
        mention_doc(
            id="g", text="Globex is wonderful", source="x", created_at="2026-03-03T10:00:00Z"
        ),
    ]
    await post(client, keys, docs)
    await embedded.drain()
    h = keys.header("viewer")

    async def ids(**params: Any) -> list[str]:
        r = await client.get("/api/v1/mentions", params=params, headers=h)
        assert r.status_code == 200, r.text
        return sorted(m["id"] for m in r.json()["items"])

    assert await ids(brand="Acme") == ["n", "p"]
    assert await ids(brand="Acme", label="negative") == ["n"]
    assert await ids(source="x") == ["g", "p"]
    assert await ids(**{"from": "2026-03-03T00:00:00Z"}) == ["g"]
    assert await ids(to="2026-03-03T00:00:00+00:00") == ["n", "p"]

    bad = [
        ({"label": "meh"}, "query.label"),
        ({"source": "myspace"}, "query.source"),
        ({"from": "2026-03-03T00:00:00"}, "query.from"),
        ({"from": "yesterday"}, "query.from"),
        ({"limit": 0}, "query.limit"),
        ({"cursor": "garbage!!"}, "cursor"),
        ({"from": "2026-03-04T00:00:00Z", "to": "2026-03-03T00:00:00Z"}, "from"),
    ]
    for params, field in bad:
        assert isinstance(params, dict)
        r = await client.get("/api/v1/mentions", params=params, headers=h)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["errors"][0]["field"] == field, (params, r.json())


async def test_openapi_documents_the_push_body(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/api/v1/mentions"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["items"] == {"$ref": "#/components/schemas/Mention"}
    assert "application/x-ndjson" in body
    mention = spec["components"]["schemas"]["Mention"]
    assert set(mention["required"]) >= {"id", "source", "text", "created_at", "author"}
    assert "Author" in spec["components"]["schemas"]
    assert (await client.get("/docs")).status_code == 200
