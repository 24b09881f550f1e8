"""Source configurations, checkpoints and status in the database.

A checkpoint is one JSON document per source, replaced whole: the supervisor saves it
only after the publisher accepted every mention it covers. A status is one row per
source, written by the ingest that runs it and read by the API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, update

from services.core.clock import Clock
from services.core.sources import SOURCE_CONFIG, SourceConfig, SourceStatus
from services.core.storage.db import writing
from services.core.storage.errors import ConflictError, NotFoundError
from services.core.storage.tables import source_checkpoints, source_configs, source_status


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    state: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSource:
    """A configuration and when its name was created: a source deleted and created again
    under the same name is another source (its checkpoint is not the old one's)."""

    config: SourceConfig
    created_at: datetime


class SourceStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    # --- configurations

    def entries(self) -> list[StoredSource]:
        """Every configuration, in name order, with its creation time."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(source_configs.c.config, source_configs.c.created_at).order_by(
                    source_configs.c.name
                )
            )
            return [
                StoredSource(SOURCE_CONFIG.validate_python(r.config), r.created_at) for r in rows
            ]

    def list(self) -> list[SourceConfig]:
        return [s.config for s in self.entries()]

    def version(self) -> tuple[int, object]:
        """Changes whenever a source is added, changed or removed: a running ingest polls
        it (one small query) and reads the configurations only when it changed."""
        with self._engine.connect() as conn:
            n, newest = conn.execute(
                select(func.count(), func.max(source_configs.c.updated_at))
            ).one()
        return int(n), newest

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
            return int(conn.execute(select(func.count()).select_from(source_configs)).scalar_one())

    def create(self, config: SourceConfig) -> None:
        """``ConflictError`` if a source of that name exists."""
        now = self._clock.now()
        with writing(self._engine) as conn:
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
        forgets its checkpoint and status (another platform's cursor means nothing)."""
        now = self._clock.now()
        with writing(self._engine) as conn:
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
                _forget(conn, config.name)

    def upsert(self, config: SourceConfig) -> None:
        try:
            self.replace(config)
        except NotFoundError:
            self.create(config)

    def delete(self, name: str) -> None:
        """Remove a source, its checkpoint and status; ``NotFoundError`` if there is none."""
        with writing(self._engine) as conn:
            done = conn.execute(delete(source_configs).where(source_configs.c.name == name))
            _forget(conn, name)
        if done.rowcount == 0:
            raise NotFoundError(f"source {name!r} does not exist")

    def forget(self, name: str) -> None:
        """Drop a source's checkpoint and status (its configuration stays, if any)."""
        with writing(self._engine) as conn:
            _forget(conn, name)

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
        with writing(self._engine) as conn:
            done = conn.execute(
                update(source_checkpoints)
                .where(source_checkpoints.c.source == source)
                .values(state=doc, updated_at=now)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(source_checkpoints).values(source=source, state=doc, updated_at=now)
                )

    # --- status

    def save_statuses(self, statuses: Sequence[SourceStatus]) -> None:
        """Write each status over the source's last one, in one transaction. Statuses of
        sources no longer configured are dropped: a deleted source stays without one."""
        if not statuses:
            return
        now = self._clock.now()
        names = [s.name for s in statuses]
        with writing(self._engine) as conn:
            configured = set(
                conn.execute(
                    select(source_configs.c.name).where(source_configs.c.name.in_(names))
                ).scalars()
            )
            present = set(
                conn.execute(
                    select(source_status.c.source).where(source_status.c.source.in_(names))
                ).scalars()
            )
            for status in statuses:
                if status.name not in configured:
                    continue
                values = {**_status_values(status), "updated_at": now}
                if status.name in present:
                    conn.execute(
                        update(source_status)
                        .where(source_status.c.source == status.name)
                        .values(values)
                    )
                else:
                    conn.execute(insert(source_status).values(source=status.name, **values))

    def load_status(self, source: str) -> SourceStatus | None:
        """The status the source's ingest wrote last; ``None`` if none did yet."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(source_status).where(source_status.c.source == source)
            ).first()
        return None if row is None else _to_status(row)


def _forget(conn: Connection, name: str) -> None:
    conn.execute(delete(source_checkpoints).where(source_checkpoints.c.source == name))
    conn.execute(delete(source_status).where(source_status.c.source == name))


_STATUS_COLUMNS = tuple(f.name for f in fields(SourceStatus) if f.name != "name")


def _status_values(status: SourceStatus) -> dict[str, Any]:
    return {c: getattr(status, c) for c in _STATUS_COLUMNS}


def _to_status(r: Row[Any]) -> SourceStatus:
    return SourceStatus(r.source, **{c: r._mapping[c] for c in _STATUS_COLUMNS})
