"""The ingest service's settings (environment variables ``SENTIMON_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from services.core.settings import KafkaSettings, MetricsSettings, SourceUrlSettings


class IngestSettings(SourceUrlSettings, MetricsSettings):
    demo: bool = Field(default=True, description="Run the demo source (fictional brands).")
    demo_rate_per_s: float = Field(
        default=0.1,
        gt=0,
        le=10_000,
        description="Average demo mentions per second over a week (more in working hours).",
    )
    demo_backfill_hours: float = Field(
        default=7 * 24, ge=0, le=90 * 24, description="History the demo generates at start."
    )
    demo_seed: int = 7
    demo_opening_incident: bool = Field(
        default=True,
        description="The live demo starts with an outage of one brand 90 s after its "
        "backfill, so the demo's alert rules fire within its first minutes.",
    )
    # The push endpoint's limits (POST /api/v1/mentions).
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_items_per_request: int = Field(default=10_000, ge=1)
    journal: bool = Field(
        default=True,
        description="Embedded mode: journal accepted mentions in <data dir>/bus until they "
        "are stored, so a killed process loses none it answered 202 for.",
    )
    # ~150 bytes a key: 200k recent keys cost ~30 MB; the store dedupes whatever gets past.
    dedupe_capacity: int = Field(default=200_000, ge=1)
    # source connectors (issue 9): what to listen to, and the platforms' credentials, which
    # come from here only (never from sources.yaml or the API); see docs/sources.md.
    sources_file: Path | None = Field(
        default=None, description="YAML file of sources (feeds, Mastodon, Bluesky, Reddit, X)."
    )
    sources_refresh_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often a running ingest checks the store for sources added, "
        "changed or removed (through the API).",
    )
    x_bearer_token: SecretStr | None = None
    reddit_client_id: str | None = None
    reddit_client_secret: SecretStr | None = None
    reddit_user_agent: str = Field(
        default="server:sentimon:0.1 (self-hosted social listening)",
        max_length=256,
        description="Reddit asks for '<platform>:<app id>:<version> (by /u/<username>)'.",
    )
    mastodon_tokens: dict[str, SecretStr] = Field(
        default_factory=dict, description='Access tokens by instance host, JSON: {"host": "token"}.'
    )


class IngestProcessSettings(IngestSettings, KafkaSettings):
    """``sentimon ingest``: sources and the HTTP push endpoint, producing to Kafka."""

    ingest_host: str = Field(default="127.0.0.1", description="Address of the push endpoint.")
    ingest_port: int = Field(default=8001, ge=1, le=65535, description="Its port.")
    shutdown_timeout_s: float = Field(
        default=30.0, gt=0, description="How long a SIGTERM waits for in-flight pushes."
    )
    push_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="How long a push waits for Kafka to take its mentions before it is "
        "answered 503 with Retry-After (at once while the broker is known to be away).",
    )
