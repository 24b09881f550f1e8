"""Distributed mode's topics and its connection to Kafka."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.core.bus.protocol import Bus, Producer, TopicSpec
from services.core.metrics import Metrics
from services.core.settings import KafkaSettings
from services.core.topics import DLQ, RAW, SCORED

if TYPE_CHECKING:
    from services.core.bus.kafka import KafkaBus


def distributed_topics(partitions: int) -> tuple[TopicSpec, ...]:
    """The topics with ``partitions`` each (the dead-letter topic keeps one: it is small
    and its order is the order things went wrong)."""
    return (
        TopicSpec(RAW, partitions=partitions),
        TopicSpec(SCORED, partitions=partitions),
        TopicSpec(DLQ, partitions=1),
    )


async def connect_bus(settings: KafkaSettings, metrics: Metrics, client_id: str) -> KafkaBus:
    """The Kafka bus named by the settings, with the topics created if missing.

    Waits (with backoff, saying so in the log and in
    ``sentimon_bus_broker_unavailable_total``) until the broker answers. Then watches it:
    register ``bus.broker_problem`` as a readiness check, so ``/readyz`` is 503 naming
    the broker while it is away.
    """
    from services.core.bus.kafka import KafkaBus

    bus = await KafkaBus.connect(settings.kafka_bootstrap, metrics=metrics, client_id=client_id)
    await bus.create_topics(distributed_topics(settings.kafka_partitions))
    return bus


async def close_bus(bus: Bus, producer: Producer) -> None:
    """Flush what was produced, then close the producer and the bus."""
    try:
        await producer.flush()
    finally:
        await producer.close()
        await bus.close()
