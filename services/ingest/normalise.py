"""Turning untrusted records (JSON lines, API bodies) into mentions. Pure."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from services.core.models import Mention
from services.core.validation import describe
from services.ingest.sources.protocol import InvalidRecord, SourceItem


def mention_from_obj(obj: Any, position: str) -> SourceItem:
    """Validate one decoded JSON value as a mention; errors name the field."""
    if not isinstance(obj, dict):
        return InvalidRecord(position, f"body: expected a JSON object, got {type(obj).__name__}")
    try:
        return Mention.model_validate(obj)
    except ValidationError as e:
        return InvalidRecord(position, describe(e))


def mention_from_line(line: bytes | str, position: str) -> SourceItem | None:
    """One JSON Lines record; ``None`` for a blank line."""
    if not line.strip():
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return InvalidRecord(position, f"body: invalid JSON: {e}")
    return mention_from_obj(obj, position)
