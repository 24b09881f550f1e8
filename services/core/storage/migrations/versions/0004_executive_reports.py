"""executive reports: hourly per-role rollups and per-(mention, brand) facts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 23:00:00

Mentions stored before this revision are added to both tables from their stored
documents (author role from the bio, the platform's reply count), so the report's
figures among decision makers cover the whole history, not only what arrives after;
the per-(brand, day, author) sums of the facts likewise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

import services.core.storage.tables
from services.core.authors import author_role, in_conversation
from services.core.storage.tables import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5_000
_COUNTERS = ("mentions", "positive", "neutral", "negative", "reach", "engagement", "conversation")
_LABELS = ("positive", "neutral", "negative")
_AUTHOR_DAY_COUNTERS = ("mentions", "engagement", "replies", "positive", "negative")


def upgrade() -> None:
    rollups = op.create_table(
        "brand_role_hour_rollups",
        sa.Column("brand", sa.String(length=128), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        *(sa.Column(c, sa.BigInteger(), nullable=False) for c in _COUNTERS),
        sa.PrimaryKeyConstraint("brand", "hour", "role", name=op.f("pk_brand_role_hour_rollups")),
        sqlite_with_rowid=False,
    )
    facts = op.create_table(
        "brand_mention_facts",
        sa.Column("brand", sa.String(length=128), nullable=False),
        sa.Column("created_at", services.core.storage.tables.UTCDateTime(), nullable=False),
        sa.Column(
            "mention_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("label", sa.String(length=8), nullable=False),
        sa.Column("author_id", sa.String(length=256), nullable=False),
        sa.Column("author_role", sa.String(length=16), nullable=False),
        sa.Column("followers", sa.BigInteger(), nullable=False),
        sa.Column("engagement", sa.BigInteger(), nullable=False),
        sa.Column("replies", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "brand", "created_at", "mention_pk", name=op.f("pk_brand_mention_facts")
        ),
        sqlite_with_rowid=False,
    )
    author_days = op.create_table(
        "brand_author_day_rollups",
        sa.Column("brand", sa.String(length=128), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("author_id", sa.String(length=256), nullable=False),
        sa.Column("author_role", sa.String(length=16), nullable=False),
        *(
            sa.Column(c, sa.BigInteger(), nullable=False)
            for c in ("followers", *_AUTHOR_DAY_COUNTERS, "last_pk")
        ),
        sa.PrimaryKeyConstraint(
            "brand", "day", "author_id", name=op.f("pk_brand_author_day_rollups")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_mentions_in_reply_to_id", "mentions", ["in_reply_to_id"])
    assert rollups is not None
    assert facts is not None
    assert author_days is not None
    _backfill(op.get_bind(), rollups, facts, author_days)


def _backfill(
    conn: sa.Connection, rollups: sa.Table, facts: sa.Table, author_days: sa.Table
) -> None:
    meta = sa.MetaData()
    mentions = sa.Table(
        "mentions",
        meta,
        sa.Column("pk", sa.BigInteger, primary_key=True),
        sa.Column("mention_id", sa.String),
        sa.Column("created_at", UTCDateTime),
        sa.Column("author_id", sa.String),
        sa.Column("author_followers", sa.BigInteger),
        sa.Column("in_reply_to_id", sa.String),
        sa.Column("conversation_id", sa.String),
        sa.Column("engagement", sa.BigInteger),
        sa.Column("label", sa.String),
        sa.Column("doc", sa.Text),
    )
    links = sa.Table(
        "mention_brands",
        meta,
        sa.Column("mention_pk", sa.BigInteger),
        sa.Column("brand", sa.String),
    )
    m = mentions.c
    totals: dict[tuple[str, int, str], list[int]] = {}
    # (brand, day, author) → [role, followers, *_AUTHOR_DAY_COUNTERS, last_pk]
    days: dict[tuple[str, int, str], list[Any]] = {}
    last = 0
    while True:
        rows = list(
            conn.execute(
                sa.select(
                    m.pk,
                    m.mention_id,
                    m.created_at,
                    m.author_id,
                    m.author_followers,
                    m.in_reply_to_id,
                    m.conversation_id,
                    m.engagement,
                    m.label,
                    m.doc,
                )
                .where(m.pk > last)
                .order_by(m.pk)
                .limit(_BATCH)
            )
        )
        if not rows:
            break
        last = rows[-1].pk
        brands: dict[int, list[str]] = {}
        for pk, brand in conn.execute(
            sa.select(links.c.mention_pk, links.c.brand).where(
                links.c.mention_pk.between(rows[0].pk, last)
            )
        ):
            brands.setdefault(pk, []).append(brand)
        new_facts: list[dict[str, Any]] = []
        for r in rows:
            doc = orjson.loads(r.doc)
            author = doc.get("author") or {}
            role = author_role(author.get("name"), author.get("description")).value
            replies = int((doc.get("metrics") or {}).get("replies") or 0)
            epoch = int(r.created_at.timestamp())
            talk = in_conversation(r.mention_id, r.in_reply_to_id, r.conversation_id, replies)
            for brand in brands.get(r.pk, ()):
                t = totals.setdefault((brand, epoch - epoch % 3600, role), [0] * len(_COUNTERS))
                t[0] += 1
                t[1 + _LABELS.index(r.label)] += 1
                t[4] += r.author_followers
                t[5] += r.engagement
                t[6] += talk
                d = days.get((brand, epoch - epoch % 86_400, r.author_id))
                if d is None:
                    d = days[(brand, epoch - epoch % 86_400, r.author_id)] = [
                        role,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                    ]
                d[0] = max(d[0], role)
                d[1] = max(d[1], r.author_followers)
                d[2] += 1
                d[3] += r.engagement
                d[4] += replies
                d[5] += r.label == "positive"
                d[6] += r.label == "negative"
                d[7] = max(d[7], r.pk)
                new_facts.append(
                    {
                        "brand": brand,
                        "created_at": r.created_at,
                        "mention_pk": r.pk,
                        "label": r.label,
                        "author_id": r.author_id,
                        "author_role": role,
                        "followers": r.author_followers,
                        "engagement": r.engagement,
                        "replies": replies,
                    }
                )
        if new_facts:
            conn.execute(sa.insert(facts), new_facts)
    rows_out = [
        {"brand": b, "hour": hour, "role": role, **dict(zip(_COUNTERS, t, strict=True))}
        for (b, hour, role), t in sorted(totals.items())
    ]
    for i in range(0, len(rows_out), _BATCH):
        conn.execute(sa.insert(rollups), rows_out[i : i + _BATCH])
    columns = ("author_role", "followers", *_AUTHOR_DAY_COUNTERS, "last_pk")
    days_out = [
        {"brand": b, "day": day, "author_id": a, **dict(zip(columns, d, strict=True))}
        for (b, day, a), d in sorted(days.items())
    ]
    for i in range(0, len(days_out), _BATCH):
        conn.execute(sa.insert(author_days), days_out[i : i + _BATCH])


def downgrade() -> None:
    op.drop_index("ix_mentions_in_reply_to_id", table_name="mentions")
    op.drop_table("brand_author_day_rollups")
    op.drop_table("brand_mention_facts")
    op.drop_table("brand_role_hour_rollups")
