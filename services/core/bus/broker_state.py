"""Whether the Kafka broker answers, as the bus's probe last found it: the pure part of
the broker watch (``KafkaBus`` probes; this remembers, and says when the state changes).

aiokafka reconnects by itself and its sends and fetches wait rather than fail, so
without a probe an outage shows nowhere: this is what ``/readyz``, the push endpoint and
``sentimon_bus_broker_up`` read.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class BrokerState:
    """Up until a probe fails; ``down_since`` is the time (clock seconds) of the first
    failed probe of the current outage, ``None`` while up."""

    bootstrap: str
    down_since: float | None = None
    last_error: str = ""

    @property
    def up(self) -> bool:
        return self.down_since is None

    def probe_failed(self, now: float, error: str) -> bool:
        """Record a failed probe; True if the broker was up until now (a state change)."""
        self.last_error = error
        if self.down_since is None:
            self.down_since = now
            return True
        return False

    def probe_answered(self, now: float) -> float | None:
        """Record an answered probe; the outage's length if it just ended, else ``None``."""
        if self.down_since is None:
            return None
        down_for = now - self.down_since
        self.down_since = None
        return down_for

    def problem(self, now: float) -> str | None:
        """What ``/readyz`` says while the broker is away, ``None`` while it answers."""
        if self.down_since is None:
            return None
        return (
            f"kafka: broker {self.bootstrap} unreachable for {now - self.down_since:.0f} s "
            f"({self.last_error})"
        )[:300]
