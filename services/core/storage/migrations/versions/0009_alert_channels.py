"""alert channels: Slack, Teams and email endpoints beside webhooks, and digest queues

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.core.storage.tables

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = services.core.storage.tables.UTCDateTime
_BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Endpoints saved before are webhooks, sent at once.
    op.add_column(
        "webhook_endpoints",
        sa.Column("kind", sa.String(length=16), nullable=False, server_default="webhook"),
    )
    op.add_column("webhook_endpoints", sa.Column("config", sa.JSON(), nullable=True))
    op.add_column("webhook_endpoints", sa.Column("digest_minutes", sa.Integer(), nullable=True))
    op.create_table(
        "digest_items",
        sa.Column("id", _BIGPK, autoincrement=True, nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", _UTC(), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_digest_items_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_items")),
        sa.UniqueConstraint("endpoint_id", "alert_id", name="uq_digest_items_endpoint_alert"),
    )
    op.create_index(
        "ix_digest_items_open", "digest_items", ["endpoint_id", "delivery_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_digest_items_open", table_name="digest_items")
    op.drop_table("digest_items")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("digest_minutes")
        batch.drop_column("config")
        batch.drop_column("kind")
