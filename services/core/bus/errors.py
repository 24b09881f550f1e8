"""Errors raised by bus implementations (Kafka client errors are translated to these)."""


class BusError(Exception):
    """Base class of every bus error."""


class UnknownTopicError(BusError):
    """The topic was never created."""


class CommitFailedError(BusError):
    """The consumer no longer owns a partition it tried to commit (it was rebalanced)."""


class BusClosedError(BusError):
    """The bus, producer or consumer was used after ``close``."""


class MessageTooLargeError(BusError):
    """A message is larger than the bus accepts."""
