"""Alert hygiene (issue 17 §5) in the evaluator and the store: a snoozed rule raises
nothing and skips its windows for good, alerts again after; severity grades the p-value
against the rule's sensitivity; an acknowledgement keeps its first who and when."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, select

from services.alerts.detection import AlertKind, RuleParams
from services.alerts.evaluator import AlertEvaluator
from services.alerts.settings import AlertSettings
from services.core.alerting import (
    EVENT_TYPES,
    MAX_SNOOZE,
    SEVERITY_STEP,
    Severity,
    severity,
    snooze_problem,
    snoozed,
)
from services.core.clock import FrozenClock
from services.core.metrics import Metrics
from services.core.reports.sources import stored_alerts
from services.core.storage.alerts import (
    AlertRuleStore,
    acknowledge_alert,
    get_alert,
    list_alerts,
)
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.storage.errors import NotFoundError
from services.core.storage.tables import webhook_deliveries
from services.core.storage.webhooks import WebhookStore
from services.core.storage.writer import MentionWriter
from tests.alerts.test_evaluator import BURST_START, burst_records, load_rollups
from tests.fixtures.synthetic_traffic import BRANDS, T0, synthetic_timeline

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "alert.v1.json").read_text())
ALERT = {**SCHEMA["$defs"]["alert"], "$defs": SCHEMA["$defs"]}
WINDOW = timedelta(minutes=15)


@pytest.fixture(scope="module")
def burst_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eleven days of synthetic rollups and a 40-minute burst of negative Acme mentions
    from ``BURST_START`` (14:07 UTC); copied per test."""
    path = tmp_path_factory.mktemp("hygiene") / "t.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    clock = FrozenClock(datetime.fromtimestamp(T0, UTC))
    brands = BrandStore(engine, clock)
    for b in BRANDS:
        brands.create(b.name, f'"{b.name.lower()}"')
    load_rollups(engine, synthetic_timeline(days=11, seed=7))
    MentionWriter(engine, clock).write(burst_records(40))
    engine.dispose()
    return path


@pytest.fixture
def engine(burst_db: Path, tmp_path: Path) -> Iterator[Engine]:
    target = tmp_path / "t.db"
    target.write_bytes(burst_db.read_bytes())
    e = make_engine(f"sqlite:///{target}")
    yield e
    e.dispose()


def evaluate_every_5_minutes(engine: Engine, clock: FrozenClock, until: datetime) -> None:
    evaluator = AlertEvaluator(engine, AlertSettings(), clock, Metrics(CollectorRegistry()))
    while clock.now() < until:
        evaluator.evaluate_once()
        clock.advance(timedelta(minutes=5))


def acme_rule(engine: Engine, clock: FrozenClock, **params: int) -> int:
    rules = AlertRuleStore(engine, clock)
    return rules.create("Acme", RuleParams(kind=AlertKind.NEGATIVE_SPIKE, **params)).id


def test_the_burst_alerts_without_a_snooze(engine: Engine) -> None:
    """The control for the snooze tests: the same burst, the same ticks, no snooze."""
    clock = FrozenClock(BURST_START - timedelta(hours=1))
    rule_id = acme_rule(engine, clock, cooldown_s=0)
    evaluate_every_5_minutes(engine, clock, BURST_START + timedelta(hours=1))
    with engine.connect() as conn:
        starts = [a.window_start for a in list_alerts(conn, rule_id=rule_id)]
    second = BURST_START.replace(minute=15)
    assert second in starts
    assert second + WINDOW in starts, "the burst's third window alerts on its own"


def test_a_snoozed_rule_raises_nothing_and_its_windows_are_skipped_for_good(
    engine: Engine,
) -> None:
    clock = FrozenClock(BURST_START - timedelta(hours=1))
    rule_id = acme_rule(engine, clock, cooldown_s=0)
    rules = AlertRuleStore(engine, clock)
    # 14:32: the windows of 14:00 and 14:15 end during the snooze (the second alerts
    # without one), the one of 14:30 is in progress when it ends.
    until = BURST_START + timedelta(minutes=25)
    assert rules.snooze(rule_id, until).snoozed_until == until
    assert rules.get(rule_id).snoozed_until == until
    evaluate_every_5_minutes(engine, clock, until)
    with engine.connect() as conn:
        assert list_alerts(conn, rule_id=rule_id) == [], "silent while snoozed"

    # After the snooze, hours of ticks: the windows that ended during it stay silent, the
    # window in progress when it ended (still in the burst) alerts.
    evaluate_every_5_minutes(engine, clock, BURST_START + timedelta(hours=4))
    with engine.connect() as conn:
        alerts = list_alerts(conn, rule_id=rule_id)
    assert [a.window_start for a in alerts] == [BURST_START.replace(minute=30)]
    assert min(a.created_at for a in alerts) >= until


def test_an_unsnoozed_rule_alerts_at_once(engine: Engine) -> None:
    clock = FrozenClock(BURST_START + timedelta(minutes=10))
    rule_id = acme_rule(engine, clock)
    rules = AlertRuleStore(engine, clock)
    rules.snooze(rule_id, clock.now() + timedelta(days=1))
    evaluator = AlertEvaluator(engine, AlertSettings(), clock, Metrics(CollectorRegistry()))
    assert not [r for r in evaluator.evaluate_once() if r.alert is not None]
    assert rules.snooze(rule_id, None).snoozed_until is None
    fired = [r.alert for r in evaluator.evaluate_once() if r.alert is not None]
    assert [a.rule_id for a in fired] == [rule_id]


def test_snooze_of_a_missing_rule_is_not_found(engine: Engine) -> None:
    clock = FrozenClock(BURST_START)
    with pytest.raises(NotFoundError):
        AlertRuleStore(engine, clock).snooze(999, BURST_START + timedelta(hours=1))


@pytest.mark.parametrize(
    ("until", "problem"),
    [
        (timedelta(0), "future"),
        (-timedelta(seconds=1), "future"),
        (MAX_SNOOZE + timedelta(seconds=1), "90 days"),
        (timedelta(seconds=1), None),
        (MAX_SNOOZE, None),
    ],
)
def test_a_snooze_ends_in_the_next_90_days(until: timedelta, problem: str | None) -> None:
    now = BURST_START
    found = snooze_problem(now + until, now)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_snoozed_silences_everything_until_then_and_the_windows_that_ended_before() -> None:
    until = BURST_START
    assert not snoozed(None, until, until)
    assert snoozed(until, until - timedelta(seconds=1), until + WINDOW)  # still snoozed
    assert snoozed(until, until + timedelta(hours=1), until)  # ended during it
    assert not snoozed(until, until, until + timedelta(seconds=1))  # in progress at its end


@pytest.mark.parametrize("sensitivity", [1e-5, 1e-3, 1e-8])
def test_severity_grades_the_p_value_against_the_sensitivity(sensitivity: float) -> None:
    high = sensitivity / SEVERITY_STEP
    critical = sensitivity / SEVERITY_STEP**2
    assert severity(sensitivity * 0.99, sensitivity) == Severity.MEDIUM
    assert severity(high, sensitivity) == Severity.MEDIUM
    assert severity(high * 0.99, sensitivity) == Severity.HIGH
    assert severity(critical, sensitivity) == Severity.HIGH
    assert severity(critical * 0.99, sensitivity) == Severity.CRITICAL
    assert severity(0.0, sensitivity) == Severity.CRITICAL


def test_the_default_thresholds_are_1e7_and_1e9() -> None:
    s = RuleParams(kind=AlertKind.VOLUME_SPIKE).sensitivity
    assert severity(2e-7, s) == Severity.MEDIUM
    assert severity(2e-9, s) == Severity.HIGH
    assert severity(5e-10, s) == Severity.CRITICAL


def test_a_stored_alert_carries_the_severity_of_its_p_value_in_schema(engine: Engine) -> None:
    clock = FrozenClock(BURST_START + timedelta(minutes=20))
    rule_id = acme_rule(engine, clock)
    evaluator = AlertEvaluator(engine, AlertSettings(), clock, Metrics(CollectorRegistry()))
    (alert,) = [r.alert for r in evaluator.evaluate_once() if r.alert is not None]
    sensitivity = RuleParams(kind=AlertKind.NEGATIVE_SPIKE).sensitivity
    assert alert.doc["severity"] == severity(alert.p_value, sensitivity).value
    jsonschema.validate(alert.doc, ALERT)
    with engine.connect() as conn:
        assert get_alert(conn, alert.id).doc["severity"] == alert.doc["severity"]
    assert rule_id == alert.rule_id


def test_an_acknowledgement_keeps_the_first_who_and_when(engine: Engine) -> None:
    clock = FrozenClock(BURST_START + timedelta(minutes=20))
    acme_rule(engine, clock)
    evaluator = AlertEvaluator(engine, AlertSettings(), clock, Metrics(CollectorRegistry()))
    (alert,) = [r.alert for r in evaluator.evaluate_once() if r.alert is not None]
    assert "acknowledged_at" not in alert.doc

    first = clock.now() + timedelta(minutes=3)
    acked = acknowledge_alert(engine, alert.id, by="alice", by_key="aaaa1111", now=first)
    again = acknowledge_alert(
        engine, alert.id, by="bob", by_key="bbbb2222", now=first + timedelta(hours=1)
    )
    for a in (acked, again):
        assert (a.acknowledged_at, a.acknowledged_by, a.acknowledged_by_key) == (
            first,
            "alice",
            "aaaa1111",
        )
        assert a.doc["acknowledged_at"] == first.isoformat()
        assert a.doc["acknowledged_by"] == {"name": "alice", "key": "aaaa1111"}
        jsonschema.validate(a.doc, ALERT)
    with pytest.raises(NotFoundError):
        acknowledge_alert(engine, alert.id + 1, by="alice", by_key="aaaa1111", now=first)


def test_the_webhook_payload_and_the_report_carry_the_severity(engine: Engine) -> None:
    clock = FrozenClock(BURST_START + timedelta(minutes=20))
    acme_rule(engine, clock)
    WebhookStore(engine, clock).create("https://hooks.example/in", list(EVENT_TYPES))
    evaluator = AlertEvaluator(engine, AlertSettings(), clock, Metrics(CollectorRegistry()))
    (alert,) = [r.alert for r in evaluator.evaluate_once() if r.alert is not None]
    want = severity(alert.p_value, RuleParams(kind=AlertKind.NEGATIVE_SPIKE).sensitivity).value
    with engine.connect() as conn:
        (payload,) = conn.execute(select(webhook_deliveries.c.payload)).scalars()
        (reported,) = stored_alerts(conn, "Acme", BURST_START - WINDOW, BURST_START + WINDOW * 4)
    assert orjson.loads(payload)["data"]["severity"] == want
    assert reported.severity == want
