"""What a running ingest must do to match the stored source configurations: a pure diff
of the configurations it runs against those in the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.core.storage.sources import StoredSource


@dataclass(frozen=True, slots=True)
class SourceChanges:
    start: tuple[StoredSource, ...] = ()
    """New sources."""
    restart: tuple[StoredSource, ...] = ()
    """Changed sources: restarted from their checkpoint."""
    renew: tuple[StoredSource, ...] = ()
    """Sources created again under the same name, or changed to another kind: stopped,
    their checkpoint and status forgotten, started afresh."""
    stop: tuple[str, ...] = ()
    """Deleted sources: stopped, their checkpoint and status forgotten."""

    def __bool__(self) -> bool:
        return bool(self.start or self.restart or self.renew or self.stop)


def plan_changes(
    running: Mapping[str, StoredSource], stored: Sequence[StoredSource]
) -> SourceChanges:
    """The changes that turn the ``running`` sources (by name) into the ``stored`` ones."""
    start: list[StoredSource] = []
    restart: list[StoredSource] = []
    renew: list[StoredSource] = []
    for entry in stored:
        current = running.get(entry.config.name)
        if current is None:
            start.append(entry)
        elif current.created_at != entry.created_at or current.config.kind != entry.config.kind:
            renew.append(entry)
        elif current.config != entry.config:
            restart.append(entry)
    kept = {e.config.name for e in stored}
    stop = tuple(sorted(name for name in running if name not in kept))
    return SourceChanges(tuple(start), tuple(restart), tuple(renew), stop)
