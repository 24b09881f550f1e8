"""Runs the configured connectors side by side, each in its own task.

For every batch a connector yields, the supervisor publishes its mentions through the
ingest publisher and only then stores the batch's checkpoint. A connector that fails is
restarted from its last stored checkpoint after a backoff (what the platform asked for
after a 429, else exponential, or the platform's own documented schedule), while the
others go on; its state, last success, last error and lag are written to the store for
the status API (see ``status.py``) and kept in the ``sentimon_source_*`` metrics.

The supervisor keeps the connectors in step with the configurations in the store
(``watch``): whoever changes a source (the API, in this process or another) only writes
the store, and every running ingest picks the change up within ``refresh_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from services.core.metrics import Metrics
from services.core.sources import SourceConfig, SourceStatus
from services.core.storage.errors import is_transient
from services.core.storage.sources import SourceStore, StoredSource
from services.ingest.accept import MentionPublisher, accept
from services.ingest.sources.base import Batch, Connector, Runtime
from services.ingest.sources.errors import RateLimited, SourceError
from services.ingest.sources.reconcile import plan_changes
from services.ingest.sources.status import StatusWriter
from services.runtime.process import log_failure

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500


def build_connector(config: SourceConfig, runtime: Runtime) -> Connector:
    """The connector for a configuration."""
    from services.ingest.sources.bluesky import BlueskyConnector
    from services.ingest.sources.feeds import FeedConnector
    from services.ingest.sources.mastodon import MastodonConnector
    from services.ingest.sources.reddit import RedditConnector
    from services.ingest.sources.x import XConnector

    match config.kind:
        case "rss":
            return FeedConnector(config, runtime)
        case "mastodon":
            return MastodonConnector(config, runtime)
        case "bluesky":
            return BlueskyConnector(config, runtime)
        case "reddit":
            return RedditConnector(config, runtime)
        case "x":
            return XConnector(config, runtime)


class SourceSupervisor:
    def __init__(
        self,
        publisher: MentionPublisher,
        store: SourceStore,
        metrics: Metrics,
        runtime: Runtime,
        *,
        factory: Callable[[SourceConfig, Runtime], Connector] = build_connector,
        refresh_s: float = 5.0,
        status_throttle_s: float = 1.0,
    ) -> None:
        self._publisher = publisher
        self._store = store
        self._metrics = metrics
        self._runtime = runtime
        self._factory = factory
        self._refresh_s = refresh_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._status = StatusWriter(store.save_statuses, throttle_s=status_throttle_s)
        self._status_task: asyncio.Task[None] | None = None
        # What ``reconcile`` started, as stored then; and the store's version it read.
        self._applied: dict[str, StoredSource] = {}
        self._seen_version: object = None
        self._reconciling = asyncio.Lock()
        self._watch_task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()

    # --- following the store

    async def reconcile(self) -> None:
        """Start the sources added to the store since the last call, restart the changed
        ones from their checkpoint, stop the deleted ones and forget their checkpoint
        and status. Costs one small query when nothing changed. Store errors raise."""
        async with self._reconciling:
            if self._closed.is_set():
                return
            version = await asyncio.to_thread(self._store.version)
            if version == self._seen_version:
                return
            stored = await asyncio.to_thread(self._store.entries)
            changes = plan_changes(self._applied, stored)
            for name in changes.stop:
                await self.stop(name, forget=True)
                del self._applied[name]
            for entry in changes.renew:
                await self.stop(entry.config.name, forget=True)
            for entry in (*changes.start, *changes.renew, *changes.restart):
                await self.start(entry.config)
                self._applied[entry.config.name] = entry
            self._seen_version = version
            if changes:
                log.info(
                    "sources: %s", ", ".join(f"{e.config.name} ({e.config.kind})" for e in stored)
                )

    async def watch(self) -> None:
        """``reconcile`` now and every ``refresh_s`` seconds, until ``close()``. A store
        that is away is tried again at the next check; other errors raise."""
        while not self._closed.is_set():
            try:
                await self.reconcile()
            except Exception as e:
                if not is_transient(e):
                    raise
                log.warning(
                    "sources: the store is away (trying again in %.0f s): %s", self._refresh_s, e
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._refresh_s):  # see StatusWriter.run
                    await self._closed.wait()

    def start_watching(self) -> None:
        """Run ``watch`` in a task of this supervisor's (once; later calls do nothing);
        ``close()`` ends it."""
        if self._watch_task is None and not self._closed.is_set():
            self._watch_task = asyncio.create_task(self.watch(), name="sources:watch")
            self._watch_task.add_done_callback(log_failure)

    # --- control

    async def start(self, config: SourceConfig) -> None:
        """Run ``config``'s connector (replacing a running one of that name)."""
        await self.stop(config.name)
        if not config.enabled:
            self._put(SourceStatus(config.name, config.kind, "disabled"))
            return
        connector = self._factory(config, self._runtime)
        self.start_connector(connector)

    def start_connector(self, connector: Connector) -> None:
        name = connector.name
        if name in self._tasks:
            raise ValueError(f"source {name!r} is running already")
        self._put(SourceStatus(name, connector.kind, "starting"))
        task = asyncio.create_task(self._supervise(connector), name=f"source:{name}")
        self._tasks[name] = task

    async def stop(self, name: str, *, forget: bool = False) -> None:
        """Stop ``name``'s connector; with ``forget``, drop its status and checkpoint too."""
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self._set(name, state="stopped", next_attempt_at=None)
            self._metrics.source_up.labels(name).set(0)
        if forget:
            await self._status.forget(name)
            await asyncio.to_thread(self._store.forget, name)
            for gauge in (self._metrics.source_up, self._metrics.source_lag):
                with contextlib.suppress(KeyError):
                    gauge.remove(name)

    async def close(self) -> None:
        """Stop watching the store and every connector; write their last status."""
        self._closed.set()
        if self._watch_task is not None:
            await asyncio.gather(self._watch_task, return_exceptions=True)
        for name in list(self._tasks):
            await self.stop(name)
        await self._status.flush()
        if self._status_task is not None:
            self._status_task.cancel()
            await asyncio.gather(self._status_task, return_exceptions=True)

    # --- status

    def status(self, name: str) -> SourceStatus | None:
        return self._status.get(name)

    def statuses(self) -> list[SourceStatus]:
        return self._status.all()

    def _put(self, status: SourceStatus) -> None:
        self._status.set(status)
        if self._status_task is None:
            self._status_task = asyncio.create_task(self._status.run(), name="sources:status")
            self._status_task.add_done_callback(log_failure)

    def _set(self, name: str, **changes: object) -> None:
        current = self._status.get(name)
        if current is not None:
            self._put(replace(current, **changes))  # type: ignore[arg-type]

    # --- the loop

    async def _supervise(self, connector: Connector) -> None:
        name, kind = connector.name, connector.kind
        clock, metrics = self._runtime.clock, self._metrics
        failures = 0
        stored = await asyncio.to_thread(self._store.load_checkpoint, name)
        if stored is not None:
            self._set(name, last_success_at=stored.updated_at)
        while True:
            checkpoint = stored.state if stored is not None else None
            self._set(name, state="running", next_attempt_at=None)
            try:
                # Closed at once on any failure: its connections must not wait for the GC.
                async with contextlib.aclosing(connector.batches(checkpoint)) as batches:
                    async for batch in batches:
                        await self._accept(connector, batch)
                        failures = 0
                log.info("source %s: ended", name)
                self._set(name, state="stopped")
                metrics.source_up.labels(name).set(0)
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # one platform failing must not stop the others
                failures += 1
                delay = connector.backoff_s(e, failures)
                limited = isinstance(e, RateLimited)
                metrics.source_polls.labels(kind, "rate_limited" if limited else "error").inc()
                metrics.source_up.labels(name).set(0)
                now = clock.now()
                self._set(
                    name,
                    state="backoff",
                    last_error=str(e)[:MAX_ERROR_CHARS] or type(e).__name__,
                    last_error_at=now,
                    consecutive_failures=failures,
                    next_attempt_at=now + timedelta(seconds=delay),
                )
                log.warning(
                    "source %s: %s; retrying in %.1f s (failure %d in a row)",
                    name,
                    e,
                    delay,
                    failures,
                    exc_info=not isinstance(e, SourceError),
                )
                await self._runtime.sleep(delay)
                # Whatever was stored last is where the next attempt resumes.
                stored = await asyncio.to_thread(self._store.load_checkpoint, name)

    async def _accept(self, connector: Connector, batch: Batch) -> None:
        metrics = self._metrics
        # The one accept path (services/ingest/accept.py); the batch is produced together.
        outcome = await accept(
            batch.items, channel=connector.kind, publisher=self._publisher, metrics=metrics
        )
        accepted, duplicate, invalid = outcome.accepted, outcome.duplicates, len(outcome.invalid)
        # Only now: every mention this checkpoint covers is on the bus.
        if batch.checkpoint is not None:
            await asyncio.to_thread(self._store.save_checkpoint, connector.name, batch.checkpoint)
        now = self._runtime.clock.now()
        metrics.source_polls.labels(connector.kind, "ok").inc()
        metrics.source_up.labels(connector.name).set(1)
        newest = batch.newest
        lag = None if newest is None else max((now - newest).total_seconds(), 0.0)
        if lag is not None:
            metrics.source_lag.labels(connector.name).set(lag)
        current = self._status.get(connector.name)
        if current is None:
            return
        self._put(
            replace(
                current,
                state="running",
                last_success_at=now,
                consecutive_failures=0,
                next_attempt_at=None,
                lag_seconds=lag if lag is not None else current.lag_seconds,
                mentions_accepted=current.mentions_accepted + accepted,
                mentions_duplicate=current.mentions_duplicate + duplicate,
                records_invalid=current.records_invalid + invalid,
            )
        )
