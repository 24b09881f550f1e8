"""Source configurations and checkpoints in the database.

A checkpoint is one JSON document per source, replaced whole: the supervisor saves it
only after the publisher accepted every mention it covers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from services.core.clock import Clock
from services.core.storage.errors import ConflictError, NotFoundError
from services.core.storage.tables import source_checkpoints, source_configs
from services.ingest.sources.config import SOURCE_CONFIG, SourceConfig


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    state: dict[str, Any]
    updated_at: datetime


class SourceStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    # --- configurations

    def list(self) -> list[SourceConfig]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(source_configs.c.config).order_by(source_configs.c.name))
            return [SOURCE_CONFIG.validate_python(r.config) for r in rows]

    def get(self, name: str) -> SourceConfig:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(source_configs.c.config).where(source_configs.c.name == name)
            ).first()
        if row is None:
            raise NotFoundError(f"source {name!r} does not exist")
        return SOURCE_CONFIG.validate_python(row.config)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return len(conn.execute(select(source_configs.c.name)).all())

    def create(self, config: SourceConfig) -> None:
        """``ConflictError`` if a source of that name exists."""
        now = self._clock.now()
        with self._engine.begin() as conn:
            exists = conn.execute(
                select(source_configs.c.name).where(source_configs.c.name == config.name)
            ).first()
            if exists is not None:
                raise ConflictError(f"source {config.name!r} exists already")
            conn.execute(
                insert(source_configs).values(
                    name=config.name,
                    kind=config.kind,
                    config=config.model_dump(mode="json"),
                    created_at=now,
                    updated_at=now,
                )
            )

    def replace(self, config: SourceConfig) -> None:
        """``NotFoundError`` if there is no source of that name. Changing a source's kind
        forgets its checkpoint (another platform's cursor means nothing)."""
        now = self._clock.now()
        with self._engine.begin() as conn:
            old = conn.execute(
                select(source_configs.c.kind).where(source_configs.c.name == config.name)
            ).first()
            if old is None:
                raise NotFoundError(f"source {config.name!r} does not exist")
            conn.execute(
                update(source_configs)
                .where(source_configs.c.name == config.name)
                .values(kind=config.kind, config=config.model_dump(mode="json"), updated_at=now)
            )
            if old.kind != config.kind:
                conn.execute(
                    delete(source_checkpoints).where(source_checkpoints.c.source == config.name)
                )

    def upsert(self, config: SourceConfig) -> None:
        try:
            self.replace(config)
        except NotFoundError:
            self.create(config)

    def delete(self, name: str) -> None:
        """Remove a source and its checkpoint; ``NotFoundError`` if there is none."""
        with self._engine.begin() as conn:
            done = conn.execute(delete(source_configs).where(source_configs.c.name == name))
            conn.execute(delete(source_checkpoints).where(source_checkpoints.c.source == name))
        if done.rowcount == 0:
            raise NotFoundError(f"source {name!r} does not exist")

    # --- checkpoints

    def load_checkpoint(self, source: str) -> StoredCheckpoint | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(source_checkpoints.c.state, source_checkpoints.c.updated_at).where(
                    source_checkpoints.c.source == source
                )
            ).first()
        if row is None:
            return None
        return StoredCheckpoint(dict(row.state), row.updated_at)

    def save_checkpoint(self, source: str, state: Mapping[str, Any]) -> None:
        now = self._clock.now()
        doc = dict(state)
        with self._engine.begin() as conn:
            done = conn.execute(
                update(source_checkpoints)
                .where(source_checkpoints.c.source == source)
                .values(state=doc, updated_at=now)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(source_checkpoints).values(source=source, state=doc, updated_at=now)
                )
