"""role day rollups: brand_role_hour_rollups summed per UTC day, for a report's role totals

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTERS = ("mentions", "positive", "neutral", "negative", "reach", "engagement", "conversation")


def upgrade() -> None:
    op.create_table(
        "brand_role_day_rollups",
        sa.Column("brand", sa.String(length=128), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        *(sa.Column(c, sa.BigInteger(), nullable=False) for c in _COUNTERS),
        sa.PrimaryKeyConstraint("brand", "day", "role", name=op.f("pk_brand_role_day_rollups")),
        sqlite_with_rowid=False,
    )
    # The hours stored before, summed per day in the database (a few rows per brand and
    # hour, so one statement). The floor, not SQL's truncating %, so that an hour before
    # 1970 lands in its own day, as the writer's Python floor puts it.
    day = "hour - ((hour % 86400) + 86400) % 86400"
    sums = ", ".join(f"SUM({c})" for c in _COUNTERS)
    # Column names from this module only, no input.
    columns = ", ".join(_COUNTERS)
    statement = (
        f"INSERT INTO brand_role_day_rollups (brand, day, role, {columns}) "  # noqa: S608
        f"SELECT brand, {day}, role, {sums} FROM brand_role_hour_rollups "
        f"GROUP BY brand, {day}, role"
    )
    op.execute(statement)


def downgrade() -> None:
    op.drop_table("brand_role_day_rollups")
