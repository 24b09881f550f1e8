"""report read side: the facts counted per (brand, hour, language) and their peaks per
(brand, day); a covering index that walks a label's facts most followed first; author days
by author and by followers

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.core.storage.tables import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5_000


def upgrade() -> None:
    languages = op.create_table(
        "brand_language_hour_rollups",
        sa.Column("brand", sa.String(length=128), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("mentions", sa.BigInteger(), nullable=False),
        sa.Column("unscored", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "brand", "hour", "language", name=op.f("pk_brand_language_hour_rollups")
        ),
        sqlite_with_rowid=False,
    )
    peaks = op.create_table(
        "brand_day_peaks",
        sa.Column("brand", sa.String(length=128), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("engagement", sa.BigInteger(), nullable=False),
        sa.Column("replies", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("brand", "day", name=op.f("pk_brand_day_peaks")),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_brand_mention_facts_reach",
        "brand_mention_facts",
        ["brand", "label", "followers", "engagement", "mention_pk", "replies", "author_role"],
    )
    op.create_index(
        "ix_brand_author_day_rollups_author",
        "brand_author_day_rollups",
        ["brand", "author_id", "day"],
    )
    op.create_index(
        "ix_brand_author_day_rollups_followers",
        "brand_author_day_rollups",
        ["brand", "followers", "day", "author_id"],
    )
    assert languages is not None
    assert peaks is not None
    _backfill(op.get_bind(), languages, peaks)


def _backfill(conn: sa.Connection, languages: sa.Table, peaks: sa.Table) -> None:
    """Count and peak the facts stored before, as the writer does."""
    facts = sa.Table(
        "brand_mention_facts",
        sa.MetaData(),
        sa.Column("brand", sa.String),
        sa.Column("created_at", UTCDateTime),
        sa.Column("label", sa.String),
        sa.Column("language", sa.String),
        sa.Column("engagement", sa.BigInteger),
        sa.Column("replies", sa.BigInteger),
    )
    f = facts.c
    counts: dict[tuple[str, int, str], list[int]] = {}
    tops: dict[tuple[str, int], list[int]] = {}
    rows = conn.execute(
        sa.select(
            f.brand, f.created_at, f.label, f.language, f.engagement, f.replies
        ).execution_options(stream_results=True, yield_per=_BATCH)
    )
    for brand, created, label, language, engagement, replies in rows:
        epoch = int(created.timestamp())
        c = counts.setdefault((brand, epoch - epoch % 3600, language or ""), [0, 0])
        c[0] += 1
        c[1] += label == "unscored"
        t = tops.setdefault((brand, epoch - epoch % 86_400), [engagement, replies])
        t[0] = max(t[0], engagement)
        t[1] = max(t[1], replies)
    _insert(
        conn,
        languages,
        [
            {"brand": b, "hour": h, "language": lang, "mentions": c[0], "unscored": c[1]}
            for (b, h, lang), c in sorted(counts.items())
        ],
    )
    _insert(
        conn,
        peaks,
        [
            {"brand": b, "day": d, "engagement": t[0], "replies": t[1]}
            for (b, d), t in sorted(tops.items())
        ],
    )


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, object]]) -> None:
    for i in range(0, len(rows), _BATCH):
        conn.execute(sa.insert(table), rows[i : i + _BATCH])


def downgrade() -> None:
    op.drop_index("ix_brand_author_day_rollups_followers", table_name="brand_author_day_rollups")
    op.drop_index("ix_brand_author_day_rollups_author", table_name="brand_author_day_rollups")
    op.drop_index("ix_brand_mention_facts_reach", table_name="brand_mention_facts")
    op.drop_table("brand_day_peaks")
    op.drop_table("brand_language_hour_rollups")
