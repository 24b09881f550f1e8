"""The metrics catalogue (services/core/metrics.py) against the naming conventions and
the list of figures operators were promised."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from services.alerts.detection import AlertKind
from services.core.metrics import KNOWN_LABEL_VALUES, Metrics

# What the observability issue asks the catalogue for: name → (type, labels it must have).
REQUIRED = {
    "sentimon_mentions_received": ("counter", {"source"}),
    "sentimon_mentions_accepted": ("counter", {"source"}),
    "sentimon_mentions_rejected": ("counter", {"source", "reason"}),
    "sentimon_bus_messages_produced": ("counter", {"topic"}),
    "sentimon_bus_messages_consumed": ("counter", {"topic"}),
    "sentimon_bus_consumer_lag_messages": ("gauge", {"topic", "partition"}),
    "sentimon_dlq_messages": ("counter", {"reason"}),
    "sentimon_scoring_latency_seconds": ("histogram", {"method"}),
    "sentimon_routed_to_transformer": ("counter", set()),
    "sentimon_mentions_scored": ("counter", {"method"}),
    "sentimon_spot_checks_sampled": ("counter", set()),
    "sentimon_db_write_latency_seconds": ("histogram", set()),
    "sentimon_db_write_batch_size_mentions": ("histogram", set()),
    "sentimon_api_request_duration_seconds": ("histogram", {"route", "status"}),
    "sentimon_alerts_fired": ("counter", {"kind"}),
    "sentimon_webhook_deliveries": ("counter", {"outcome"}),
}
# Unbounded values never make a label.
FORBIDDEN_LABELS = {"id", "mention_id", "author", "author_id", "handle", "user", "url", "text"}


def catalogue() -> dict[str, MetricWrapperBase]:
    """Every metric of ``Metrics`` by its family name (``_total`` stripped from counters)."""
    metrics = Metrics(CollectorRegistry())
    found = [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]
    return {m._name: m for m in found}  # no public accessor for these


def test_the_catalogue_has_every_promised_figure() -> None:
    found = catalogue()
    for name, (kind, labels) in REQUIRED.items():
        assert name in found, f"{name} is missing from services/core/metrics.py"
        metric = found[name]
        assert metric._type == kind, name
        assert labels <= set(metric._labelnames), (name, metric._labelnames)


def test_every_metric_follows_the_conventions() -> None:
    for name, metric in catalogue().items():
        assert name.startswith("sentimon_"), name
        labels = set(metric._labelnames)
        assert not labels & FORBIDDEN_LABELS, (name, labels)
        if metric._type == "histogram" and ("latency" in name or "duration" in name):
            assert name.endswith("_seconds"), f"{name}: time in base units (seconds)"
        help_text = metric._documentation
        assert len(help_text) >= 20 and not help_text[0].islower(), (name, help_text)


def test_known_label_values_are_exported_at_zero() -> None:
    registry = Metrics(CollectorRegistry()).registry
    assert set(KNOWN_LABEL_VALUES["alert_kind"]) == {k.value for k in AlertKind}
    for kind in KNOWN_LABEL_VALUES["alert_kind"]:
        assert registry.get_sample_value("sentimon_alerts_fired_total", {"kind": kind}) == 0
    for outcome in KNOWN_LABEL_VALUES["webhook_outcome"]:
        labels = {"outcome": outcome}
        assert registry.get_sample_value("sentimon_webhook_deliveries_total", labels) == 0
    for operation in KNOWN_LABEL_VALUES["bus_operation"]:
        labels = {"operation": operation}
        assert registry.get_sample_value("sentimon_bus_broker_unavailable_total", labels) == 0
