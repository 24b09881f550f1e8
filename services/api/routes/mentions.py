"""``/api/v1/mentions``: push mentions in (JSON array or NDJSON), read scored ones out."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel

from services.api.deps import Ingester, Reader, State
from services.api.errors import TOO_LARGE, UNPROCESSABLE
from services.core.models import ScoredMention, SentimentLabel, SourceName
from services.core.storage.reads import InvalidCursorError, MentionFilter, list_mentions
from services.ingest.normalise import mention_from_obj
from services.ingest.sources.protocol import InvalidRecord

router = APIRouter(prefix="/api/v1/mentions", tags=["mentions"])

NDJSON = "application/x-ndjson"


class Rejection(BaseModel):
    index: int
    error: str


class IngestResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejection]


class MentionPageOut(BaseModel):
    items: list[ScoredMention]
    next_cursor: str | None


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


def parse_items(body: bytes, content_type: str, max_items: int) -> list[Any] | list[bytes]:
    """Split a body into items: JSON values for an array, raw lines for NDJSON."""
    if content_type.split(";")[0].strip().lower() == NDJSON:
        lines = [ln for ln in body.split(b"\n") if ln.strip()]
        if len(lines) > max_items:
            raise HTTPException(TOO_LARGE, f"body: more than {max_items} mentions")
        return lines
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
    return data


_MENTION_REF = {"$ref": "#/components/schemas/Mention"}


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
async def push_mentions(request: Request, state: State, _key: Ingester) -> IngestResponse:
    """Each valid mention is queued for scoring; each invalid one is reported with its
    index and the field that is wrong, and never stops the others. Mentions already
    seen are counted as ``duplicates``."""
    if state.publisher is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "ingest is not enabled here")
    s = state.settings
    body = await read_body_capped(request, s.max_body_bytes)
    items = parse_items(body, request.headers.get("content-type", ""), s.max_items_per_request)
    rejected: list[Rejection] = []
    publishing: list[Coroutine[Any, Any, bool]] = []
    accepted = duplicates = 0
    is_ndjson = bool(items) and isinstance(items[0], bytes)
    for i, raw in enumerate(items):
        if is_ndjson:
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                rejected.append(Rejection(index=i, error=f"body: invalid JSON: {e}"))
                continue
        else:
            obj = raw
        item = mention_from_obj(obj, f"[{i}]")
        state.metrics.mentions_received.labels("http").inc()
        if isinstance(item, InvalidRecord):
            state.metrics.mentions_rejected.labels("http", "invalid").inc()
            rejected.append(Rejection(index=i, error=item.error))
        else:
            publishing.append(state.publisher.publish(item, item.source))
    # Produced together: on Kafka each send waits for the broker's acknowledgement, and one
    # at a time would cap a request at one round trip per mention. Each one is deduped when
    # it starts, in order, so a repeat within the body is still counted as a duplicate.
    for produced in await asyncio.gather(*publishing):
        if produced:
            accepted += 1
        else:
            duplicates += 1
    return IngestResponse(accepted=accepted, duplicates=duplicates, rejected=rejected)


@router.get("", response_model=MentionPageOut, summary="Scored mentions, newest first")
def get_mentions(
    state: State,
    _key: Reader,
    brand: Annotated[str | None, Query(max_length=128)] = None,
    label: SentimentLabel | None = None,
    source: SourceName | None = None,
    from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    to: AwareDatetime | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> MentionPageOut:
    _check_range(from_, to)
    try:
        with state.engine.connect() as conn:
            page = list_mentions(
                conn,
                MentionFilter(brand=brand, label=label, source=source, start=from_, end=to),
                limit=limit,
                cursor=cursor,
            )
    except InvalidCursorError as e:
        raise HTTPException(UNPROCESSABLE, str(e)) from e
    return MentionPageOut(items=page.items, next_cursor=page.next_cursor)


def _check_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start >= end:
        raise HTTPException(UNPROCESSABLE, "from: must be before 'to'")
