"""source connectors: each source's status, for the API

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.core.storage.tables

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "source_status",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("last_success_at", services.core.storage.tables.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", services.core.storage.tables.UTCDateTime(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", services.core.storage.tables.UTCDateTime(), nullable=True),
        sa.Column("lag_seconds", sa.Float(), nullable=True),
        sa.Column("mentions_accepted", sa.BigInteger(), nullable=False),
        sa.Column("mentions_duplicate", sa.BigInteger(), nullable=False),
        sa.Column("records_invalid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", services.core.storage.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_source_status")),
    )


def downgrade() -> None:
    op.drop_table("source_status")
