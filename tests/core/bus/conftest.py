"""Fixtures of the bus tests: a bus of each implementation, and names no other test uses."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from services.core.bus import Bus, MemoryBus
from services.core.bus.journal import JournaledBus
from services.core.bus.kafka import KafkaBus
from tests.fixtures.kafka import KAFKA_TEST_OPTIONS, KafkaBroker

BusFactory = Callable[[], Awaitable[Bus]]


# The implementations the contract tests run against, by test id. Every test asks
# ``unique_name`` for its topics and groups, so nothing needs cleaning up on the broker
# between tests.
IMPLEMENTATIONS = ("kafka", "memory", "journaled")


class _EveryTopic(frozenset[str]):
    """Names every topic: the contract tests create theirs after opening the bus."""

    def __contains__(self, name: object) -> bool:
        return True


@pytest.fixture(params=IMPLEMENTATIONS)
async def bus_factory(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    """Makes buses of one implementation; every bus it made is closed after the test.

    ``kafka`` connects to the session's real broker (``kafka_broker``, started on first
    use), with short heartbeats so that rebalances take a fraction of a second.
    ``journaled`` opens a journaled bus, journaling every topic, in a new directory.
    """
    made: list[Bus] = []
    if request.param == "kafka":
        broker: KafkaBroker = request.getfixturevalue("kafka_broker")

        async def make() -> Bus:
            return await KafkaBus.connect(broker.bootstrap, **KAFKA_TEST_OPTIONS)

    elif request.param == "journaled":
        tmp_path: Path = request.getfixturevalue("tmp_path")
        numbers = itertools.count()

        async def make() -> Bus:
            return await JournaledBus.open(
                tmp_path / f"bus-{next(numbers)}", [], journaled=_EveryTopic()
            )

    else:

        async def make() -> Bus:
            return MemoryBus()

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
