"""Operator views: dead letters (poison messages and why they were refused)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.api.deps import Manager, State
from services.core.storage.deadletters import list_dead_letters

router = APIRouter(prefix="/api/v1", tags=["operations"])


@router.get("/dead-letters", summary="Messages the pipeline could not process, newest first")
def dead_letters(
    state: State, _key: Manager, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    return list_dead_letters(state.engine, limit)
