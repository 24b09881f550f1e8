"""Fixtures of the bus tests: a bus of each implementation, and names no other test uses."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from services.core.bus import Bus, MemoryBus

BusFactory = Callable[[], Awaitable[Bus]]


async def _memory_bus() -> Bus:
    return MemoryBus()


# The implementations the contract tests run against, by test id. A Kafka entry is a
# factory that connects to a real broker and skips when none is configured, e.g.
#
#     async def _kafka_bus() -> Bus:
#         bootstrap = os.environ.get("SENTIMON_TEST_KAFKA_BOOTSTRAP")
#         if not bootstrap:
#             pytest.skip("SENTIMON_TEST_KAFKA_BOOTSTRAP is not set")
#         return await KafkaBus.connect(bootstrap)
#
# Every test asks ``unique_name`` for its topics and groups, so nothing needs cleaning
# up on the broker between tests.
_IMPLEMENTATIONS: dict[str, BusFactory] = {
    "memory": _memory_bus,
}


@pytest.fixture(params=sorted(_IMPLEMENTATIONS))
async def bus_factory(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    """Makes buses of one implementation; every bus it made is closed after the test."""
    make = _IMPLEMENTATIONS[request.param]
    made: list[Bus] = []

    async def factory() -> Bus:
        bus = await make()
        made.append(bus)
        return bus

    yield factory
    for bus in made:
        await bus.close()


@pytest.fixture
async def bus(bus_factory: BusFactory) -> Bus:
    return await bus_factory()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Returns a function giving a new topic or group name on every call.

    Names hold the test's name (to find them on a broker) and a random run id, because
    a real Kafka keeps topics and committed offsets across tests and across runs.
    """
    test = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:100]
    run = uuid.uuid4().hex[:12]
    numbers = itertools.count()

    def name(label: str) -> str:
        return f"test.{test}.{label}-{next(numbers)}.{run}"

    return name
