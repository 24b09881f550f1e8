"""Keys verified recently still authenticate while the database is away (issue 14 §5);
revocation takes effect at once while it answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from services.core.auth import Role
from services.core.clock import SystemClock
from services.core.storage.db import make_engine, migrate
from services.core.storage.keys import ApiKey, KeyStore
from services.runtime.keycache import GraceKeyStore


def test_a_recent_key_rides_out_an_outage_and_a_revoked_one_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    migrate(engine)
    now = [0.0]
    keys = GraceKeyStore(engine, SystemClock(), grace_s=300, monotonic=lambda: now[0])
    good, _ = keys.create(Role.INGEST, "pusher")
    revoked, record = keys.create(Role.INGEST, "gone")
    never_seen, _ = keys.create(Role.INGEST, "new")
    assert keys.authenticate(good) is not None
    assert keys.authenticate(revoked) is not None
    keys.revoke(record.prefix)
    assert keys.authenticate(revoked) is None  # the database answers: revoked at once

    def away(self: KeyStore, key: str) -> ApiKey | None:
        raise OperationalError("SELECT …", {}, Exception("connection refused"))

    monkeypatch.setattr(KeyStore, "authenticate", away)
    now[0] = 299.0
    found = keys.authenticate(good)
    assert found is not None and found.name == "pusher"
    with pytest.raises(OperationalError):
        keys.authenticate(revoked)  # forgotten when the database said so
    with pytest.raises(OperationalError):
        keys.authenticate(never_seen)  # never verified: the caller answers 503
    now[0] = 301.0
    with pytest.raises(OperationalError):
        keys.authenticate(good)  # the grace is over
    engine.dispose()
