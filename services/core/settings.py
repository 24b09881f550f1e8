"""Settings every service shares. Each service has one frozen settings class that
extends this one; it is built once in ``main`` and passed down, never read at import."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
