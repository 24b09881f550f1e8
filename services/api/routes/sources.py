"""``/api/v1/sources`` (admin): the platforms Sentimon listens to, and how each is doing.

A source's configuration names what to read (feeds, instance and hashtags, subreddits…);
credentials are never part of it (they come from the settings, see ``docs/sources.md``).
Its URLs are held to the source URL policy (``services.core.sources.check_source_urls``).

These routes only read and write the store. Every running ingest (embedded or
``sentimon ingest``) checks the store every ``SENTIMON_SOURCES_REFRESH_S`` (5 s) and starts
a created source, restarts a changed one from its checkpoint, and stops a deleted one.
A source's status is what its ingest last wrote (counters up to about a second behind);
a source no ingest has written a status for yet is ``pending`` if it is enabled and
``disabled`` if not. The configuration wins over an older status: a disabled source
always shows ``disabled``, an enabled one whose last status is ``disabled`` ``pending``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Response, status
from pydantic import BaseModel

from services.api.deps import Manager, State
from services.api.errors import UNPROCESSABLE
from services.core.sources import (
    MAX_SOURCES,
    SourceConfig,
    SourceStatus,
    SourceUrlError,
    check_source_urls,
)
from services.core.storage.errors import ConflictError, NotFoundError
from services.core.storage.sources import SourceStore

router = APIRouter(prefix="/api/v1/sources", tags=["sources"])

NamePath = Annotated[str, Path(max_length=64)]
ConfigBody = Annotated[SourceConfig, Body()]


class SourceStatusPublic(BaseModel):
    name: str
    kind: str
    state: str
    last_success_at: datetime | None
    seconds_since_success: float | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    next_attempt_at: datetime | None
    lag_seconds: float | None
    mentions_accepted: int
    mentions_duplicate: int
    records_invalid: int
    checkpoint_updated_at: datetime | None


class SourcePublic(BaseModel):
    name: str
    kind: str
    config: dict[str, Any]
    status: SourceStatusPublic


def _store(state: State) -> SourceStore:
    return SourceStore(state.engine, state.clock)


def _status(state: State, config: SourceConfig) -> SourceStatusPublic:
    store = _store(state)
    running = store.load_status(config.name)
    if running is None:
        running = SourceStatus(
            config.name, config.kind, "pending" if config.enabled else "disabled"
        )
    elif not config.enabled:
        running = replace(running, state="disabled")
    elif running.state == "disabled":
        running = replace(running, state="pending")
    stored = store.load_checkpoint(config.name)
    last = running.last_success_at or (stored.updated_at if stored else None)
    since = (state.clock.now() - last).total_seconds() if last else None
    return SourceStatusPublic(
        name=running.name,
        kind=config.kind,
        state=running.state,
        last_success_at=last,
        seconds_since_success=since,
        last_error=running.last_error,
        last_error_at=running.last_error_at,
        consecutive_failures=running.consecutive_failures,
        next_attempt_at=running.next_attempt_at,
        lag_seconds=running.lag_seconds,
        mentions_accepted=running.mentions_accepted,
        mentions_duplicate=running.mentions_duplicate,
        records_invalid=running.records_invalid,
        checkpoint_updated_at=stored.updated_at if stored else None,
    )


def _public(state: State, config: SourceConfig) -> SourcePublic:
    doc = config.model_dump(mode="json")
    return SourcePublic(
        name=config.name, kind=config.kind, config=doc, status=_status(state, config)
    )


async def _check_urls(state: State, config: SourceConfig) -> None:
    """422 naming the field for a URL the source URL policy refuses (``SENTIMON_SOURCE_*``:
    an internal address, or platform credentials bound for another host)."""
    try:
        await asyncio.to_thread(check_source_urls, config, state.settings.source_url_policy())
    except SourceUrlError as e:
        raise HTTPException(UNPROCESSABLE, str(e)) from e


def _get(state: State, name: str) -> SourceConfig:
    try:
        return _store(state).get(name)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


@router.get("", summary="Every configured source, with its status")
def list_sources(state: State, _key: Manager) -> list[SourcePublic]:
    return [_public(state, c) for c in _store(state).list()]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a source (the ingest starts it)",
    responses={
        409: {"description": "A source of that name exists"},
        422: {"description": "A bad field, or a URL the source URL policy refuses"},
    },
)
async def create_source(state: State, _key: Manager, body: ConfigBody) -> SourcePublic:
    await _check_urls(state, body)
    store = _store(state)
    if await asyncio.to_thread(store.count) >= MAX_SOURCES:
        raise HTTPException(UNPROCESSABLE, f"name: at most {MAX_SOURCES} sources")
    try:
        await asyncio.to_thread(store.create, body)
    except ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, f"name: {e}") from e
    return await asyncio.to_thread(_public, state, body)


@router.get("/{name}")
def get_source(state: State, _key: Manager, name: NamePath) -> SourcePublic:
    return _public(state, _get(state, name))


@router.get("/{name}/status", summary="How a source is doing: last success, error, lag")
def get_source_status(state: State, _key: Manager, name: NamePath) -> SourceStatusPublic:
    return _status(state, _get(state, name))


@router.put("/{name}", summary="Change a source (it restarts from its checkpoint)")
async def replace_source(
    state: State, _key: Manager, name: NamePath, body: ConfigBody
) -> SourcePublic:
    if body.name != name:
        raise HTTPException(UNPROCESSABLE, "name: must be the name in the path")
    await _check_urls(state, body)
    try:
        await asyncio.to_thread(_store(state).replace, body)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    return await asyncio.to_thread(_public, state, body)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_source(state: State, _key: Manager, name: NamePath) -> Response:
    """Remove a source with its checkpoint and status (the ingest stops it within its
    refresh interval). Mentions it delivered are kept."""
    try:
        await asyncio.to_thread(_store(state).delete, name)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    return Response(status_code=status.HTTP_204_NO_CONTENT)
