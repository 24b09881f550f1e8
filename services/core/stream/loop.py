"""The consume → decode → handle → commit loop every consumer in Sentimon runs.

Order per batch, and why:

1. decode every message (pure); poison goes to the dead-letter topic with its reason;
2. ``handle`` the decoded batch (produce downstream, write the database …);
3. only then commit ``offset + 1`` per partition.

If step 2 raises, nothing is committed: the loop closes its consumer, backs off and
rejoins the group, so the same messages come again (at-least-once; handlers are
idempotent). A message that decodes but can never be stored (the database refuses
it) is handed back by ``handle`` as a ``Refusal``: it goes to the dead-letter topic
with the database's reason before the batch is committed, and the loop moves on. A
burst of poison (``DlqLimitExceeded``) halts the loop for good.

Progress is watched: a loop that holds messages it has not committed for longer than
``stalled_after_s`` (a batch failing over and over, say) reports why in
``progress_problem``, which readiness probes serve.

Rebalances: a commit covers only partitions the member still owns. A consumer that
announces revocations (``RevocationAware``: Kafka's) holds the rebalance until the
batches in hand are finished and committed, so the next owner starts after them; the
in-memory bus hands partitions over lazily, and the old owner's late commit is dropped.
On ``stop`` the batches in hand are finished and committed before the group is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from services.core.bus.errors import CommitFailedError
from services.core.bus.protocol import Bus, Consumer, Message, RevocationAware, TopicPartition
from services.core.metrics import Metrics
from services.core.stream.dlq import DeadLetterQueue, DlqGuard, DlqLimit
from services.core.stream.errors import DlqLimitExceeded, InvalidMessage
from services.core.stream.tasks import spawn

log = logging.getLogger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A decoded message whose work can never be done (the store refused it), and why."""

    message: Message
    reason: str


Tail = Awaitable[Sequence[Refusal] | None]


class Step(Protocol[T]):
    """One consumer's work: a pure ``decode`` and an async ``handle`` of decoded batches."""

    def decode(self, message: Message) -> T:
        """Parse one message; raise ``InvalidMessage`` (with the reason) for poison."""
        ...

    async def handle(self, items: Sequence[tuple[Message, T]]) -> Tail | None:
        """Do the batch's work durably; raise to have the whole batch delivered again.

        A step may return before the batch's work is finished, handing back an awaitable
        that completes when it is (the tail of its writes, say): the loop then starts on
        the next batch meanwhile, and commits this one only once the awaitable has
        succeeded, always in batch order. If it fails, the loop restarts as if ``handle``
        had raised. The awaitable may return the messages whose work was refused for
        good: the loop dead-letters them, then commits the batch.
        """
        ...


@dataclass(frozen=True, slots=True)
class LoopConfig:
    group: str
    topics: tuple[str, ...]
    max_records: int = 500
    poll_timeout_s: float = 0.5
    restart_backoff_s: float = 1.0
    max_restart_backoff_s: float = 30.0
    dlq_limit: DlqLimit = field(default_factory=DlqLimit)
    lag_report_s: float = 5.0
    # Batches whose work is still finishing while the next one is handled.
    max_in_flight: int = 2
    # Messages held uncommitted this long mean the loop is stuck (not ready).
    stalled_after_s: float = 30.0


@dataclass(frozen=True, slots=True)
class _InFlight:
    messages: Sequence[Message]
    done: asyncio.Future[Sequence[Refusal] | None]


async def _finished(tail: Tail | None) -> Sequence[Refusal] | None:
    return None if tail is None else await tail


def next_offsets(messages: Sequence[Message]) -> dict[TopicPartition, int]:
    """What to commit after ``messages``: the highest offset + 1, per partition."""
    # Keyed by plain tuples: a ``TopicPartition`` per message costs a dataclass each.
    ends: dict[tuple[str, int], int] = {}
    for m in messages:
        tp = (m.topic, m.partition)
        if m.offset + 1 > ends.get(tp, -1):
            ends[tp] = m.offset + 1
    return {TopicPartition(topic, partition): end for (topic, partition), end in ends.items()}


class ConsumerLoop(Generic[T]):
    def __init__(
        self,
        bus: Bus,
        step: Step[T],
        config: LoopConfig,
        dlq: DeadLetterQueue | None,
        metrics: Metrics,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._step = step
        self._config = config
        self._dlq = dlq
        self._metrics = metrics
        self._sleep = sleep
        self._monotonic = monotonic
        # Since when the loop has held messages it has not committed (None: nothing
        # held), and the last failure since its last commit: what readiness reports.
        self._held_since: float | None = None
        self.last_error: str | None = None
        # The kind of failure the loop has been restarting on since its last commit: a
        # traceback is logged when it changes, one line while it repeats.
        self._failing_with: type[BaseException] | None = None
        self._guard = DlqGuard(config.dlq_limit)
        self._stopping = asyncio.Event()
        self._committed = asyncio.Condition()
        self.halted: BaseException | None = None
        self._lag_reported_at = float("-inf")
        self.batches_done = 0
        # Exported at zero from the start: dashboards and alert rules see the series.
        metrics.consumer_restarts.labels(config.group)
        metrics.consumer_last_progress.labels(config.group).set(time.time())

    @property
    def group(self) -> str:
        return self._config.group

    @property
    def topics(self) -> tuple[str, ...]:
        return self._config.topics

    def progress_problem(self) -> str | None:
        """Why this loop is not making progress, or ``None`` if it is (or is idle)."""
        if self.halted is not None:
            return f"consumer group {self.group} halted: {self.halted}"
        held = self._held_since
        if held is None:
            return None
        waited = self._monotonic() - held
        if waited < self._config.stalled_after_s:
            return None
        problem = f"consumer group {self.group} has committed nothing for {waited:.0f} s"
        return f"{problem}; last error: {self.last_error}" if self.last_error else problem

    def stop(self) -> None:
        """Finish the batch in hand, commit it, and leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until ``stop``; restarts itself after failures, halts on ``DlqLimitExceeded``."""
        backoff = self._config.restart_backoff_s
        while not self._stopping.is_set():
            consumer = await self._bus.consumer(self._config.group, self._config.topics)
            try:
                await self._consume(consumer)
                return
            except DlqLimitExceeded as e:
                self.halted = e
                log.error("consumer group %s halted: %s", self._config.group, e)
                async with self._committed:
                    self._committed.notify_all()
                raise
            except Exception as e:
                error = f"{type(e).__name__}: {e}"[:500]
                if type(e) is not self._failing_with:
                    log.exception(
                        "consumer group %s failed; restarting from the last committed offsets",
                        self._config.group,
                    )
                else:
                    # The same kind of failure again (the database still away, whatever
                    # its driver's words this time): one line, not a traceback per restart.
                    log.warning("consumer group %s failed again: %s", self._config.group, error)
                self._failing_with = type(e)
                self.last_error = error
                if self._held_since is None:
                    self._held_since = self._monotonic()
                self._metrics.consumer_restarts.labels(self._config.group).inc()
            finally:
                await consumer.close()
            await self._sleep(backoff)
            backoff = min(backoff * 2, self._config.max_restart_backoff_s)

    async def _consume(self, consumer: Consumer) -> None:
        cfg = self._config
        in_flight: deque[_InFlight] = deque()
        # Held while a batch is decoded, handled and committed (everything but the poll),
        # so that a rebalance's revocation waits for the batch in hand.
        work = asyncio.Lock()

        async def finish_before_revocation(partitions: frozenset[TopicPartition]) -> None:
            # The group is about to hand ``partitions`` to other members: finish the work
            # in hand and commit it while they are still ours, so the next owner starts
            # after it instead of doing it again.
            async with work:
                try:
                    while in_flight:
                        await self._commit_finished(consumer, in_flight, block=True)
                except Exception:
                    # The failed batch stays first in line: the loop raises it next and restarts.
                    log.exception("group %s: a batch failed before a rebalance", cfg.group)

        if isinstance(consumer, RevocationAware):
            consumer.on_revoke(finish_before_revocation)
        try:
            while not self._stopping.is_set():
                messages = await self._poll(consumer, in_flight[0].done if in_flight else None)
                if messages and self._held_since is None:
                    self._held_since = self._monotonic()
                async with work:
                    await self._commit_finished(consumer, in_flight, block=False)
                    if not messages:
                        continue
                    decoded: list[tuple[Message, T]] = []
                    for m in messages:
                        try:
                            decoded.append((m, self._step.decode(m)))
                            self._guard.record(False)
                        except InvalidMessage as e:
                            if self._dlq is None:
                                raise
                            await self._dlq.send(m, e.reason)
                            self._guard.record(True)
                    tail = await self._step.handle(decoded) if decoded else None
                    done = spawn(_finished(tail))
                    in_flight.append(_InFlight(messages, done))
                    while len(in_flight) >= cfg.max_in_flight:
                        await self._commit_finished(consumer, in_flight, block=True)
                    await self._commit_finished(consumer, in_flight, block=False)
            # Stopping: let the work in hand finish and commit it.
            async with work:
                while in_flight:
                    await self._commit_finished(consumer, in_flight, block=True)
        finally:
            if isinstance(consumer, RevocationAware):
                consumer.on_revoke(None)
            for item in in_flight:
                item.done.cancel()

    async def _commit_finished(
        self, consumer: Consumer, in_flight: deque[_InFlight], *, block: bool
    ) -> None:
        """Commit the oldest batches whose work is done (waiting for the oldest if
        ``block``); a failed one raises, and nothing after it is committed."""
        while in_flight and (block or in_flight[0].done.done()):
            block = False
            item = in_flight[0]
            refusals = await item.done  # raises the batch's failure
            if refusals:
                await self._dead_letter_refused(refusals)
            in_flight.popleft()
            await self._commit(consumer, item.messages)
            self._held_since = self._monotonic() if in_flight else None
            self.last_error = None
            self._failing_with = None

    async def _dead_letter_refused(self, refusals: Sequence[Refusal]) -> None:
        if self._dlq is None:
            first = refusals[0]
            raise InvalidMessage(f"{len(refusals)} refused, first: {first.reason}")
        for r in refusals:
            log.warning(
                "group %s: %s[%d]@%d refused by the store, dead-lettered: %s",
                self._config.group,
                r.message.topic,
                r.message.partition,
                r.message.offset,
                r.reason,
            )
            await self._dlq.send(r.message, r.reason)
        self._guard.reclassify(len(refusals))

    async def _commit(self, consumer: Consumer, messages: Sequence[Message]) -> None:
        cfg = self._config
        # Only partitions this member still owns: one rebalanced away is the new owner's
        # to commit (it reads these messages again; the work was idempotent).
        owned = consumer.assignment()
        wanted = next_offsets(messages)
        offsets = {tp: o for tp, o in wanted.items() if tp in owned}
        if len(offsets) < len(wanted):
            log.info("group %s lost a partition before committing", cfg.group)
        try:
            if offsets:
                await consumer.commit(offsets)
        except CommitFailedError:
            # Rebalanced meanwhile: the new owner reads these again; the work was idempotent.
            log.info("group %s lost a partition before committing", cfg.group)
            return
        per_topic: dict[str, int] = {}
        committed = {(tp.topic, tp.partition) for tp in offsets}
        for m in messages:
            if (m.topic, m.partition) in committed:
                per_topic[m.topic] = per_topic.get(m.topic, 0) + 1
        for topic, n in per_topic.items():
            self._metrics.messages_consumed.labels(topic, cfg.group).inc(n)
        self.batches_done += 1
        self._metrics.consumer_last_progress.labels(cfg.group).set(time.time())
        async with self._committed:
            self._committed.notify_all()
        now = time.monotonic()
        if now - self._lag_reported_at >= cfg.lag_report_s:
            self._lag_reported_at = now
            await self.lag(sorted(consumer.assignment()))

    async def _poll(
        self, consumer: Consumer, finishing: asyncio.Future[Any] | None = None
    ) -> list[Message]:
        """``getmany``, given up (nothing taken) as soon as ``stop`` is called or the
        oldest batch in flight finishes, so that it is committed without delay."""
        cfg = self._config
        poll = asyncio.ensure_future(
            consumer.getmany(max_records=cfg.max_records, timeout_s=cfg.poll_timeout_s)
        )
        stopping = asyncio.ensure_future(self._stopping.wait())
        waits: set[asyncio.Future[Any]] = {poll, stopping}
        if finishing is not None:
            waits.add(finishing)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if poll.done():
            return poll.result()
        poll.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poll
        return []

    async def lag(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Messages not yet committed by this loop's group, per partition."""
        ends = await self._bus.end_offsets(partitions)
        out: dict[TopicPartition, int] = {}
        for tp in partitions:
            committed = await self._bus.committed(self._config.group, tp)
            out[tp] = ends[tp] - (committed or 0)
            self._metrics.consumer_lag.labels(tp.topic, str(tp.partition), self.group).set(out[tp])
        return out

    async def wait_caught_up(
        self, partitions: Sequence[TopicPartition], timeout_s: float, *, recheck_s: float = 0.25
    ) -> None:
        """Return once the group has committed everything in ``partitions``.

        This loop's commits wake the wait at once; the other members of the group (other
        loops, other processes) commit too without telling it, so the group's offsets are
        also read again every ``recheck_s``.

        Raises ``TimeoutError`` after ``timeout_s``, and the halting error if the loop halted.
        """
        async with asyncio.timeout(timeout_s), self._committed:
            while True:
                if self.halted is not None:
                    raise self.halted
                if not any((await self.lag(partitions)).values()):
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._committed.wait(), recheck_s)
