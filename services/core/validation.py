"""Turning validation failures into messages that name the field and the problem."""

from __future__ import annotations

from pydantic import ValidationError

MAX_ERRORS = 5


def field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "body"


def describe(error: ValidationError, *, prefix: str = "") -> str:
    """``'created_at: input should have timezone info; text: …'`` (at most five fields)."""
    parts = []
    for e in error.errors(include_url=False)[:MAX_ERRORS]:
        path = field_path(tuple(e["loc"]))
        if prefix:
            path = f"{prefix}.{path}" if path != "body" else prefix
        msg = e["msg"]
        if e["type"] == "timezone_aware":
            msg = "naive datetime: give an RFC 3339 time with an offset, e.g. 2026-01-31T09:30:00Z"
        elif e["type"] == "extra_forbidden":
            msg = "unknown field"
        elif e["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        parts.append(f"{path}: {msg[0].lower() + msg[1:] if msg else msg}")
    more = error.error_count() - MAX_ERRORS
    if more > 0:
        parts.append(f"… and {more} more")
    return "; ".join(parts)
