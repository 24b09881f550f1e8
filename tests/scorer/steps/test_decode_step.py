"""Decode: poison named at the edge; the store's refusals traced back to their messages."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

import orjson
import pytest

from services.core.bus.protocol import Message
from services.core.models import Mention
from services.core.storage.writer import Refused
from services.core.stream.errors import InvalidMessage
from services.core.stream.trusted import TrustedMessages
from services.core.topics import RAW
from services.scorer.steps.decode import DecodeMentions, decode_json_model, refusals
from services.scorer.steps.write import scored_records
from tests.fixtures.mentions import mention_doc
from tests.scorer.steps.chunks import POLICY, scored_chunk


def message(value: bytes, offset: int = 0) -> Message:
    return Message(RAW, 0, offset, None, value)


def test_poison_is_named_by_its_field() -> None:
    with pytest.raises(InvalidMessage, match=r"^invalid JSON: "):
        decode_json_model(Mention, message(b"{not json"))
    poison = orjson.dumps(mention_doc(created_at="then"))
    with pytest.raises(InvalidMessage, match=r"^invalid Mention: created_at: "):
        decode_json_model(Mention, message(poison))


class Unreached:
    """The next step: ``decode`` never hands it anything."""

    async def submit(self, item: Sequence[tuple[Message, Mention]]) -> None:
        raise AssertionError("decode submitted")

    def join(self) -> Awaitable[list[Refused]]:
        raise AssertionError("decode joined")

    def terminate(self) -> None:
        raise AssertionError("decode terminated")


def test_the_very_bytes_sent_skip_validation_and_an_equal_copy_is_validated() -> None:
    trusted = TrustedMessages[Mention](10)
    decode = DecodeMentions(Unreached(), trusted)
    sent = Mention.model_validate(mention_doc(id="m1"))
    value = sent.model_dump_json().encode()
    copy = bytes(bytearray(value))  # equal, as a replayed journal or Kafka delivers it
    trusted.register(value, sent)
    parsed = decode.decode(message(copy))
    assert parsed == sent and parsed is not sent
    assert decode.decode(message(value)) is sent
    assert len(trusted) == 0
    again = decode.decode(message(value))  # redelivered after it was taken: parsed
    assert again == sent and again is not sent


def test_poison_equal_to_nothing_registered_is_still_refused_with_its_reason() -> None:
    trusted = TrustedMessages[Mention](10)
    decode = DecodeMentions(Unreached(), trusted)
    poison = orjson.dumps(mention_doc(created_at="then"))
    # Even registered, only the very object is trusted: an equal copy is validated.
    trusted.register(poison, Mention.model_validate(mention_doc()))
    with pytest.raises(InvalidMessage, match=r"^invalid Mention: created_at: "):
        decode.decode(message(bytes(bytearray(poison))))
    with pytest.raises(InvalidMessage, match=r"^invalid JSON: "):
        decode.decode(message(b"{not json"))


def test_refusals_name_the_messages_of_the_refused_mentions() -> None:
    scored = scored_chunk(["Acme is great", "Acme is awful"])
    good, bad = scored_records(scored, sampling=POLICY)
    items = [
        (message(orjson.dumps(m.model_dump(mode="json")), i), m)
        for i, m in enumerate(scored.chunk.mentions)
    ]
    (refusal,) = refusals([Refused(bad, "store refused: no")], items)
    assert refusal.message.offset == 1
    assert refusal.reason == "store refused: no"
    assert refusals([], items) == []
    assert good.mention.id == "s0"
