"""The consume → handle → commit loop: poison to the DLQ, failures redelivered, halting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from prometheus_client import CollectorRegistry

from services.core.bus import MemoryBus, Message, TopicPartition, TopicSpec
from services.core.metrics import Metrics
from services.core.stream.dlq import DeadLetterQueue, DlqGuard, DlqLimit, reason_code
from services.core.stream.errors import DlqLimitExceeded, InvalidMessage
from services.core.stream.loop import ConsumerLoop, LoopConfig, Refusal, Step, next_offsets

TOPIC, DLQ = "in", "dlq"
PARTS = [TopicPartition(TOPIC, p) for p in range(2)]


class IntStep:
    """Decodes integers; fails ``fail_times`` times on the first batch it sees."""

    def __init__(self, fail_times: int = 0) -> None:
        self.fail_times = fail_times
        self.handled: list[int] = []

    def decode(self, message: Message) -> int:
        try:
            return int(message.value)
        except ValueError:
            raise InvalidMessage(f"not a number: {message.value[:20]!r}") from None

    async def handle(self, items: Sequence[tuple[Message, int]]) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("database unavailable")
        self.handled += [v for _, v in items]


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    b = MemoryBus()
    await b.create_topics([TopicSpec(TOPIC, 2), TopicSpec(DLQ, 1)])
    yield b
    await b.close()


async def no_sleep(_s: float) -> None:
    await asyncio.sleep(0)  # ok-sleep: yields to the loop once, waits for nothing


async def start(
    bus: MemoryBus, step: IntStep, limit: DlqLimit | None = None
) -> tuple[ConsumerLoop[int], asyncio.Task[None], Metrics]:
    metrics = Metrics(CollectorRegistry())
    producer = await bus.producer()
    loop = ConsumerLoop(
        bus,
        step,
        LoopConfig(
            "g", (TOPIC,), max_records=50, poll_timeout_s=0.05, dlq_limit=limit or DlqLimit()
        ),
        DeadLetterQueue(producer, DLQ, metrics),
        metrics,
        sleep=no_sleep,
    )
    return loop, asyncio.create_task(loop.run()), metrics


async def produce(bus: MemoryBus, values: Sequence[bytes]) -> None:
    p = await bus.producer()
    for i, v in enumerate(values):
        await p.send(TOPIC, v, key=str(i).encode())


async def test_poison_goes_to_the_dlq_with_its_reason_and_the_rest_is_handled(
    bus: MemoryBus,
) -> None:
    step = IntStep()
    await produce(bus, [b"1", b"oops", b"2", b"3"])
    loop, task, metrics = await start(bus, step)
    await loop.wait_caught_up(PARTS, timeout_s=5)
    assert sorted(step.handled) == [1, 2, 3]
    consumer = await bus.consumer("dlq-reader", [DLQ])
    (dead,) = await consumer.getmany(max_records=10, timeout_s=1)
    headers = dict(dead.headers)
    assert dead.value == b"oops"
    assert headers["dlq.reason"].startswith(b"not a number")
    assert headers["dlq.topic"] == TOPIC.encode()
    assert int(headers["dlq.offset"]) >= 0
    assert (
        metrics.registry.get_sample_value(
            "sentimon_dlq_messages_total", {"topic": TOPIC, "reason": "not_a_number"}
        )
        == 1
    )
    loop.stop()
    await task


async def test_a_failed_batch_is_not_committed_and_comes_again(bus: MemoryBus) -> None:
    step = IntStep(fail_times=2)
    await produce(bus, [b"10", b"20", b"30"])
    loop, task, metrics = await start(bus, step)
    await loop.wait_caught_up(PARTS, timeout_s=5)
    assert sorted(step.handled) == [10, 20, 30]  # all of them, after two failures
    assert (
        metrics.registry.get_sample_value("sentimon_consumer_restarts_total", {"group": "g"}) == 2
    )
    loop.stop()
    await task


async def test_a_burst_of_poison_halts_the_consumer(bus: MemoryBus) -> None:
    step = IntStep()
    await produce(bus, [b"bad"] * 10)
    loop, task, _ = await start(bus, step, DlqLimit(max_consecutive=5))
    with pytest.raises(DlqLimitExceeded):
        await task
    assert isinstance(loop.halted, DlqLimitExceeded)
    with pytest.raises(DlqLimitExceeded):
        await loop.wait_caught_up(PARTS, timeout_s=5)
    # Nothing of the halted batch was committed: it is all still there to look at.
    assert await bus.committed("g", PARTS[0]) in (None, 0)


def test_dlq_guard_ratio_window() -> None:
    guard = DlqGuard(DlqLimit(max_consecutive=100, max_invalid_ratio=0.5, window=10))
    for i in range(20):
        guard.record(i % 3 == 0)  # a third poison: fine

    def two_thirds_poison() -> None:
        for i in range(10):
            guard.record(i % 3 != 0)

    with pytest.raises(DlqLimitExceeded):
        two_thirds_poison()


def test_next_offsets_and_reason_codes() -> None:
    msgs = [
        Message("t", 0, 5, None, b""),
        Message("t", 0, 7, None, b""),
        Message("t", 1, 2, None, b""),
    ]
    assert next_offsets(msgs) == {TopicPartition("t", 0): 8, TopicPartition("t", 1): 3}
    assert reason_code("invalid Mention: created_at: naive") == "invalid_mention"


async def test_the_loop_reports_its_lag_as_it_goes(bus: MemoryBus) -> None:
    step = IntStep()
    await produce(bus, [b"1", b"2", b"3"])
    metrics = Metrics(CollectorRegistry())
    loop = ConsumerLoop(
        bus,
        step,
        LoopConfig("g", (TOPIC,), poll_timeout_s=0.05, lag_report_s=0.0),
        None,
        metrics,
        sleep=no_sleep,
    )
    task = asyncio.create_task(loop.run())

    def reported() -> list[float | None]:
        return [
            metrics.registry.get_sample_value(
                "sentimon_bus_consumer_lag_messages",
                {"topic": TOPIC, "partition": str(p), "group": "g"},
            )
            for p in (0, 1)
        ]

    for _ in range(10_000):  # bounded: the loop advances each time this test yields
        if None not in reported():
            break
        await asyncio.sleep(0)  # ok-sleep: yields to the loop once, waits for nothing
    assert reported() == [0.0, 0.0]
    loop.stop()
    await task


class SlowTailStep:
    """Returns from ``handle`` at once; the batch's work finishes when the test says."""

    def __init__(self) -> None:
        self.handled: list[int] = []
        self.tails: list[asyncio.Future[None]] = []

    def decode(self, message: Message) -> int:
        return int(message.value)

    async def handle(self, items: Sequence[tuple[Message, int]]) -> asyncio.Future[None]:
        self.handled += [v for _, v in items]
        tail: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tails.append(tail)
        return tail


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(10_000):  # bounded: the loop advances each time this test yields
        if condition():
            return
        await asyncio.sleep(0)  # ok-sleep: yields to the loop once, waits for nothing
    raise AssertionError("condition not reached")


async def test_batches_still_finishing_are_committed_in_order(bus: MemoryBus) -> None:
    await bus.create_topics([TopicSpec("one", 1)])
    p = await bus.producer()
    metrics = Metrics(CollectorRegistry())
    step = SlowTailStep()
    loop = ConsumerLoop(
        bus,
        step,
        LoopConfig("g1", ("one",), max_records=2, poll_timeout_s=0.05),
        None,
        metrics,
        sleep=no_sleep,
    )
    task = asyncio.create_task(loop.run())
    tp = TopicPartition("one", 0)
    for v in (b"1", b"2"):
        await p.send("one", v)
    await until(lambda: len(step.tails) == 1)
    for v in (b"3", b"4"):
        await p.send("one", v)
    await until(lambda: len(step.tails) == 2)  # the second batch began before the first ended
    step.tails[1].set_result(None)  # the later batch finishes first: nothing may be committed
    for _ in range(100):
        await asyncio.sleep(0)  # ok-sleep: yields to the loop once, waits for nothing
    assert await bus.committed("g1", tp) is None
    step.tails[0].set_result(None)
    await loop.wait_caught_up([tp], timeout_s=5)
    assert await bus.committed("g1", tp) == 4
    loop.stop()
    await task


async def test_a_batch_whose_tail_fails_is_delivered_again(bus: MemoryBus) -> None:
    await bus.create_topics([TopicSpec("two", 1)])
    p = await bus.producer()
    step = SlowTailStep()
    loop = ConsumerLoop(
        bus,
        step,
        LoopConfig("g2", ("two",), poll_timeout_s=0.05),
        None,
        Metrics(CollectorRegistry()),
        sleep=no_sleep,
    )
    task = asyncio.create_task(loop.run())
    await p.send("two", b"7")
    await until(lambda: len(step.tails) == 1)
    step.tails[0].set_exception(RuntimeError("write failed"))
    await until(lambda: len(step.tails) == 2)  # restarted from the committed offset: again
    step.tails[1].set_result(None)
    await loop.wait_caught_up([TopicPartition("two", 0)], timeout_s=5)
    assert step.handled == [7, 7]
    loop.stop()
    await task


async def test_waiting_for_the_group_sees_commits_of_another_member(bus: MemoryBus) -> None:
    # The waiting loop never runs, so none of the commits is its own: only the group's
    # offsets, read again, can tell it the group has caught up.
    idle, idle_task, _ = await start(bus, IntStep())
    idle_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await idle_task
    step = IntStep()
    worker, task, _ = await start(bus, step)
    await produce(bus, [str(i).encode() for i in range(40)])
    await idle.wait_caught_up(PARTS, timeout_s=10, recheck_s=0.05)
    assert sorted(step.handled) == list(range(40))
    worker.stop()
    await task


class RefusingStep:
    """Stores integers but refuses negative ones for good, as a database constraint would."""

    def __init__(self) -> None:
        self.handled: list[int] = []

    decode = IntStep.decode

    async def handle(self, items: Sequence[tuple[Message, int]]) -> Awaitable[list[Refusal]]:
        async def tail() -> list[Refusal]:
            self.handled += [v for _, v in items if v >= 0]
            return [Refusal(m, f"store refused: {v} < 0") for m, v in items if v < 0]

        return tail()


async def start_step(
    bus: MemoryBus,
    step: Step[int],
    limit: DlqLimit | None = None,
    *,
    monotonic: Callable[[], float] | None = None,
    stalled_after_s: float = 30.0,
) -> tuple[ConsumerLoop[int], asyncio.Task[None]]:
    metrics = Metrics(CollectorRegistry())
    loop = ConsumerLoop(
        bus,
        step,
        LoopConfig(
            "g",
            (TOPIC,),
            max_records=50,
            poll_timeout_s=0.05,
            dlq_limit=limit or DlqLimit(),
            stalled_after_s=stalled_after_s,
        ),
        DeadLetterQueue(await bus.producer(), DLQ, metrics),
        metrics,
        sleep=no_sleep,
        **({"monotonic": monotonic} if monotonic else {}),
    )
    return loop, asyncio.create_task(loop.run())


async def test_what_the_store_refuses_is_dead_lettered_and_the_batch_committed(
    bus: MemoryBus,
) -> None:
    step = RefusingStep()
    await produce(bus, [b"1", b"-5", b"2", b"-7", b"3"])
    loop, task = await start_step(bus, step)
    await loop.wait_caught_up(PARTS, timeout_s=5)
    assert sorted(step.handled) == [1, 2, 3]
    consumer = await bus.consumer("dlq-reader", [DLQ])
    dead = await consumer.getmany(max_records=10, timeout_s=1)
    assert sorted(d.value for d in dead) == [b"-5", b"-7"]
    assert {dict(d.headers)["dlq.reason"] for d in dead} == {
        b"store refused: -5 < 0",
        b"store refused: -7 < 0",
    }
    assert loop.halted is None and loop.progress_problem() is None
    loop.stop()
    await task


async def test_a_stream_the_store_refuses_wholesale_halts_the_consumer(bus: MemoryBus) -> None:
    # Decoding succeeds for every message, so only the store's refusals can halt it: a
    # misconfiguration must not dead-letter the whole stream.
    step = RefusingStep()
    await produce(bus, [b"-1"] * 40)
    loop, task = await start_step(bus, step, DlqLimit(max_consecutive=10_000, window=20))
    with pytest.raises(DlqLimitExceeded):
        await task
    assert isinstance(loop.halted, DlqLimitExceeded)
    assert "halted" in (loop.progress_problem() or "")


class FlakyStep(IntStep):
    """Fails ("database unavailable") while ``down``; each failure sets ``failed``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.failed = asyncio.Event()

    async def handle(self, items: Sequence[tuple[Message, int]]) -> None:
        if self.down:
            self.failed.set()
            raise RuntimeError("database unavailable")
        self.handled += [v for _, v in items]


async def test_a_loop_that_cannot_commit_says_so_and_recovers(bus: MemoryBus) -> None:
    now = [1_000.0]
    step = FlakyStep()
    await produce(bus, [b"1", b"2"])
    loop, task = await start_step(bus, step, monotonic=lambda: now[0], stalled_after_s=30)

    async def next_failure() -> None:
        step.failed.clear()
        async with asyncio.timeout(5):
            await step.failed.wait()

    await next_failure()
    assert loop.progress_problem() is None  # failing, but not for long yet
    now[0] += 31
    await next_failure()
    problem = loop.progress_problem()
    assert problem is not None
    assert "committed nothing for 31 s" in problem
    assert "database unavailable" in problem
    step.down = False  # the database is back
    await loop.wait_caught_up(PARTS, timeout_s=5)
    assert loop.progress_problem() is None
    assert sorted(step.handled) == [1, 2]
    loop.stop()
    await task


async def test_an_idle_loop_is_never_stalled(bus: MemoryBus) -> None:
    now = [0.0]
    loop, task = await start_step(bus, IntStep(), monotonic=lambda: now[0])
    await produce(bus, [b"1"])
    await loop.wait_caught_up(PARTS, timeout_s=5)
    now[0] += 3_600
    assert loop.progress_problem() is None
    loop.stop()
    await task


def test_dlq_guard_counts_late_refusals_as_poison() -> None:
    guard = DlqGuard(DlqLimit(max_consecutive=1_000, max_invalid_ratio=0.5, window=10))
    for _ in range(10):
        guard.record(False)
    guard.reclassify(5)  # half refused: at the limit, not over it
    with pytest.raises(DlqLimitExceeded):
        guard.reclassify(1)


class ChangingFailureStep(IntStep):
    """Fails ``failures`` times with the driver's changing words, then once with a bug,
    then works; each failure sets ``failed``."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.left = failures
        self.failed = asyncio.Event()

    async def handle(self, items: Sequence[tuple[Message, int]]) -> None:
        if self.left > 0:
            self.left -= 1
            self.failed.set()
            if self.left == 0:
                raise KeyError("a bug, not the database")
            raise ConnectionError(f"database away (attempt {self.left})")
        self.handled += [v for _, v in items]


async def test_a_failure_is_logged_with_its_traceback_once_per_kind(
    bus: MemoryBus, caplog: pytest.LogCaptureFixture
) -> None:
    """Five restarts on the database being away, each in other words, give one traceback
    and four one-line warnings; a different failure after them gets its own traceback."""
    step = ChangingFailureStep(6)
    await produce(bus, [b"1"])
    with caplog.at_level(logging.WARNING, logger="services.core.stream.loop"):
        loop, task = await start_step(bus, step)
        await loop.wait_caught_up(PARTS, timeout_s=5)
        loop.stop()
        await task
    records = [r for r in caplog.records if r.name == "services.core.stream.loop"]
    with_traceback = [r for r in records if r.exc_info]
    assert [type(r.exc_info[1]) for r in with_traceback if r.exc_info] == [
        ConnectionError,
        KeyError,
    ]
    assert sum("failed again" in r.getMessage() for r in records) == 4
    assert step.handled == [1]
