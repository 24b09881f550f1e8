"""Decode: poison named at the edge; the store's refusals traced back to their messages."""

from __future__ import annotations

import orjson
import pytest

from services.core.bus.protocol import Message
from services.core.models import Mention
from services.core.storage.writer import Refused
from services.core.stream.errors import InvalidMessage
from services.core.topics import RAW
from services.scorer.steps.decode import decode_json_model, refusals
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
