"""Dropping mentions seen recently, before they are produced.

A bounded LRU of ``(source, id)`` keys: it saves the bus and the scorer from the
repeats sources produce (re-polled feeds, replays). It is an optimisation, not the
guarantee: the store's unique key makes writes idempotent whatever gets through.
"""

from __future__ import annotations

from collections import OrderedDict


class RecentKeys:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._keys: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def seen(self, key: tuple[str, str]) -> bool:
        """True if ``key`` was offered before (and still remembered); remembers it either way."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return True
        self._keys[key] = None
        if len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
        return False

    def forget(self, key: tuple[str, str]) -> None:
        """Undo ``seen`` for a key whose produce failed, so a retry is not taken for a repeat."""
        self._keys.pop(key, None)
