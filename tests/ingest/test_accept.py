"""Accepting a batch: produced in one ``send_many``, keyed like single sends, and a
mention the bus refuses fails the batch only once the others are stored and counted."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from services.core.bus import MemoryBus, MessageTooLargeError, TopicSpec
from services.core.bus.memory import partition_for_key
from services.core.metrics import Metrics
from services.core.models import Mention
from services.core.topics import RAW, mention_key
from services.ingest.accept import MentionPublisher, accept, mention_bytes
from services.ingest.dedupe import RecentKeys
from tests.fixtures.mentions import mention_doc

PARTITIONS = 3


async def setup(max_message_bytes: int = 1_048_576) -> tuple[MemoryBus, MentionPublisher, Metrics]:
    bus = MemoryBus(max_message_bytes=max_message_bytes)
    await bus.create_topics([TopicSpec(RAW, partitions=PARTITIONS)])
    metrics = Metrics(CollectorRegistry())
    publisher = MentionPublisher(await bus.producer(), RecentKeys(1000), metrics)
    return bus, publisher, metrics


def mention(i: int, text: str = "Acme is fine") -> Mention:
    return Mention.model_validate(mention_doc(id=f"m{i}", source="file", text=text))


async def test_a_batch_lands_in_order_on_the_partitions_of_its_keys() -> None:
    bus, publisher, metrics = await setup()
    batch = [mention(i) for i in range(20)] + [mention(3)]

    outcome = await accept(batch, channel="file", publisher=publisher, metrics=metrics)

    assert (outcome.accepted, outcome.duplicates) == (20, 1)
    consumer = await bus.consumer("check", [RAW])
    messages = await consumer.getmany(max_records=100, timeout_s=0)
    assert len(messages) == 20
    for m in messages:
        assert m.partition == partition_for_key(m.key or b"", PARTITIONS)
    for p in range(PARTITIONS):
        keys = [m.key for m in sorted(messages, key=lambda m: m.offset) if m.partition == p]
        in_batch = [mention_key("file", f"m{i}") for i in range(20)]
        assert keys == [k for k in in_batch if partition_for_key(k, PARTITIONS) == p]


async def test_a_refused_mention_fails_the_batch_after_the_rest_are_stored_and_counted() -> None:
    bus, publisher, metrics = await setup(max_message_bytes=2_000)
    batch = [mention(0), mention(1, "Acme " * 500), mention(2)]

    with pytest.raises(MessageTooLargeError):
        await accept(batch, channel="file", publisher=publisher, metrics=metrics)

    consumer = await bus.consumer("check", [RAW])
    stored = await consumer.getmany(max_records=100, timeout_s=0)
    assert sorted(m.key or b"" for m in stored) == [
        mention_key("file", "m0"),
        mention_key("file", "m2"),
    ]
    accepted = metrics.registry.get_sample_value(
        "sentimon_mentions_accepted_total", {"source": "file"}
    )
    assert accepted == 2
    # The refused one is forgotten by the deduplication (a retry sends it again, and the
    # bus refuses it again), the stored ones are not (duplicates).
    with pytest.raises(MessageTooLargeError):
        await accept(
            [mention(0), mention(1, "Acme " * 500)],
            channel="file",
            publisher=publisher,
            metrics=metrics,
        )
    duplicate = metrics.registry.get_sample_value(
        "sentimon_mentions_rejected_total", {"source": "file", "reason": "duplicate"}
    )
    assert duplicate == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"text": 'héllo wörld ✨ \u200f مرحبا 🇫🇷 \\ " \n\t</script>', "lang": "fr"},
        {"created_at": "2026-03-01T12:00:00.123456+02:00", "metrics": None},
        {"url": "https://example.com/p?q=1&r=\u00e9", "in_reply_to_id": "r1"},
        {"author": {"id": "a", "handle": "h", "followers": 0, "description": "bio \U0001f600"}},
    ],
)
def test_the_bytes_produced_are_model_dump_json_encoded(overrides: dict[str, object]) -> None:
    m = Mention.model_validate(mention_doc(**overrides))
    assert mention_bytes(m) == m.model_dump_json().encode()
