"""Every Prometheus metric Sentimon exports, in one place.

Names follow Prometheus conventions: ``sentimon_`` prefix, ``_total`` for counters,
base units (seconds, bytes). Label values are bounded sets (sources, topics, reasons,
methods, routes, brands); never an author or mention id. ``Metrics`` takes the
registry so tests can use a fresh one and read values with ``get_sample_value``.

Several processes serving one ``/metrics`` (the API under ``uvicorn --workers N``): set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the processes start (see
``prepare_multiprocess_dir``); each process then writes its values to files there and
``Metrics.exposition`` adds them up across processes. Collectors that read shared state
(the brand gauges read the database) are added with ``add_collector`` and are read
directly, not summed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Label values fixed by the code that counts them (alerts.detection.AlertKind, the
# delivery worker's outcomes, the Kafka bus's retried operations, the methods that score
# a mention toward one brand).
KNOWN_LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "alert_kind": ("negative_spike", "negative_share", "volume_spike"),
    "webhook_outcome": ("delivered", "retrying", "gave_up", "endpoint_gone", "refused"),
    "bus_operation": ("send", "fetch", "commit", "join", "metadata", "offsets"),
    "targeted_method": ("lexicon", "transformer"),
}

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
        self._collectors: dict[str, Collector] = {}
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
            # Across processes the latest report wins (the default would add a pid label).
            multiprocess_mode="mostrecent",
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
        self.consumer_last_progress = Gauge(
            "sentimon_consumer_last_progress_timestamp_seconds",
            "Unix time of the consumer group's last commit in this process (or of its start): "
            "with lag above zero, time() minus this is how long it has been stuck.",
            ["group"],
            registry=registry,
            multiprocess_mode="max",
        )
        # Kafka bus (issue 3): operation is one of KNOWN_LABEL_VALUES["bus_operation"]
        self.bus_broker_unavailable = Counter(
            "sentimon_bus_broker_unavailable_total",
            "Times a Kafka bus operation could not reach the broker and was retried after a "
            "backoff (nothing is dropped), by operation.",
            ["operation"],
            registry=registry,
        )
        self.bus_broker_up = Gauge(
            "sentimon_bus_broker_up",
            "1 while the Kafka broker answers this process's probe (every second), 0 while "
            "it does not (readiness is 503 then); by bootstrap address. Absent in embedded mode.",
            ["broker"],
            registry=registry,
            multiprocess_mode="min",
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
            "Mentions scored, by method and resulting label (method none, label unscored: "
            "in a language the scorer cannot read).",
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
        # hybrid scorer (issue 4): the transformer's batches and queue
        self.transformer_batch_size = Histogram(
            "sentimon_transformer_batch_size",
            "Texts in one transformer batch (a batch runs when full or when its wait is up).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=registry,
        )
        self.transformer_batch_latency = Histogram(
            "sentimon_transformer_batch_latency_seconds",
            "Time the transformer took on one batch.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.transformer_queue_depth = Gauge(
            "sentimon_transformer_queue_depth",
            "Texts waiting for the transformer (bounded by SENTIMON_TRANSFORMER_QUEUE_SIZE).",
            registry=registry,
        )
        self.transformer_fallbacks = Counter(
            "sentimon_transformer_fallbacks_total",
            "Routed mentions given the lexicon's verdict (marked fallback) because the "
            "transformer queue was full (overload policy lexicon).",
            registry=registry,
        )
        # sentiment per brand (issue 16): mentions naming 2 to MAX_TARGETS brands
        self.targeted_verdicts = Counter(
            "sentimon_targeted_verdicts_total",
            "Verdicts toward one brand of a mention naming several, stored and produced, by "
            "method (transformer: the target-aware model; lexicon: VADER on the clauses "
            "naming the brand, in lexicon mode or as the fallback).",
            ["method"],
            registry=registry,
        )
        self.targeted_fallbacks = Counter(
            "sentimon_targeted_fallbacks_total",
            "Verdicts toward one brand given by the clause-scoped lexicon instead of the "
            "target-aware model because the transformer queue was full (overload policy "
            "lexicon).",
            registry=registry,
        )
        self.mentions_over_max_targets = Counter(
            "sentimon_mentions_over_max_targets_total",
            "Mentions naming more tracked brands than are scored one by one (MAX_TARGETS, "
            "8): not scored per brand, every brand gets the mention's verdict.",
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
        # source connectors (issue 9): per configured source (admins configure at most 50)
        self.source_polls = Counter(
            "sentimon_source_polls_total",
            "Reads of a platform by a source connector (a poll, or a stream's batch), by outcome "
            "(ok, error, rate_limited).",
            ["source_kind", "outcome"],
            registry=registry,
        )
        self.source_up = Gauge(
            "sentimon_source_up",
            "1 while a configured source reads its platform without errors, 0 while it backs off.",
            ["source"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.source_lag = Gauge(
            "sentimon_source_lag_seconds",
            "Age of the newest mention a source delivered, when it was delivered.",
            ["source"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        # alerts and webhooks (issue 6): kind is negative_spike | negative_share |
        # volume_spike; outcome is delivered | retrying | gave_up | endpoint_gone | refused
        self.alerts_fired = Counter(
            "sentimon_alerts_fired_total",
            "Alerts stored by this process (one per rule and window across all processes), "
            "by rule kind.",
            ["kind"],
            registry=registry,
        )
        self.webhook_deliveries = Counter(
            "sentimon_webhook_deliveries_total",
            "Webhook delivery attempts, by outcome (retrying: failed and scheduled again).",
            ["outcome"],
            registry=registry,
        )
        self.webhook_attempt_duration = Histogram(
            "sentimon_webhook_attempt_duration_seconds",
            "Time from sending a webhook to the receiver's answer (or the timeout).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # spot-check review queue (issue 5): label is positive | neutral | negative |
        # irrelevant, action is label | undo
        self.review_labels = Counter(
            "sentimon_review_labels_total",
            "Analyst labels recorded (label) and withdrawn (undo) in the spot-check queue.",
            ["label", "action"],
            registry=registry,
        )
        self.review_claims = Counter(
            "sentimon_review_claims_total",
            "Claims on the spot-check queue, by outcome (item: one was leased; empty: nothing "
            "left for that analyst).",
            ["outcome"],
            registry=registry,
        )
        # observability (issue 8): keep this the last statement of __init__
        self._export_known_series()

    # observability (issue 8): collectors that read shared state, and the exposition
    def _export_known_series(self) -> None:
        """Create the series whose label values are known in advance, at zero: the rules
        and dashboards then have data before the first event, and ``rate`` counts that
        event (a series that appears with its first increment loses it). Every process
        exports them; a process that never counts them stays at zero."""
        for kind in KNOWN_LABEL_VALUES["alert_kind"]:
            self.alerts_fired.labels(kind)
        for outcome in KNOWN_LABEL_VALUES["webhook_outcome"]:
            self.webhook_deliveries.labels(outcome)
        for operation in KNOWN_LABEL_VALUES["bus_operation"]:
            self.bus_broker_unavailable.labels(operation)
        for method in KNOWN_LABEL_VALUES["targeted_method"]:
            self.targeted_verdicts.labels(method)

    def add_collector(self, name: str, collector: Collector) -> None:
        """Register ``collector`` under ``name``, once: a second call with the same name
        keeps the first (apps built twice on one ``Metrics`` do not register twice)."""
        if name in self._collectors:
            return
        self._collectors[name] = collector
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """The text exposition for ``/metrics``: this registry, or in multiprocess mode
        the values of every process added up, plus the collectors from ``add_collector``."""
        if not multiprocess_dir():
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        for collector in self._collectors.values():
            merged.register(collector)
        return generate_latest(merged)


def multiprocess_dir() -> Path | None:
    """The multiprocess directory when multiprocess mode is on (``PROMETHEUS_MULTIPROC_DIR``)."""
    value = os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())
    return Path(value) if value else None


def prepare_multiprocess_dir(path: Path) -> None:
    """Empty ``path`` (creating it) for a new set of processes. Call it in the parent
    before the workers start: files left by an earlier run would be added to this run's
    counts."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
