"""source connectors: configurations and checkpoints

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.core.storage.tables

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "source_configs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", services.core.storage.tables.UTCDateTime(), nullable=False),
        sa.Column("updated_at", services.core.storage.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_source_configs")),
    )
    op.create_table(
        "source_checkpoints",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", services.core.storage.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_source_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("source_checkpoints")
    op.drop_table("source_configs")
