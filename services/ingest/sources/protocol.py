"""The contract every mention source implements (file replay, demo, HTTP push, and the
platform connectors that come later)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from services.core.models import Mention


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    """A record a source could read but not turn into a mention.

    ``position`` says where it came from (``line 12``, a feed entry id) and ``error``
    names the field that is wrong, so whoever owns the source can fix it.
    """

    position: str
    error: str


SourceItem = Mention | InvalidRecord


@runtime_checkable
class Source(Protocol):
    """An async stream of mentions from one place.

    ``name`` is unique per running source and labels its metrics. ``items`` yields
    mentions (and the records it could not read, so they are counted rather than
    silently lost) until the source is exhausted or cancelled; a live source never
    ends on its own. A source does not deduplicate: the ingest worker does.
    """

    name: str

    def items(self) -> AsyncIterator[SourceItem]: ...
