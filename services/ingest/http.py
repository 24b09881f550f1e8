"""``POST /api/v1/mentions``: mentions pushed over HTTP (a JSON array, or NDJSON).

The ingest service's endpoint: ``sentimon ingest`` serves it on its own port, and the
embedded launcher mounts it on the API's app. The key is checked before the body is
read; the body is capped while it streams; each item takes the one accept path.
"""

from __future__ import annotations

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
from services.runtime.auth import key_from_header, permitted
from services.runtime.http import TOO_LARGE, UNPROCESSABLE
from services.runtime.limits import BodyLimits, GuardedBodies

NDJSON = "application/x-ndjson"


@dataclass(frozen=True, slots=True)
class PushEndpoint:
    """What the push endpoint needs: where mentions go, whose keys it takes, its limits."""

    publisher: MentionPublisher
    keys: KeyStore
    metrics: Metrics
    max_body_bytes: int
    max_items: int


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


def _ingest_key(request: Request, endpoint: Endpoint) -> ApiKey:
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
    the bus and will be stored."""
    body = await read_body_capped(request, endpoint.max_body_bytes)
    items = parse_items(body, request.headers.get("content-type", ""), endpoint.max_items)
    outcome = await accept(
        items, channel="http", publisher=endpoint.publisher, metrics=endpoint.metrics
    )
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
