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
    KeyedValue,
    Message,
    Producer,
    RecordMetadata,
    SendResults,
    TopicPartition,
    TopicSpec,
    all_sent,
)

__all__ = [
    "Bus",
    "BusClosedError",
    "BusError",
    "CommitFailedError",
    "Consumer",
    "KeyedValue",
    "MemoryBus",
    "Message",
    "MessageTooLargeError",
    "Producer",
    "RecordMetadata",
    "SendResults",
    "TopicPartition",
    "TopicSpec",
    "UnknownTopicError",
    "all_sent",
]
