"""Each source's status, kept in memory and written to the store for the API.

A change of state or a new error is written at once; other changes (counters, lag, last
success) at most every ``throttle_s`` seconds per source, so a busy source costs about
one write a second, and what the store shows may lag the counters by that much.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from services.core.sources import SourceStatus
from services.core.storage.errors import is_transient

log = logging.getLogger(__name__)

SaveStatuses = Callable[[Sequence[SourceStatus]], None]


def is_urgent(written: SourceStatus | None, current: SourceStatus) -> bool:
    """Whether ``current`` must be written without waiting for the throttle: the source
    has none written yet, or its state or last error changed."""
    return (
        written is None
        or written.state != current.state
        or written.last_error_at != current.last_error_at
    )


class StatusWriter:
    def __init__(
        self,
        save: SaveStatuses,
        *,
        throttle_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._save = save
        self._throttle_s = throttle_s
        self._monotonic = monotonic
        self._current: dict[str, SourceStatus] = {}
        self._written: dict[str, SourceStatus] = {}
        self._written_at: dict[str, float] = {}
        self._dirty: set[str] = set()
        self._blocked_until = float("-inf")  # after a failed write, the store gets a rest
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()

    def get(self, name: str) -> SourceStatus | None:
        return self._current.get(name)

    def all(self) -> list[SourceStatus]:
        return [self._current[n] for n in sorted(self._current)]

    def set(self, status: SourceStatus) -> None:
        self._current[status.name] = status
        if self._written.get(status.name) == status:
            self._dirty.discard(status.name)
            return
        self._dirty.add(status.name)
        self._wake.set()

    async def forget(self, name: str) -> None:
        """Stop writing ``name``'s status; returns once no write of it is in flight."""
        self._current.pop(name, None)
        self._written.pop(name, None)
        self._written_at.pop(name, None)
        self._dirty.discard(name)
        async with self._writing:
            pass

    def due(self, now: float) -> tuple[list[str], float | None]:
        """The sources whose status is to be written now, and in how many seconds the
        next throttled one is (``None``: none waits)."""
        if now < self._blocked_until:
            return [], self._blocked_until - now
        due: list[str] = []
        wait: float | None = None
        for name in sorted(self._dirty):
            ready_at = self._written_at.get(name, float("-inf")) + self._throttle_s
            if ready_at <= now or is_urgent(self._written.get(name), self._current[name]):
                due.append(name)
            else:
                wait = ready_at - now if wait is None else min(wait, ready_at - now)
        return due, wait

    async def run(self) -> None:
        """Write statuses as they change, until cancelled. A database that is away is
        retried after ``throttle_s``; any other error from the store is raised."""
        while True:
            due, wait_s = self.due(self._monotonic())
            if due:
                await self._write(due)
                continue
            self._wake.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the event is set, and this loop would then never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()

    async def flush(self) -> None:
        """Write every status not written yet (at shutdown)."""
        if self._dirty:
            await self._write(sorted(self._dirty))

    async def _write(self, names: Sequence[str]) -> None:
        batch = [self._current[n] for n in names]
        async with self._writing:
            now = self._monotonic()
            try:
                await asyncio.to_thread(self._save, batch)
            except Exception as e:
                if not is_transient(e):
                    raise
                log.warning(
                    "source status not stored (retrying in %.1f s): %s", self._throttle_s, e
                )
                self._blocked_until = now + self._throttle_s
                return
        for status in batch:
            if status.name not in self._current:
                continue  # forgotten meanwhile
            self._written[status.name] = status
            self._written_at[status.name] = now
            if self._current[status.name] == status:
                self._dirty.discard(status.name)
