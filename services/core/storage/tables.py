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
    # ISO 639-1, as the scorer decided it (the doc's ``language``); NULL: undetermined.
    Column("language", String(8)),
    UniqueConstraint("source", "mention_id", name="uq_mentions_source_mention_id"),
    Index("ix_mentions_created_at_pk", "created_at", "pk"),
)

# One row per (mention, matched brand): filters by brand without scanning JSON. ``label``
# is the verdict toward that brand (issue 16: a mention naming two brands can be negative
# about one and positive about the other), or the analyst's label once one counts.
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
    # The brand's own accounts (services/core/owned.py): their mentions are left out of its
    # figures, and their replies answer the mentions they reply to.
    Column("owned_handles", JSON, nullable=False, server_default="[]"),
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


# --- Spot-check review queue (analysts label a sample of scored mentions) ---------------
# One item per (mention, matched brand): "irrelevant" is a verdict on one brand match, and
# sentiment toward two brands named in one mention can differ. The automated verdict is
# copied beside the item, so accuracy is always measured against what was first scored.
review_items = Table(
    "review_items",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column(
        "mention_pk",
        BigIntPK,
        ForeignKey("mentions.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("brand", String(128), nullable=False),
    Column("source", String(16), nullable=False),
    Column("auto_label", String(8), nullable=False),
    Column("auto_method", String(16), nullable=False),
    Column("auto_confidence", Float, nullable=False),
    Column("reason", String(16), nullable=False),  # random | uncertainty
    Column("weight", Float, nullable=False),  # 1 / inclusion probability
    Column("reviews_required", Integer, nullable=False),
    Column("reviews_done", Integer, nullable=False),
    Column("lease_key_id", Integer),
    Column("lease_expires_at", UTCDateTime),
    Column("queued_at", UTCDateTime, nullable=False),
    UniqueConstraint("mention_pk", "brand", name="uq_review_items_mention_brand"),
    Index("ix_review_items_open", "reviews_done", "id"),
)

review_labels = Table(
    "review_labels",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column(
        "item_id",
        BigIntPK,
        ForeignKey("review_items.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("analyst_key_id", Integer, nullable=False),
    Column("label", String(16), nullable=False),  # positive|neutral|negative|irrelevant
    Column("labelled_at", UTCDateTime, nullable=False),
    UniqueConstraint("item_id", "analyst_key_id", name="uq_review_labels_item_analyst"),
    Index("ix_review_labels_analyst_key_id", "analyst_key_id", "id"),
)

review_skips = Table(
    "review_skips",
    metadata,
    Column(
        "item_id",
        BigIntPK,
        ForeignKey("review_items.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("analyst_key_id", Integer, primary_key=True),
    Column("skipped_at", UTCDateTime, nullable=False),
)

# Every label change, never updated or deleted: who, when, before → after.
review_audit = Table(
    "review_audit",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("item_id", BigIntPK, nullable=False),
    Column("analyst_key_id", Integer, nullable=False),
    Column("analyst_name", String(128), nullable=False),
    Column("action", String(16), nullable=False),  # label | undo
    Column("before", String(16)),
    Column("after", String(16)),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_review_audit_item_id", "item_id", "id"),
)


def _role_counters() -> list[Column[int]]:
    """The counters of the per-role rollups (``report_rows.COUNTERS``), new columns each
    call: a column belongs to one table."""
    names = ("mentions", "positive", "neutral", "negative", "reach", "engagement", "conversation")
    return [Column(n, BigInteger, nullable=False) for n in names]


# --- Executive reports: who is saying it (author roles, conversations) -------------------
# The author's role (services/core/authors.py) is decided when a mention is stored, so the
# report never classifies bios per request. Both tables are written by MentionWriter in the
# batch's transaction, for the mentions it really inserted (services/core/storage/report_rows.py).
#
# Per (brand, hour, author role); summed over roles it equals brand_minute_rollups. Hourly:
# reports span days to months, and a report reads ~60× fewer rows than from the minutes.
# ``conversation``: mentions that are replies, in a thread someone else started, or replied to.
brand_role_hour_rollups = Table(
    "brand_role_hour_rollups",
    metadata,
    Column("brand", String(128), primary_key=True),
    Column("hour", BigInteger, primary_key=True),  # epoch seconds of the hour's start
    Column("role", String(16), primary_key=True),
    *_role_counters(),
    sqlite_with_rowid=False,
)

# One slim row per (mention, matched brand) with what "top voices", "top by reach" and
# "unanswered" rank on: a period's rows are one clustered range scan (no lookups into the
# wide mentions rows). ``replies`` is the platform's reply count; ``label`` is the verdict
# toward that brand, as in ``mention_brands``.
brand_mention_facts = Table(
    "brand_mention_facts",
    metadata,
    Column("brand", String(128), primary_key=True),
    Column("created_at", UTCDateTime, primary_key=True),
    Column("mention_pk", BigIntPK, primary_key=True),
    Column("label", String(8), nullable=False),
    Column("author_id", String(256), nullable=False),
    Column("author_role", String(16), nullable=False),
    Column("followers", BigInteger, nullable=False),
    Column("engagement", BigInteger, nullable=False),
    Column("replies", BigInteger, nullable=False),
    Column("language", String(8)),  # the mention's (the report's language mix)
    sqlite_with_rowid=False,
)
# The facts summed per (brand, UTC day, author): "top voices" groups these for the whole
# days of a period (and the facts only for its partial days), not every mention. Maxima
# (role, followers, last_pk) are what the facts' own grouping takes.
brand_author_day_rollups = Table(
    "brand_author_day_rollups",
    metadata,
    Column("brand", String(128), primary_key=True),
    Column("day", BigInteger, primary_key=True),  # epoch seconds of the UTC day's start
    Column("author_id", String(256), primary_key=True),
    Column("author_role", String(16), nullable=False),
    Column("followers", BigInteger, nullable=False),
    Column("mentions", BigInteger, nullable=False),
    Column("engagement", BigInteger, nullable=False),
    Column("replies", BigInteger, nullable=False),
    Column("positive", BigInteger, nullable=False),
    Column("negative", BigInteger, nullable=False),
    Column("last_pk", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)
# Top voices: an author's days by author (the candidates' totals are index seeks), and the
# rows by followers (the most followed rows of a period are a walk, not a sort).
Index(
    "ix_brand_author_day_rollups_author",
    brand_author_day_rollups.c.brand,
    brand_author_day_rollups.c.author_id,
    brand_author_day_rollups.c.day,
)
author_day_followers_index = Index(
    "ix_brand_author_day_rollups_followers",
    brand_author_day_rollups.c.brand,
    brand_author_day_rollups.c.followers,
    brand_author_day_rollups.c.day,
    brand_author_day_rollups.c.author_id,
)
# The most engagement and replies any one fact of a brand had on a UTC day: bounds on
# every author's per-mention averages, for the top voices' shortcut, read from a
# period's few days instead of all its author days. A relabel that removes a fact
# recomputes its day from the facts.
brand_day_peaks = Table(
    "brand_day_peaks",
    metadata,
    Column("brand", String(128), primary_key=True),
    Column("day", BigInteger, primary_key=True),  # epoch seconds of the UTC day's start
    Column("engagement", BigInteger, nullable=False),
    Column("replies", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)
# brand_role_hour_rollups summed per UTC day: a report's role totals read its whole days
# here (30 rows a brand and role for 30 days, not 720) and only its partial first and
# last days from the hours. Written with the hours, from the same increments; a relabel
# moves a count in both (``report_rows``, ``review``).
brand_role_day_rollups = Table(
    "brand_role_day_rollups",
    metadata,
    Column("brand", String(128), primary_key=True),
    Column("day", BigInteger, primary_key=True),  # epoch seconds of the UTC day's start
    Column("role", String(16), primary_key=True),
    *_role_counters(),
    sqlite_with_rowid=False,
)
# The facts counted per (brand, UTC hour, language): the report's language mix reads a
# period's whole hours here and only its partial first and last hours from the facts.
# ``language`` is '' where the mention had none (undetermined); ``unscored``: the facts
# labelled "unscored" (a language the scorer cannot read).
brand_language_hour_rollups = Table(
    "brand_language_hour_rollups",
    metadata,
    Column("brand", String(128), primary_key=True),
    Column("hour", BigInteger, primary_key=True),  # epoch seconds of the hour's start
    Column("language", String(8), primary_key=True),
    Column("mentions", BigInteger, nullable=False),
    Column("unscored", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)
# "Top by reach" and "unanswered negatives" walk a label's facts most followed first and
# stop after a few rows in the period, instead of sorting every fact of the period
# (``reports.queries``).
facts_reach_index = Index(
    "ix_brand_mention_facts_reach",
    brand_mention_facts.c.brand,
    brand_mention_facts.c.label,
    brand_mention_facts.c.followers,
    brand_mention_facts.c.engagement,
    brand_mention_facts.c.mention_pk,
    # Not ordered on: here so that the walks read the index alone.
    brand_mention_facts.c.replies,
    brand_mention_facts.c.author_role,
)
# "Has anyone answered this mention?" is a lookup of replies by the mention they answer.
Index("ix_mentions_in_reply_to_id", mentions.c.in_reply_to_id)

# Mentions written by an owned account of a brand (flagged when stored, by the owned
# handles the brand listed then): never counted in that brand's rollups, facts or review
# queue; "answered by the brand" looks replies up here.
mention_owners = Table(
    "mention_owners",
    metadata,
    Column(
        "mention_pk",
        BigIntPK,
        ForeignKey("mentions.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("brand", String(128), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_mention_owners_brand_created_at", "brand", "created_at"),
)


# --- Source connectors (RSS/Atom, Mastodon, Bluesky, Reddit, X) --------------------------
# What admins configured (sources.yaml or /api/v1/sources; never credentials), and each
# source's resume state, written only after the mentions it covers were accepted.
source_configs = Table(
    "source_configs",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("config", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

source_checkpoints = Table(
    "source_checkpoints",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("state", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# How each source is doing, as the ingest running it last wrote it (at most about once a
# second per source; a state change or an error at once), for the API to show. Never
# credentials, nor anything else from the ingest's environment.
source_status = Table(
    "source_status",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("last_success_at", UTCDateTime),
    Column("last_error", Text),
    Column("last_error_at", UTCDateTime),
    Column("consecutive_failures", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("lag_seconds", Float),
    Column("mentions_accepted", BigInteger, nullable=False),
    Column("mentions_duplicate", BigInteger, nullable=False),
    Column("records_invalid", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# --- Alerts: spike rules, alerts, webhook endpoints and their outbox ----------------------
# One alert per (rule, window): evaluators in several processes insert-or-ignore on that
# key. Deliveries are the durable outbox, written in the alert's transaction; a delivery
# keeps its Standard Webhooks ``webhook_id`` for every retry, so receivers can dedupe.
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("brand", String(128), nullable=False),
    Column("kind", String(16), nullable=False),  # negative_spike | negative_share | volume_spike
    Column("window_s", Integer, nullable=False),
    Column("baseline_days", Integer, nullable=False),
    Column("sensitivity", Float, nullable=False),  # the p-value below which a window alerts
    Column("min_count", Integer, nullable=False),
    Column("warmup_days", Float, nullable=False),
    Column("cooldown_s", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    # Silent until then: the windows that end before it are never alerted (issue 17 §5).
    Column("snoozed_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("rule_id", Integer, nullable=False),  # no FK: alerts outlive a deleted rule
    Column("brand", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_end", UTCDateTime, nullable=False),
    Column("observed", Float, nullable=False),
    Column("expected", Float, nullable=False),
    Column("p_value", Float, nullable=False),
    Column("doc", Text, nullable=False),  # the alert.v1 ``data`` object, as served
    Column("created_at", UTCDateTime, nullable=False),
    # The first acknowledgement only: who (the key's name and prefix, kept if the key is
    # revoked or renamed) and when.
    Column("acknowledged_at", UTCDateTime),
    Column("acknowledged_by", String(128)),
    Column("acknowledged_by_key", String(16)),
    UniqueConstraint("rule_id", "window_start", name="uq_alerts_rule_window"),
    Index("ix_alerts_window_start_id", "window_start", "id"),
    Index("ix_alerts_brand_window_start", "brand", "window_start"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("secret", String(128), nullable=False),  # whsec_…: needed to sign, so not hashed
    Column("event_types", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # webhook | slack | teams | email; a chat channel's URL (its secret) is in ``url``, an
    # email channel's recipients in ``config``; ``digest_minutes`` batches its alerts.
    Column("kind", String(16), nullable=False, server_default="webhook"),
    Column("config", JSON),
    Column("digest_minutes", Integer),
)

# Alerts waiting for their endpoint's next digest: ``delivery_id`` is set when a digest
# delivery takes them (in the transaction that writes it), so a restart loses none.
digest_items = Table(
    "digest_items",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column(
        "endpoint_id",
        Integer,
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("alert_id", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivery_id", BigInteger),
    UniqueConstraint("endpoint_id", "alert_id", name="uq_digest_items_endpoint_alert"),
    Index("ix_digest_items_open", "endpoint_id", "delivery_id", "created_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("webhook_id", String(64), nullable=False, unique=True),
    Column(
        "endpoint_id",
        Integer,
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("alert_id", BigInteger),
    Column("event_type", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # the exact body signed and sent every time
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("give_up_at", UTCDateTime, nullable=False),  # retries stop here (redelivery resets)
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Column("last_error", Text),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_endpoint_id", "endpoint_id", "id"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column(
        "delivery_id",
        BigIntPK,
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempt", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("status_code", Integer),
    Column("outcome", String(16), nullable=False),
    Column("error", Text),
    Column("next_attempt_at", UTCDateTime),
    Index("ix_delivery_attempts_delivery_id", "delivery_id", "attempt"),
)
