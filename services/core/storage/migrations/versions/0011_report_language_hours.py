"""report read side: the facts counted per (brand, hour, language), and an index that walks
a label's facts most followed first

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
    table = op.create_table(
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
    op.create_index(
        "ix_brand_mention_facts_reach",
        "brand_mention_facts",
        ["brand", "label", "followers", "engagement", "mention_pk", "replies", "author_role"],
    )
    assert table is not None
    _backfill(op.get_bind(), table)


def _backfill(conn: sa.Connection, table: sa.Table) -> None:
    """Count the facts stored before, per (brand, UTC hour, language), as the writer does."""
    facts = sa.Table(
        "brand_mention_facts",
        sa.MetaData(),
        sa.Column("brand", sa.String),
        sa.Column("created_at", UTCDateTime),
        sa.Column("label", sa.String),
        sa.Column("language", sa.String),
    )
    f = facts.c
    counts: dict[tuple[str, int, str], list[int]] = {}
    rows = conn.execute(
        sa.select(f.brand, f.created_at, f.label, f.language).execution_options(
            stream_results=True, yield_per=_BATCH
        )
    )
    for brand, created, label, language in rows:
        epoch = int(created.timestamp())
        c = counts.setdefault((brand, epoch - epoch % 3600, language or ""), [0, 0])
        c[0] += 1
        c[1] += label == "unscored"
    out = [
        {"brand": b, "hour": h, "language": lang, "mentions": c[0], "unscored": c[1]}
        for (b, h, lang), c in sorted(counts.items())
    ]
    for i in range(0, len(out), _BATCH):
        conn.execute(sa.insert(table), out[i : i + _BATCH])


def downgrade() -> None:
    op.drop_index("ix_brand_mention_facts_reach", table_name="brand_mention_facts")
    op.drop_table("brand_language_hour_rollups")
