"""owned accounts: each brand's own handles, and the mentions they wrote

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.core.storage.tables

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Brands tracked before list no owned account; mentions stored before stay counted.
    op.add_column(
        "brands", sa.Column("owned_handles", sa.JSON(), nullable=False, server_default="[]")
    )
    op.create_table(
        "mention_owners",
        sa.Column(
            "mention_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("brand", sa.String(length=128), nullable=False),
        sa.Column("created_at", services.core.storage.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mention_pk"],
            ["mentions.pk"],
            name=op.f("fk_mention_owners_mention_pk_mentions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mention_pk", "brand", name=op.f("pk_mention_owners")),
    )
    op.create_index("ix_mention_owners_brand_created_at", "mention_owners", ["brand", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_mention_owners_brand_created_at", table_name="mention_owners")
    op.drop_table("mention_owners")
    with op.batch_alter_table("brands") as batch:
        batch.drop_column("owned_handles")
