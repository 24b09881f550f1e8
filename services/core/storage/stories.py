"""The mentions a story is looked for among (``services.core.stories``): one brand's
mentions of one span, as ``Post``s, for an alert's window and for a report's period."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection, select

from services.core.storage.tables import mention_brands, mentions
from services.core.stories import MAX_TEXT_CHARS, Post


def story_posts(
    conn: Connection,
    brand: str,
    start: int,
    end: int,
    limit: int,
    *,
    negative_only: bool = False,
) -> list[Post]:
    """``brand``'s mentions created in ``[start, end)`` (epoch seconds), newest first, at
    most ``limit`` (a broken stored document reads as an empty text)."""
    mb, m = mention_brands.c, mentions.c
    stmt = (
        select(m.source, m.mention_id, m.created_at, m.author_handle, m.author_followers, m.doc)
        .join(mention_brands, mb.mention_pk == m.pk)
        .where(
            mb.brand == brand,
            mb.created_at >= datetime.fromtimestamp(start, UTC),
            mb.created_at < datetime.fromtimestamp(end, UTC),
        )
        .order_by(mb.created_at.desc(), mb.mention_pk.desc())
        .limit(limit)
    )
    if negative_only:
        stmt = stmt.where(mb.label == "negative")
    out = []
    for source, mention_id, created_at, handle, followers, doc in conn.execute(stmt).all():
        try:
            data = orjson.loads(doc)
        except orjson.JSONDecodeError:
            data = {}
        data = data if isinstance(data, dict) else {}
        text, url = data.get("text"), data.get("url")
        out.append(
            Post(
                source=source,
                id=mention_id,
                text=text[:MAX_TEXT_CHARS] if isinstance(text, str) else "",
                author=handle.removeprefix("@"),
                followers=int(followers),
                created_at=created_at,
                url=url if isinstance(url, str) else None,
            )
        )
    return out


def story_posts_spread(
    conn: Connection, brand: str, start: int, end: int, slices: int, per_slice: int
) -> list[Post]:
    """Up to ``slices × per_slice`` of ``brand``'s mentions of ``[start, end)``: the latest
    ``per_slice`` of each of ``slices`` equal slices, so a long period is covered whole
    and the work stays bounded however many mentions it holds."""
    out: list[Post] = []
    step = max(60, -(-(end - start) // slices))
    for s in range(start, end, step):
        out.extend(story_posts(conn, brand, s, min(end, s + step), per_slice))
    return out
