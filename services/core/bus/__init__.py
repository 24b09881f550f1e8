"""The message bus: the contract (``protocol``), its errors, and the in-memory bus."""

from services.core.bus.errors import (
    BusClosedError,
    BusError,
    CommitFailedError,
    MessageTooLargeError,
    UnknownTopicError,
)
from services.core.bus.memory import MemoryBus
from services.core.bus.protocol import (
    Bus,
    Consumer,
    Message,
    Producer,
    RecordMetadata,
    TopicPartition,
    TopicSpec,
)

__all__ = [
    "Bus",
    "BusClosedError",
    "BusError",
    "CommitFailedError",
    "Consumer",
    "MemoryBus",
    "Message",
    "MessageTooLargeError",
    "Producer",
    "RecordMetadata",
    "TopicPartition",
    "TopicSpec",
    "UnknownTopicError",
]
