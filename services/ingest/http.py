"""``POST /api/v1/mentions``: mentions pushed over HTTP (a JSON array, or NDJSON).

The ingest service's endpoint: ``sentimon ingest`` serves it on its own port, and the
embedded launcher mounts it on the API's app. The key is checked before the body is
read; the body is capped while it streams; each item takes the one accept path.

A push the bus cannot take now is answered 503 with ``Retry-After``, never left hanging:
at once while the bus reports a problem (the Kafka broker is away), and after
``timeout_s`` if the bus has not taken every mention by then. A 503 promises nothing
(some of its mentions may be on the bus: sent again, they are duplicates, stored once);
a 202 still means every accepted mention is durable on the bus.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from pydantic import BaseModel

from services.core.auth import Permission
from services.core.metrics import Metrics
from services.core.storage.keys import ApiKey, KeyStore
from services.ingest.accept import MentionPublisher, accept
from services.ingest.normalise import mention_from_obj
from services.ingest.sources.protocol import InvalidRecord, SourceItem
from services.runtime.auth import BearerDeclared, key_from_header, permitted
from services.runtime.http import TOO_LARGE, UNPROCESSABLE
from services.runtime.limits import BodyLimits, GuardedBodies

NDJSON = "application/x-ndjson"


@dataclass(frozen=True, slots=True)
class PushEndpoint:
    """What the push endpoint needs: where mentions go, whose keys it takes, its limits;
    ``bus_problem``: what is wrong with the bus now (``None``: nothing); ``timeout_s``:
    how long a push may wait for the bus (``None``: as long as it takes)."""

    publisher: MentionPublisher
    keys: KeyStore
    metrics: Metrics
    max_body_bytes: int
    max_items: int
    bus_problem: Callable[[], str | None] | None = None
    timeout_s: float | None = None

    def unavailable(self, reason: str) -> HTTPException:
        """The 503 for a push the bus cannot take now, counted as a refused send."""
        self.metrics.bus_broker_unavailable.labels("send").inc()
        retry_after = math.ceil(self.timeout_s) if self.timeout_s is not None else 5
        return HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"bus: {reason}; nothing was answered accepted, send the mentions again",
            headers={"Retry-After": str(retry_after)},
        )


class Rejection(BaseModel):
    index: int
    error: str


class IngestResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejection]


def _endpoint(request: Request) -> PushEndpoint:
    endpoint: PushEndpoint = request.app.state.push_endpoint
    return endpoint


Endpoint = Annotated[PushEndpoint, Depends(_endpoint)]


def _ingest_key(request: Request, endpoint: Endpoint, _bearer: BearerDeclared) -> ApiKey:
    return permitted(
        key_from_header(endpoint.keys, request.headers.get("authorization")), Permission.INGEST
    )


async def read_body_capped(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(TOO_LARGE, f"body: larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(TOO_LARGE, f"body: larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_items(body: bytes, content_type: str, max_items: int) -> list[SourceItem]:
    """Validate a body's items (a JSON array, or NDJSON lines); errors name the field."""
    if content_type.split(";")[0].strip().lower() == NDJSON:
        lines = [ln for ln in body.split(b"\n") if ln.strip()]
        if len(lines) > max_items:
            raise HTTPException(TOO_LARGE, f"body: more than {max_items} mentions")
        items: list[SourceItem] = []
        for i, line in enumerate(lines):
            try:
                items.append(mention_from_obj(orjson.loads(line), f"[{i}]"))
            except orjson.JSONDecodeError as e:
                items.append(InvalidRecord(f"[{i}]", f"body: invalid JSON: {e}"))
        return items
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise HTTPException(UNPROCESSABLE, f"body: invalid JSON: {e}") from e
    if not isinstance(data, list):
        raise HTTPException(
            UNPROCESSABLE,
            f"body: expected a JSON array of mentions (or {NDJSON}), got {type(data).__name__}",
        )
    if len(data) > max_items:
        raise HTTPException(TOO_LARGE, f"body: more than {max_items} mentions")
    return [mention_from_obj(value, f"[{i}]") for i, value in enumerate(data)]


_MENTION_REF = {"$ref": "#/components/schemas/Mention"}

router = APIRouter(prefix="/api/v1/mentions", tags=["mentions"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestResponse,
    summary="Push mentions (a JSON array, or NDJSON with Content-Type application/x-ndjson)",
    responses={
        413: {"description": "Body over 10 MB or over 10,000 mentions"},
        422: {"description": "Body is not JSON, or not an array"},
        503: {
            "description": "The bus cannot take mentions now (the broker is away): "
            "send them again after Retry-After seconds",
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": _MENTION_REF, "maxItems": 10_000}
                },
                NDJSON: {
                    "schema": {
                        "type": "string",
                        "description": "one mention.v1 JSON object per line",
                    }
                },
            },
        }
    },
)
async def push_mentions(
    request: Request, endpoint: Endpoint, _key: Annotated[ApiKey, Depends(_ingest_key)]
) -> IngestResponse:
    """Each valid mention is queued for scoring; each invalid one is reported with its
    index and the field that is wrong, and never stops the others. Mentions already
    seen are counted as ``duplicates``. A 202 means every accepted mention is durable on
    the bus and will be stored; a 503 (with ``Retry-After``) that the bus cannot take
    them now."""
    body = await read_body_capped(request, endpoint.max_body_bytes)
    items = parse_items(body, request.headers.get("content-type", ""), endpoint.max_items)
    if endpoint.bus_problem is not None and (problem := endpoint.bus_problem()) is not None:
        raise endpoint.unavailable(problem)
    try:
        # Cancelled at the deadline, the sends not yet acknowledged are forgotten by the
        # deduplication, so the client's retry produces them again.
        outcome = await asyncio.wait_for(
            accept(items, channel="http", publisher=endpoint.publisher, metrics=endpoint.metrics),
            endpoint.timeout_s,
        )
    except TimeoutError:
        raise endpoint.unavailable(
            f"not every mention was taken within {endpoint.timeout_s:g} s"
        ) from None
    return IngestResponse(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        rejected=[Rejection(index=i, error=r.error) for i, r in outcome.invalid],
    )


def mount_push(app: FastAPI, endpoint: PushEndpoint) -> None:
    """Serve the push endpoint on ``app`` (the ingest's own, or the embedded API's), its
    key checked before its body is read and the body capped as it streams."""
    app.state.push_endpoint = endpoint
    limits: BodyLimits | None = getattr(app.state, "body_limits", None)
    if limits is None:
        app.state.body_limits = BodyLimits(default=endpoint.max_body_bytes)
        app.add_middleware(GuardedBodies, keys=endpoint.keys, limits=app.state.body_limits)
    else:
        limits.by_prefix[router.prefix] = endpoint.max_body_bytes
    app.include_router(router)
