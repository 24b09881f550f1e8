"""Errors of the consume → process → commit loop."""

from __future__ import annotations


class StreamError(Exception):
    """Base class of stream processing errors."""


class InvalidMessage(StreamError):
    """A message that can never be processed (poison); it goes to the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DlqLimitExceeded(StreamError):
    """Too many poison messages in a row: a bug or a misconfiguration, so the consumer halts."""
