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
        # One pass: parse and validate together (the common, valid case).
        return Mention.model_validate_json(line)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            return InvalidRecord(position, f"body: invalid JSON: {first['msg']}")
        if first["type"] == "model_type" and not first["loc"]:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                obj = None
            return InvalidRecord(
                position, f"body: expected a JSON object, got {type(obj).__name__}"
            )
        return InvalidRecord(position, describe(e))
