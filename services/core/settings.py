"""Settings every service shares. Each service has one frozen settings class that
extends this one; it is built once in ``main`` and passed down, never read at import."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.core.sources import SourceUrlPolicy
from services.core.storage.db import sqlite_url


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SENTIMON_", frozen=True, extra="ignore")

    data_dir: Path = Field(
        default=Path(".sentimon"),
        description="Where all state of an instance lives (database, logs); one per instance.",
    )
    database_url: str | None = Field(
        default=None,
        description="Any SQLAlchemy URL; default: SQLite in the data directory.",
    )
    log_level: str = "INFO"

    def resolved_database_url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir)


class KafkaSettings(CommonSettings):
    """What a distributed-mode process needs to reach the Kafka broker."""

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        min_length=1,
        description="Kafka bootstrap servers, host:port[,host:port…].",
    )
    kafka_partitions: int = Field(
        default=6,
        ge=1,
        le=1024,
        description="Partitions of mentions.raw and mentions.scored when this process "
        "creates them; at most this many scorer processes share the work.",
    )


class WebhookSettings(CommonSettings):
    """The outgoing-URL policy and retry budget of webhooks: the alerts service sends
    them, the API checks the URLs users give and redelivers on request."""

    webhook_allow_loopback: bool = Field(
        default=False, description="Allow webhook URLs resolving to loopback (127.0.0.0/8, ::1)."
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs resolving to private, link-local or other internal ranges.",
    )
    webhook_retry_max_age_s: float = Field(
        default=24 * 3600.0, gt=0, description="A delivery still failing this long is given up."
    )


class SourceUrlSettings(CommonSettings):
    """The outgoing-URL policy of sources: the ingest reads with it, the API checks the
    configurations users give with it (set it alike for both)."""

    source_allow_loopback: bool = Field(
        default=False, description="Allow source URLs resolving to loopback (127.0.0.0/8, ::1)."
    )
    source_allow_private: bool = Field(
        default=False,
        description="Allow source URLs resolving to private, link-local or other internal "
        "ranges (a feed on the intranet).",
    )
    source_credential_hosts: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Hosts besides the platforms' own that may receive the X and Reddit "
        'credentials (a proxy of yours), JSON: ["host", ...].',
    )

    def source_url_policy(self) -> SourceUrlPolicy:
        return SourceUrlPolicy(
            allow_loopback=self.source_allow_loopback,
            allow_private=self.source_allow_private,
            credential_hosts=frozenset(h.strip().lower() for h in self.source_credential_hosts),
        )


class MetricsSettings(CommonSettings):
    """Who may read ``/metrics``: operational metrics are open unless a token is set;
    business gauges (tracked brands, their volumes and sentiment) are served only with a
    token, or when ``metrics_business_gauges`` opts in."""

    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="Bearer token /metrics requires (Prometheus: authorization.credentials "
        "or bearer_token_file); with it set, /metrics serves the business gauges too.",
    )
    metrics_business_gauges: bool = Field(
        default=False,
        description="Serve the per-brand gauges on /metrics without a token (anyone who can "
        "reach the port reads the tracked brands, their volumes and sentiment).",
    )

    def serves_business_gauges(self) -> bool:
        return self.metrics_token is not None or self.metrics_business_gauges
