"""Every Prometheus metric Sentimon exports, in one place.

Names follow Prometheus conventions: ``sentimon_`` prefix, ``_total`` for counters,
base units (seconds, bytes). Label values are bounded sets (sources, topics, reasons,
methods, routes, brands); never an author or mention id. ``Metrics`` takes the
registry so tests can use a fresh one and read values with ``get_sample_value``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # ingest
        self.mentions_received = Counter(
            "sentimon_mentions_received_total",
            "Mentions read from a source or pushed to the API, before validation.",
            ["source"],
            registry=registry,
        )
        self.mentions_accepted = Counter(
            "sentimon_mentions_accepted_total",
            "Mentions that passed validation and deduplication and were produced to the raw topic.",
            ["source"],
            registry=registry,
        )
        self.mentions_rejected = Counter(
            "sentimon_mentions_rejected_total",
            "Mentions refused at ingest, by reason (invalid, duplicate).",
            ["source", "reason"],
            registry=registry,
        )
        # bus
        self.messages_produced = Counter(
            "sentimon_bus_messages_produced_total",
            "Messages appended to a bus topic by this process.",
            ["topic"],
            registry=registry,
        )
        self.messages_consumed = Counter(
            "sentimon_bus_messages_consumed_total",
            "Messages read from a bus topic and committed after their work succeeded.",
            ["topic", "group"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "sentimon_bus_consumer_lag_messages",
            "Messages in a partition not yet committed by the consumer group.",
            ["topic", "partition", "group"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "sentimon_dlq_messages_total",
            "Messages sent to the dead-letter topic, by the reason they could not be processed.",
            ["topic", "reason"],
            registry=registry,
        )
        self.consumer_restarts = Counter(
            "sentimon_consumer_restarts_total",
            "Times a consumer failed and was restarted from its last committed offsets.",
            ["group"],
            registry=registry,
        )
        # scorer
        self.scoring_latency = Histogram(
            "sentimon_scoring_latency_seconds",
            "Time to score one mention's text, by scoring method.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.mentions_scored = Counter(
            "sentimon_mentions_scored_total",
            "Mentions scored, by method and resulting label.",
            ["method", "label"],
            registry=registry,
        )
        self.mentions_unmatched = Counter(
            "sentimon_mentions_unmatched_total",
            "Mentions that matched no tracked brand and were not kept.",
            registry=registry,
        )
        self.routed_to_transformer = Counter(
            "sentimon_routed_to_transformer_total",
            "Mentions the router sent to the transformer model because the lexicon was unsure.",
            registry=registry,
        )
        self.spot_checks_sampled = Counter(
            "sentimon_spot_checks_sampled_total",
            "Mentions marked for the analysts' spot-check queue.",
            ["method"],
            registry=registry,
        )
        self.texts_truncated = Counter(
            "sentimon_scorer_texts_truncated_total",
            "Texts cut to the scorer's length cap before scoring.",
            registry=registry,
        )
        # storage
        self.db_write_latency = Histogram(
            "sentimon_db_write_latency_seconds",
            "Time to write one batch of scored mentions and their rollups in one transaction.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.db_write_batch_size = Histogram(
            "sentimon_db_write_batch_size_mentions",
            "Mentions per database write batch.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.mentions_stored = Counter(
            "sentimon_mentions_stored_total",
            "Mentions inserted into the store (duplicates of stored mentions are not counted).",
            registry=registry,
        )
        self.mentions_duplicate_at_store = Counter(
            "sentimon_mentions_duplicate_at_store_total",
            "Mentions skipped by the writer because they were stored already (redeliveries).",
            registry=registry,
        )
        # api
        self.api_request_latency = Histogram(
            "sentimon_api_request_duration_seconds",
            "API request latency by route template, method and status code.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
