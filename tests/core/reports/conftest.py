"""A migrated store and its writer, on each write path and both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from services.core.clock import FrozenClock
from services.core.storage.db import make_engine, migrate
from services.core.storage.writer import MentionWriter

WRITTEN_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite-fast-path", "sqlite-returning", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, MentionWriter]]:
    if request.param == "postgresql":
        engine = make_engine(request.getfixturevalue("pg_database"))
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    returning = request.param != "sqlite-fast-path"
    yield engine, MentionWriter(engine, FrozenClock(WRITTEN_AT), use_returning=returning)
    engine.dispose()
