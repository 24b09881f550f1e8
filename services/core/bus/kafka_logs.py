"""aiokafka's log, one line per kind of trouble instead of a hundred a second.

While the broker is away, aiokafka's clients retry every ~100 ms and log each attempt at
ERROR ("Unable connect to node with id 1 …", "Unable to update metadata from [1]",
"Failed fetch messages from 1 …"): about a hundred lines a second per process, which
hide everything else. ``CollapseRepeats`` lets the first record of each kind through
and counts the repeats; ``release`` (called by the Kafka bus when the broker is back)
returns that count, for one summary line, and lets each kind through again. A kind
quiet for ``quiet_s`` also passes again, so a recurrence long after is still seen.

The process installs ``AIOKAFKA_REPEATS`` on its log handlers (``install``); a handler's
filter sees the records of every ``aiokafka.*`` logger (a logger's own filter would not).
"""

from __future__ import annotations

import logging
import threading

# A kind of record: the logger, the level and the message before its arguments.
_Kind = tuple[str, int, str]
_DECIDED = "sentimon_collapse_repeats"


class CollapseRepeats(logging.Filter):
    """Pass the first record of each kind from loggers under ``prefix``; drop repeats."""

    def __init__(self, prefix: str, *, quiet_s: float = 60.0) -> None:
        super().__init__()
        self._prefix = prefix
        self._quiet_s = quiet_s
        self._last: dict[_Kind, float] = {}
        self._suppressed = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if not (name == self._prefix or name.startswith(self._prefix + ".")):
            return True
        # One decision per record, however many handlers this filter is installed on.
        decided: bool | None = getattr(record, _DECIDED, None)
        if decided is not None:
            return decided
        kind = (name, record.levelno, str(record.msg))
        with self._lock:
            last = self._last.get(kind)
            self._last[kind] = record.created
            passes = last is None or record.created - last > self._quiet_s
            if not passes:
                self._suppressed += 1
        setattr(record, _DECIDED, passes)
        return passes

    @property
    def suppressed(self) -> int:
        """Repeats dropped since the last ``release``."""
        return self._suppressed

    def release(self) -> int:
        """Forget the kinds seen (the next of each passes again) and return how many
        repeats were dropped since the last release."""
        with self._lock:
            count, self._suppressed = self._suppressed, 0
            self._last.clear()
            return count


AIOKAFKA_REPEATS = CollapseRepeats("aiokafka")


def install(handlers: list[logging.Handler]) -> None:
    """Collapse aiokafka's repeated records on ``handlers`` (idempotent)."""
    for handler in handlers:
        if AIOKAFKA_REPEATS not in handler.filters:
            handler.addFilter(AIOKAFKA_REPEATS)
