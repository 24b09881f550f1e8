"""Keys checked while the database is away: a process that can still do its work (the
ingest: Kafka takes the mentions) keeps accepting the keys it verified recently.

While the database answers, every check goes to it, so a revoked key stops working at
once. While it does not, a key verified within ``grace_s`` still authenticates; any other
key gets the database's error (the caller answers 503, retryable).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from services.core.clock import Clock
from services.core.storage.keys import ApiKey, KeyStore

MAX_CACHED = 10_000


class GraceKeyStore(KeyStore):
    """A ``KeyStore`` whose ``authenticate`` rides out a database outage for keys it
    verified in the last ``grace_s`` seconds."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        grace_s: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(engine, clock)
        self._grace_s = grace_s
        self._monotonic = monotonic
        # sha256 of the key -> (the key's record, when the database last vouched for it)
        self._verified: dict[bytes, tuple[ApiKey, float]] = {}

    def authenticate(self, key: str) -> ApiKey | None:
        digest = hashlib.sha256(key.encode()).digest()
        try:
            found = super().authenticate(key)
        except OperationalError:
            cached = self._verified.get(digest)
            if cached is None or self._monotonic() - cached[1] > self._grace_s:
                raise
            return cached[0]
        if found is None:
            self._verified.pop(digest, None)  # revoked or unknown: forget at once
        else:
            if len(self._verified) >= MAX_CACHED:
                self._verified.clear()
            self._verified[digest] = (found, self._monotonic())
        return found
