"""Topic names and their partition counts; the JSON Schema of each topic's messages
lives in ``schemas/`` (``mention.v1.json`` for raw, ``scored_mention.v1.json`` for scored)."""

from __future__ import annotations

from services.core.bus.protocol import TopicSpec

RAW = "mentions.raw"
SCORED = "mentions.scored"
DLQ = "mentions.dlq"

# Partitions bound the number of scorer processes that can share the work.
DEFAULT_TOPICS = (
    TopicSpec(RAW, partitions=8),
    TopicSpec(SCORED, partitions=8),
    TopicSpec(DLQ, partitions=1),
)

SCORER_GROUP = "sentimon-scorer"
DLQ_GROUP = "sentimon-dlq-sink"


def mention_key(source: str, mention_id: str) -> bytes:
    """The bus key of a mention: redeliveries of one mention land in one partition."""
    return f"{source}\x1f{mention_id}".encode()
