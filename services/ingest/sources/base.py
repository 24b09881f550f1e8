"""What every platform connector shares: the batch it yields with its checkpoint, the
runtime it is given (clock, sleep, credentials, the brands), and the backoff policy.

A connector is a :class:`~services.ingest.sources.protocol.Source` (its ``items()``
streams mentions) that can also resume: ``batches(checkpoint)`` yields mentions in
batches, each with the checkpoint that is true once they are all accepted. The
supervisor publishes a batch's mentions and only then stores its checkpoint, so a
restart resumes after the last batch that was fully accepted: nothing lost, and at most
that one batch read again (which the store's ``(source, id)`` key makes harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from pydantic import SecretStr

from services.core.brands import BrandDefinition, BrandError, BrandMatcher
from services.core.clock import Clock, SystemClock
from services.core.models import Mention
from services.core.sources import SourceUrlPolicy
from services.ingest.sources.errors import PlatformError, RateLimited, SourceError
from services.ingest.sources.protocol import SourceItem

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Checkpoint = Mapping[str, Any]
"""A connector's resume state: JSON-serialisable (cursor, last ids, ETags)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Mentions read together, and the checkpoint that holds once all are accepted
    (``None``: the checkpoint did not change)."""

    items: Sequence[SourceItem]
    checkpoint: Checkpoint | None = None

    @property
    def newest(self) -> datetime | None:
        times = [i.created_at for i in self.items if isinstance(i, Mention)]
        return max(times) if times else None


@dataclass(frozen=True)
class Credentials:
    """Platform credentials, from the ingest settings only; ``SecretStr`` so that no
    repr, log line or status page shows them."""

    x_bearer_token: SecretStr | None = None
    reddit_client_id: str | None = None
    reddit_client_secret: SecretStr | None = None
    reddit_user_agent: str = "sentimon/0.1"
    # Mastodon access tokens by instance host (many instances need one for search).
    mastodon_tokens: Mapping[str, SecretStr] = field(default_factory=dict)


class BrandFilter(Protocol):
    """The tracked brands, for connectors that must filter (a firehose) or derive
    platform rules from them (X)."""

    def matches(self, text: str) -> bool:
        """Whether ``text`` mentions any tracked brand."""
        ...

    def definitions(self) -> Sequence[BrandDefinition]:
        """The tracked brands now, in name order."""
        ...


class StaticBrands:
    """A fixed set of brands (tests, and ``sentimon`` tools that do not watch the store)."""

    def __init__(self, definitions: Sequence[BrandDefinition]) -> None:
        self._definitions = tuple(definitions)
        self._matcher = BrandMatcher.compile(self._definitions)

    def matches(self, text: str) -> bool:
        return bool(self._matcher.match(text).brands)

    def definitions(self) -> Sequence[BrandDefinition]:
        return self._definitions


class StoredBrands:
    """The brands in the store, re-read when they change (checked at most every
    ``refresh_s`` seconds of ``clock`` time). A brand that no longer compiles is left out,
    as the scorer does."""

    def __init__(
        self,
        load: Callable[[], Sequence[BrandDefinition]],
        version: Callable[[], object],
        clock: Clock,
        refresh_s: float = 30.0,
    ) -> None:
        self._load = load
        self._version = version
        self._clock = clock
        self._refresh_s = refresh_s
        self._seen_version: object = None
        self._checked_at: datetime | None = None
        self._static = StaticBrands(())

    def _current(self) -> StaticBrands:
        now = self._clock.now()
        if self._checked_at is None or (now - self._checked_at).total_seconds() >= self._refresh_s:
            self._checked_at = now
            version = self._version()
            if version != self._seen_version:
                self._seen_version = version
                good: list[BrandDefinition] = []
                for definition in self._load():
                    try:
                        BrandMatcher.compile([definition])
                    except BrandError as e:
                        log.error("brand %r left out of source filters: %s", definition.name, e)
                        continue
                    good.append(definition)
                self._static = StaticBrands(good)
        return self._static

    def matches(self, text: str) -> bool:
        return self._current().matches(text)

    def definitions(self) -> Sequence[BrandDefinition]:
        return self._current().definitions()


@dataclass(frozen=True)
class Runtime:
    """What a connector is given: time, credentials, the brands, and where it may send
    requests (``urls``: strict unless the operator allows more)."""

    clock: Clock = field(default_factory=SystemClock)
    sleep: Sleep = asyncio.sleep
    credentials: Credentials = field(default_factory=Credentials)
    brands: BrandFilter = field(default_factory=lambda: StaticBrands(()))
    urls: SourceUrlPolicy = field(default_factory=SourceUrlPolicy)


Producer = Callable[["asyncio.Queue[Batch | BaseException]"], Awaitable[None]]


async def merge_batches(producers: Sequence[Producer]) -> AsyncIterator[Batch]:
    """The batches of several concurrent producers (streams, pollers) as one stream.

    Each producer puts its batches on the queue; the first exception one of them raises
    ends the merged stream with that exception (the others are cancelled). Producers that
    share checkpoint state must update it and put the batch without awaiting in between:
    the queue hands batches out in the order they were put, so a batch's checkpoint never
    covers a batch queued after it.
    """
    queue: asyncio.Queue[Batch | BaseException] = asyncio.Queue(maxsize=64)

    async def run(producer: Producer) -> None:
        try:
            await producer(queue)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # handed to the consumer, which raises it
            await queue.put(e)

    tasks = [asyncio.create_task(run(p)) for p in producers]
    try:
        while True:
            got = await queue.get()
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def exponential_backoff(failures: int, *, base_s: float = 1.0, cap_s: float = 300.0) -> float:
    """``base_s * 2**(failures-1)``, capped: 1, 2, 4, … 300 s for the defaults."""
    if failures <= 0:
        return 0.0
    return float(min(cap_s, base_s * 2.0 ** min(failures - 1, 30)))


class Connector:
    """Base of the platform connectors. Subclasses set ``kind`` and implement
    ``batches``; ``items`` makes every connector a plain ``Source`` as well."""

    kind: ClassVar[str]

    def __init__(self, name: str, runtime: Runtime) -> None:
        self.name = name
        self.runtime = runtime

    def batches(self, checkpoint: Checkpoint | None) -> AsyncGenerator[Batch, None]:
        """Mentions from ``checkpoint`` on (``None``: from now), in batches, until
        cancelled. Raises a ``SourceError`` when the platform fails; the caller backs off
        and calls again with the last checkpoint it stored."""
        raise NotImplementedError

    async def items(self) -> AsyncIterator[SourceItem]:
        async with contextlib.aclosing(self.batches(None)) as batches:
            async for batch in batches:
                for item in batch.items:
                    yield item

    def backoff_s(self, error: BaseException, failures: int) -> float:
        """How long to wait after the ``failures``-th failure in a row.

        429s wait what the platform said; other errors back off exponentially.
        """
        if isinstance(error, RateLimited):
            return max(error.retry_after_s, 1.0)
        if isinstance(error, PlatformError) and error.status == 0:
            return exponential_backoff(failures, base_s=0.5, cap_s=60.0)
        if isinstance(error, SourceError):
            return exponential_backoff(failures, base_s=5.0, cap_s=300.0)
        return exponential_backoff(failures, base_s=5.0, cap_s=600.0)
