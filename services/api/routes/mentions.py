"""``GET /api/v1/mentions``: scored mentions, newest first. (Pushing them in is the
ingest service's endpoint, ``services/ingest/http.py``; the embedded launcher mounts it
here too.)"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from services.api.deps import Reader, State
from services.api.errors import UNPROCESSABLE
from services.core.languages import LANGUAGE_CODES, parse_language_code
from services.core.models import (
    BrandSentiment,
    Rfc3339Time,
    ScoredMention,
    SourceName,
    VerdictLabel,
)
from services.core.storage.reads import InvalidCursorError, MentionFilter, list_mentions

router = APIRouter(prefix="/api/v1/mentions", tags=["mentions"])


class MentionOut(ScoredMention):
    """A stored mention as served: ``sentiment_by_brand`` always present (issue 16)."""

    sentiment_by_brand: dict[str, BrandSentiment] = Field(
        description="The sentiment toward each matched brand: scored per brand when the "
        "mention names several (targeted true), else the mention's own (targeted false)"
    )


class MentionPageOut(BaseModel):
    items: list[MentionOut]
    next_cursor: str | None


@router.get("", response_model=MentionPageOut, summary="Scored mentions, newest first")
def get_mentions(
    state: State,
    _key: Reader,
    brand: Annotated[
        str | None,
        Query(
            max_length=128,
            description="Mentions naming this brand; each item's sentiment is then the "
            "sentiment toward it",
        ),
    ] = None,
    label: Annotated[
        VerdictLabel | None,
        Query(
            description="The sentiment label: toward the brand with `brand` (an analyst's "
            "label once one counts), else the mention's own"
        ),
    ] = None,
    source: SourceName | None = None,
    lang: Annotated[
        str | None,
        Query(
            json_schema_extra={"enum": sorted(LANGUAGE_CODES)},
            description="ISO 639-1 code of the language the mentions are written in "
            "(as detected, or as the source said)",
        ),
    ] = None,
    from_: Annotated[Rfc3339Time | None, Query(alias="from")] = None,
    to: Rfc3339Time | None = None,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page, as given")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> MentionPageOut:
    _check_range(from_, to)
    language = None
    if lang is not None:
        try:
            language = parse_language_code(lang)
        except ValueError as e:
            raise HTTPException(UNPROCESSABLE, f"lang: {e}") from e
    try:
        with state.engine.connect() as conn:
            page = list_mentions(
                conn,
                MentionFilter(
                    brand=brand,
                    label=label,
                    source=source,
                    language=language,
                    start=from_,
                    end=to,
                ),
                limit=limit,
                cursor=cursor,
            )
    except InvalidCursorError as e:
        raise HTTPException(UNPROCESSABLE, str(e)) from e
    return MentionPageOut(
        items=[MentionOut.model_validate(m, from_attributes=True) for m in page.items],
        next_cursor=page.next_cursor,
    )


def _check_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start >= end:
        raise HTTPException(UNPROCESSABLE, "from: must be before 'to'")
