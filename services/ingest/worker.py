"""The ingest worker: a source's mentions, deduplicated, onto the raw topic.

The pure parts (validation in ``normalise``, ``RecentKeys``) are separate; this is the
async shell that moves items and counts what happened to them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from services.core.metrics import Metrics
from services.ingest.accept import MentionPublisher, accept
from services.ingest.sources.protocol import Source, SourceItem

__all__ = ["MAX_BATCH", "IngestStats", "MentionPublisher", "run_source"]

# At most this many items are accepted together: those a source has ready when the last
# batch is on the bus (a file replayed at once, a feed's page). A paced source's items
# (the demo, a replay at a rate) go one at a time, as they come.
MAX_BATCH = 256


@dataclass(slots=True)
class IngestStats:
    received: int = 0
    accepted: int = 0
    invalid: int = 0
    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class _Ended:
    """The source ended: exhausted (``error`` is ``None``) or failing with ``error``."""

    error: BaseException | None = None


async def _read(source: Source, ready: asyncio.Queue[SourceItem | _Ended]) -> None:
    try:
        async for item in source.items():
            await ready.put(item)
    except Exception as error:  # raised by ``run_source`` once the items before it are in
        await ready.put(_Ended(error))
    else:
        await ready.put(_Ended())


def _reader_done(ready: asyncio.Queue[SourceItem | _Ended], reader: asyncio.Task[None]) -> None:
    """Wake ``run_source`` when the reader ended without saying so: cancelled, or a
    ``BaseException`` it does not forward. With the queue full there is no room for the
    news, but then ``run_source`` is not waiting: it finds the reader done once it has
    taken every item."""
    if reader.cancelled():
        error: BaseException | None = asyncio.CancelledError("the source's reader was cancelled")
    else:
        error = reader.exception()
    if error is not None:
        with contextlib.suppress(asyncio.QueueFull):
            ready.put_nowait(_Ended(error))


async def run_source(
    source: Source,
    publisher: MentionPublisher,
    metrics: Metrics,
    *,
    on_item: Callable[[IngestStats], None] | None = None,
) -> IngestStats:
    """Drain ``source`` into the raw topic; returns when the source ends (or is cancelled),
    raises what the source or the bus raised.

    Items take the one accept path (``services.ingest.accept``): invalid records are
    logged with their position and counted, never produced. The items the source has
    ready are accepted together (up to ``MAX_BATCH``), in order, while it reads on: one
    journal write and one pass of the event loop per batch instead of per mention.
    ``on_item`` is called once per item, after the item's batch is on the bus.
    """
    stats = IngestStats()
    ready: asyncio.Queue[SourceItem | _Ended] = asyncio.Queue(MAX_BATCH)
    reader = asyncio.create_task(_read(source, ready), name=f"read:{source.name}")
    reader.add_done_callback(lambda task: _reader_done(ready, task))
    try:
        while True:
            batch: list[SourceItem] = []
            if ready.empty() and reader.done():
                reader.result()  # raises why it ended: it never ends quietly without _Ended
            entry = await ready.get()
            while not isinstance(entry, _Ended):
                batch.append(entry)
                if len(batch) >= MAX_BATCH or ready.empty():
                    break
                entry = ready.get_nowait()
            if batch:
                stats.received += len(batch)
                outcome = await accept(
                    batch, channel=source.name, publisher=publisher, metrics=metrics
                )
                stats.accepted += outcome.accepted
                stats.duplicates += outcome.duplicates
                stats.invalid += len(outcome.invalid)
                if on_item is not None:
                    for _ in batch:
                        on_item(stats)
            if isinstance(entry, _Ended):
                if entry.error is not None:
                    raise entry.error
                return stats
    finally:
        reader.cancel()
