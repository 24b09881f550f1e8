"""The relational schema, as SQLAlchemy Core tables.

Alembic migrations under ``migrations/`` create exactly this schema; a test checks that
they agree. Times are stored as UTC; per-minute rollups are keyed by the minute's start
in epoch seconds so bucketing into any interval is integer arithmetic on every backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC, returned aware (SQLite keeps no offset)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give a timezone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


# BigInteger primary keys do not autoincrement on SQLite; this variant does on both.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

# The full scored document is kept as JSON in ``doc`` (what the API returns); the
# columns beside it are the ones queries filter, sort or aggregate on.
mentions = Table(
    "mentions",
    metadata,
    Column("pk", BigIntPK, primary_key=True, autoincrement=True),
    Column("source", String(16), nullable=False),
    Column("mention_id", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("author_id", String(256), nullable=False),
    Column("author_handle", String(256), nullable=False),
    Column("author_followers", BigInteger, nullable=False),
    Column("in_reply_to_id", String(256)),
    Column("conversation_id", String(256)),
    Column("engagement", BigInteger, nullable=False),
    Column("label", String(8), nullable=False),
    Column("score", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("method", String(16), nullable=False),
    Column("spot_check", Boolean, nullable=False),
    Column("scored_at", UTCDateTime, nullable=False),
    Column("stored_at", UTCDateTime, nullable=False),
    Column("doc", Text, nullable=False),
    UniqueConstraint("source", "mention_id", name="uq_mentions_source_mention_id"),
    Index("ix_mentions_created_at_pk", "created_at", "pk"),
)

# One row per (mention, matched brand): filters by brand without scanning JSON.
mention_brands = Table(
    "mention_brands",
    metadata,
    Column(
        "mention_pk",
        BigIntPK,
        ForeignKey("mentions.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("brand", String(128), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("label", String(8), nullable=False),
    Index("ix_mention_brands_brand_created_at", "brand", "created_at", "mention_pk"),
)

brand_minute_rollups = Table(
    "brand_minute_rollups",
    metadata,
    Column("brand", String(128), primary_key=True),
    Column("minute", BigInteger, primary_key=True),  # epoch seconds of the minute's start
    Column("mentions", BigInteger, nullable=False),
    Column("positive", BigInteger, nullable=False),
    Column("neutral", BigInteger, nullable=False),
    Column("negative", BigInteger, nullable=False),
    Column("score_sum", Float, nullable=False),
    Column("reach", BigInteger, nullable=False),
    Column("engagement", BigInteger, nullable=False),
)

brands = Table(
    "brands",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("query", Text, nullable=False),
    Column("competitors", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("api_key_id", Integer, ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("topic", String(128), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("topic", "partition", "offset", name="uq_dead_letters_position"),
)
