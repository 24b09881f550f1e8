"""Key before body, bodies capped while they stream (issue 14 §2): a large body without a
key is refused before it is read; a body over its route's limit is refused as soon as it
passes the limit, chunked or not."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from services.embedded import Embedded
from tests.fixtures.app import Keys

MB = 1 << 20


class Body:
    """A streamed request body of ``chunks`` chunks of 1 MB (no Content-Length), counting
    how much the server pulled."""

    def __init__(self, chunks: int, piece: bytes = b"{},") -> None:
        self.chunks = chunks
        self.read = 0
        self._piece = piece

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(self.chunks):
            self.read += 1
            chunk = (self._piece * (MB // len(self._piece) + 1))[:MB]
            yield (b"[" + chunk[1:]) if i == 0 else chunk


async def test_a_large_body_without_a_key_is_refused_unread(client: httpx.AsyncClient) -> None:
    body = Body(60)
    r = await client.post(
        "/api/v1/brands", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 401
    assert r.json()["errors"][0]["field"] == "authorization"
    assert body.read <= 1, f"{body.read} MB of an unauthenticated body were read"


async def test_a_declared_length_over_the_limit_is_refused_at_once(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    r = await client.post(
        "/login", content=b"x" * (2 * MB), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["errors"][0] == {"field": "body", "message": f"larger than {MB} bytes"}


async def test_a_chunked_body_is_cut_off_at_the_routes_limit(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    body = Body(30)
    r = await client.post(
        "/api/v1/brands",
        content=body,
        headers={**keys.header("admin"), "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert body.read <= 2, f"{body.read} MB read for a 1 MB limit"


async def test_the_push_endpoint_keeps_its_own_larger_limit(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    # 3 MB of NDJSON mentions (1,000 of 3 KB): over the API's 1 MB default, under the push's 10 MB.
    line = (
        b'{"id":"big-%d","source":"x","text":"Acme ' + b"x" * 3000 + b'",'
        b'"created_at":"2026-03-02T10:15:00Z","author":{"id":"a","handle":"h"}}\n'
    )
    body = b"".join(line.replace(b"%d", str(i).encode()) for i in range(1000))
    assert len(body) > 2 * MB
    r = await client.post(
        "/api/v1/mentions",
        content=body,
        headers={**keys.header("ingest"), "content-type": "application/x-ndjson"},
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1000


async def test_a_malformed_authorization_is_named_before_the_body_is_read(
    client: httpx.AsyncClient,
) -> None:
    body = Body(5)
    r = await client.post(
        "/api/v1/brands", content=body, headers={"authorization": "Basic dXNlcjpwYXNz"}
    )
    assert r.status_code == 401
    assert r.json()["detail"] == "authorization: expected 'Bearer <api key>'"
    assert body.read <= 1
