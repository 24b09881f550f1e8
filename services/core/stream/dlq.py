"""Dead-lettering poison messages, with a limit that halts instead of dead-lettering everything."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from services.core.bus.protocol import Message, Producer
from services.core.metrics import Metrics
from services.core.stream.errors import DlqLimitExceeded

MAX_REASON_CHARS = 1_000


@dataclass(frozen=True, slots=True)
class DlqLimit:
    """Halt when ``max_consecutive`` poison messages come in a row, or when more than
    ``max_invalid_ratio`` of the last ``window`` messages were poison."""

    max_consecutive: int = 1_000
    max_invalid_ratio: float = 0.5
    window: int = 2_000


class DlqGuard:
    def __init__(self, limit: DlqLimit) -> None:
        self._limit = limit
        self._recent: deque[bool] = deque(maxlen=limit.window)
        self._invalid_in_window = 0
        self._consecutive = 0

    def reclassify(self, n: int) -> None:
        """``n`` messages recorded as valid turned out to be poison later (the store
        refused them): count them as poison, so a stream the store refuses wholesale
        halts the consumer as surely as one that does not decode."""
        flipped = 0
        for i in range(len(self._recent) - 1, -1, -1):
            if flipped == n:
                break
            if not self._recent[i]:
                self._recent[i] = True
                flipped += 1
        self._invalid_in_window += flipped
        self._consecutive += n
        self._check()

    def record(self, invalid: bool) -> None:
        if len(self._recent) == self._recent.maxlen and self._recent[0]:
            self._invalid_in_window -= 1
        self._recent.append(invalid)
        self._invalid_in_window += invalid
        self._consecutive = self._consecutive + 1 if invalid else 0
        self._check()

    def _check(self) -> None:
        lim = self._limit
        if self._consecutive >= lim.max_consecutive:
            raise DlqLimitExceeded(f"{self._consecutive} poison messages in a row")
        if (
            len(self._recent) == lim.window
            and self._invalid_in_window / lim.window > lim.max_invalid_ratio
        ):
            raise DlqLimitExceeded(
                f"{self._invalid_in_window} of the last {lim.window} messages were poison"
            )


def reason_code(reason: str) -> str:
    """A bounded label for metrics: the text before the first colon."""
    head = reason.split(":", 1)[0].strip().lower().replace(" ", "_")
    return head[:40] or "unknown"


class DeadLetterQueue:
    def __init__(self, producer: Producer, topic: str, metrics: Metrics) -> None:
        self._producer = producer
        self._topic = topic
        self._metrics = metrics

    async def send(self, message: Message, reason: str) -> None:
        """Copy ``message`` to the dead-letter topic with where it came from and why."""
        reason = reason[:MAX_REASON_CHARS]
        await self._producer.send(
            self._topic,
            message.value,
            key=message.key,
            headers=(
                ("dlq.reason", reason.encode()),
                ("dlq.topic", message.topic.encode()),
                ("dlq.partition", str(message.partition).encode()),
                ("dlq.offset", str(message.offset).encode()),
            ),
        )
        self._metrics.dead_letters.labels(message.topic, reason_code(reason)).inc()
