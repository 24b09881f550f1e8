"""mention language: the language the scorer read each mention in

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for mentions stored before: their language was never decided.
    op.add_column("mentions", sa.Column("language", sa.String(length=8), nullable=True))
    op.add_column("brand_mention_facts", sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("brand_mention_facts") as batch:
        batch.drop_column("language")
    with op.batch_alter_table("mentions") as batch:
        batch.drop_column("language")
