"""alert hygiene: a rule can be snoozed; an alert remembers who acknowledged it, and when

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.core.storage.tables

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # All nullable: rules stored before are not snoozed, alerts not acknowledged. Severity
    # is not a column: it is in the alert's document, derived from its p-value.
    time = services.core.storage.tables.UTCDateTime
    op.add_column("alert_rules", sa.Column("snoozed_until", time(), nullable=True))
    op.add_column("alerts", sa.Column("acknowledged_at", time(), nullable=True))
    op.add_column("alerts", sa.Column("acknowledged_by", sa.String(length=128), nullable=True))
    op.add_column("alerts", sa.Column("acknowledged_by_key", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("acknowledged_by_key")
        batch.drop_column("acknowledged_by")
        batch.drop_column("acknowledged_at")
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_column("snoozed_until")
