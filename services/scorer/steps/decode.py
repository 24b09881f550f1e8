"""Decode: ``mentions.raw`` messages → mentions; poison is dead-lettered with the field named.

This is the step the ``ConsumerLoop`` runs (``Step``): it hands the decoded batch down the
chain, and gives the loop the batch's tail, naming the messages whose mentions the store
refused for good (the loop dead-letters them, then commits).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TypeVar

from pydantic import ValidationError

from services.core.bus.protocol import Message
from services.core.models import Mention, ScoredMention
from services.core.storage.writer import Refused
from services.core.stream.errors import InvalidMessage
from services.core.stream.loop import Refusal
from services.core.stream.trusted import TrustedMessages
from services.core.validation import describe
from services.scorer.steps.abstract import NextStep

ModelT = TypeVar("ModelT", Mention, ScoredMention)


def decode_json_model(model: type[ModelT], message: Message) -> ModelT:
    """Parse a message as ``model``; poison raises ``InvalidMessage`` naming the field."""
    try:
        return model.model_validate_json(message.value)
    except ValidationError as e:
        if any(err["type"] == "json_invalid" for err in e.errors()):
            raise InvalidMessage(f"invalid JSON: {e.errors()[0]['msg']}") from e
        raise InvalidMessage(f"invalid {model.__name__}: {describe(e)}") from e


def refusals(refused: Sequence[Refused], items: Sequence[tuple[Message, Mention]]) -> list[Refusal]:
    """The messages whose mentions the store refused, with the store's reasons."""
    if not refused:
        return []
    messages = {m.key: msg for msg, m in items}
    return [Refusal(messages[r.record.key], r.reason) for r in refused]


class DecodeMentions:
    def __init__(
        self,
        next_step: NextStep[Sequence[tuple[Message, Mention]]],
        trusted: TrustedMessages[Mention] | None = None,
    ) -> None:
        self.next_step = next_step
        # The messages this process's ingest sent and validated (embedded mode): the very
        # object sent is not parsed again; anything else (a replayed journal, Kafka) is.
        self._trusted = trusted

    def decode(self, message: Message) -> Mention:
        if self._trusted is not None:
            sent = self._trusted.take(message.value)
            if sent is not None:
                return sent
        return decode_json_model(Mention, message)

    async def handle(self, items: Sequence[tuple[Message, Mention]]) -> Awaitable[list[Refusal]]:
        try:
            await self.next_step.submit(items)
        except BaseException:
            self.next_step.terminate()
            raise
        # The last writes finish while the loop already reads the next batch; it commits
        # this one when they are done.
        return self._tail(self.next_step.join(), items)

    async def _tail(
        self, done: Awaitable[list[Refused]], items: Sequence[tuple[Message, Mention]]
    ) -> list[Refusal]:
        return refusals(await done, items)
