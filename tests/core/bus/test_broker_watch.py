"""The pure parts of the broker watch: the broker's state (``broker_state.py``) and the
filter that collapses aiokafka's repeated records (``kafka_logs.py``). The watch against a
real broker: ``tests/distributed/test_broker_outage.py``."""

from __future__ import annotations

import logging

from services.core.bus.broker_state import BrokerState
from services.core.bus.kafka_logs import CollapseRepeats


def test_the_state_reports_each_change_once_and_says_what_is_wrong() -> None:
    state = BrokerState("127.0.0.1:9092")
    assert state.up and state.problem(0.0) is None
    assert state.probe_answered(1.0) is None  # up → up: no change

    assert state.probe_failed(10.0, "KafkaConnectionError: refused") is True
    assert state.probe_failed(11.0, "NodeNotReadyError: node 1") is False
    assert not state.up
    assert state.problem(25.0) == (
        "kafka: broker 127.0.0.1:9092 unreachable for 15 s (NodeNotReadyError: node 1)"
    )

    assert state.probe_answered(26.0) == 16.0
    assert state.up and state.problem(27.0) is None
    assert state.probe_answered(28.0) is None


def _record(name: str, msg: str, created: float, *args: object) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)
    record.created = created
    return record


def test_the_filter_passes_the_first_of_each_kind_and_counts_the_repeats() -> None:
    collapse = CollapseRepeats("aiokafka", quiet_s=60)
    connect = "Unable connect to node with id %s: %s"
    passed = [
        collapse.filter(_record("aiokafka", connect, 100 + i / 10, 1, "refused"))
        for i in range(150)  # 15 s of one attempt every 100 ms
    ]
    assert passed.count(True) == 1 and passed[0]
    # Another kind (another message, another logger) passes once too.
    assert collapse.filter(_record("aiokafka", "Unable to update metadata from %s", 101, [1]))
    fetch = "Failed fetch messages from %s: %s"
    assert collapse.filter(_record("aiokafka.consumer.fetcher", fetch, 101, 1, "x"))
    assert not collapse.filter(_record("aiokafka.consumer.fetcher", fetch, 102, 1, "x"))
    # Other loggers are never touched, however often they repeat.
    assert all(collapse.filter(_record("services.core.bus.kafka", "x", 100)) for _ in range(5))
    assert all(collapse.filter(_record("aiokafkax", "x", 100)) for _ in range(5))

    assert collapse.suppressed == 150
    assert collapse.release() == 150
    assert collapse.suppressed == 0
    # After the release (the broker is back) the next of a kind passes again.
    assert collapse.filter(_record("aiokafka", connect, 200, 1, "refused"))
    assert not collapse.filter(_record("aiokafka", connect, 200.1, 1, "refused"))


def test_a_kind_quiet_for_a_while_passes_again() -> None:
    collapse = CollapseRepeats("aiokafka", quiet_s=60)
    msg = "Heartbeat failed for group %s"
    assert collapse.filter(_record("aiokafka.consumer.group_coordinator", msg, 0, "g"))
    assert not collapse.filter(_record("aiokafka.consumer.group_coordinator", msg, 59, "g"))
    assert collapse.filter(_record("aiokafka.consumer.group_coordinator", msg, 200, "g"))


def test_installed_on_a_handler_it_sees_every_aiokafka_logger() -> None:
    from services.core.bus import kafka_logs

    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler, other = Collect(), Collect()
    kafka_logs.install([handler, other])
    kafka_logs.install([handler])  # idempotent
    assert handler.filters.count(kafka_logs.AIOKAFKA_REPEATS) == 1
    logger = logging.getLogger("aiokafka.test_broker_watch")
    logger.propagate = False  # only the two handlers here
    logger.addHandler(handler)
    logger.addHandler(other)
    try:
        kafka_logs.AIOKAFKA_REPEATS.release()
        for _ in range(10):
            logger.error("Unable connect to node with id %s", 1)
        # Each handler writes the first record; each repeat is counted once.
        assert seen == ["Unable connect to node with id 1"] * 2
        assert kafka_logs.AIOKAFKA_REPEATS.release() == 9
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(other)
        logger.propagate = True
