"""Dead letters kept in the database, so operators can read what was refused and why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from services.core.bus.protocol import Message
from services.core.storage.tables import dead_letters
from services.core.storage.writer import insert_for

MAX_PAYLOAD_CHARS = 65_536


def _text(data: bytes) -> str:
    # A dead letter is whatever could not be processed, NUL bytes included, and
    # PostgreSQL's text cannot hold NUL: the sink must never refuse what it keeps.
    return data.decode(errors="replace").replace("\x00", "\ufffd")


def _header(m: Message, name: str) -> str:
    for k, v in m.headers:
        if k == name:
            return _text(v)
    return ""


def store_dead_letters(engine: Engine, messages: Sequence[Message], now: datetime) -> None:
    """Insert dead letters once each (keyed by where they were in the source topic)."""
    if not messages:
        return
    rows = [
        {
            "topic": _header(m, "dlq.topic") or m.topic,
            "partition": int(_header(m, "dlq.partition") or m.partition),
            "offset": int(_header(m, "dlq.offset") or m.offset),
            "reason": _header(m, "dlq.reason") or "unknown",
            "payload": _text(m.value[:MAX_PAYLOAD_CHARS]),
            "created_at": now,
        }
        for m in messages
    ]
    with engine.begin() as conn:
        conn.execute(
            insert_for(conn, dead_letters)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["topic", "partition", "offset"])
        )


def list_dead_letters(engine: Engine, limit: int = 100) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit))
        return [
            {
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "reason": r.reason,
                "payload": r.payload,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]
