"""Messages already validated by the process that produced them: decode them once.

In embedded mode the ingest validates every mention and the scorer, in the same process,
would parse and validate it again from the bytes on the in-memory bus. The producer
registers each exact ``bytes`` object it sends with the value it was made from; a
consumer given that very object (identity, not equality) takes the value back instead
of parsing. Anything produced another way — a replayed journal, Kafka, an equal copy —
is a different object, is not found, and is parsed and validated as usual.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["TrustedMessages"]

T = TypeVar("T")


class TrustedMessages(Generic[T]):
    """Validated values, each known by the identity of the bytes sent for it.

    Bounded: at most ``capacity`` entries; registering one more forgets the oldest (a
    message never consumed cannot grow it), and a forgotten message is simply validated
    when it is consumed. An entry keeps its bytes alive, so their ``id`` cannot be
    reused by another object while it is registered.
    """

    __slots__ = ("_capacity", "_entries", "evicted")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._entries: OrderedDict[int, tuple[bytes, T]] = OrderedDict()
        self.evicted = 0  # entries forgotten unconsumed, to make room

    def __len__(self) -> int:
        return len(self._entries)

    def register(self, value: bytes, validated: T) -> None:
        """Remember that ``value`` (this object) was made from the valid ``validated``.

        Register before sending: a consumer may read the message before ``send`` returns."""
        if len(self._entries) >= self._capacity:
            self._entries.popitem(last=False)
            self.evicted += 1
        self._entries[id(value)] = (value, validated)

    def discard(self, value: bytes) -> None:
        """Forget ``value`` (its send failed); nothing happens if it is not registered."""
        entry = self._entries.get(id(value))
        if entry is not None and entry[0] is value:
            del self._entries[id(value)]

    def take(self, value: bytes) -> T | None:
        """The value registered for this very object, forgotten as it is returned;
        ``None`` for any other object, however equal, which the caller must validate."""
        entry = self._entries.get(id(value))
        if entry is None or entry[0] is not value:
            return None
        del self._entries[id(value)]
        return entry[1]
