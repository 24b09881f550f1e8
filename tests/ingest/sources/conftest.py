from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ingest.sources.fakes import FakePlatform, FakeTime


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    server = FakePlatform().start()
    yield server
    server.stop()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
