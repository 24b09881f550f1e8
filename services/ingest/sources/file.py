"""File replay: mentions from a JSON Lines file, optionally paced to a rate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from services.ingest.normalise import mention_from_line
from services.ingest.sources.protocol import InvalidRecord, SourceItem

MAX_LINE_BYTES = 1_048_576


class FileSource:
    """Reads ``path`` line by line; a line that is not a valid mention becomes an
    ``InvalidRecord`` naming its line number, and reading goes on. Memory stays bounded:
    an overlong line is skipped, never read whole."""

    def __init__(
        self,
        path: Path,
        *,
        rate_per_s: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = "file"
        self._path = path
        self._rate = rate_per_s
        self._sleep = sleep

    async def items(self) -> AsyncIterator[SourceItem]:
        interval = 1.0 / self._rate if self._rate else 0.0
        with self._path.open("rb") as f:
            n = 0
            while True:
                line = f.readline(MAX_LINE_BYTES + 1)
                if not line:
                    return
                n += 1
                position = f"line {n}"
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    while line and not line.endswith(b"\n"):  # skip the rest of it
                        line = f.readline(MAX_LINE_BYTES)
                    yield InvalidRecord(position, f"body: line longer than {MAX_LINE_BYTES} bytes")
                    continue
                item = mention_from_line(line, position)
                if item is None:
                    continue
                yield item
                if interval:
                    await self._sleep(interval)
                elif n % 256 == 0:
                    await asyncio.sleep(0)  # yield to the consumers between chunks
