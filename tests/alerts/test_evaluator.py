"""The evaluator on a database of rollups: a synthetic timeline, an injected clock,
exactly one alert per rule and window across evaluators and restarts, and the outbox
written with the alert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, insert, select

from services.alerts.detection import AlertKind, RuleParams
from services.alerts.evaluator import AlertEvaluator
from services.alerts.settings import AlertSettings
from services.core.clock import FrozenClock
from services.core.metrics import Metrics
from services.core.models import Mention, Sentiment
from services.core.storage.alerts import AlertRecord, AlertRuleStore, list_alerts
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.storage.tables import brand_minute_rollups, webhook_deliveries
from services.core.storage.webhooks import WebhookStore
from services.core.storage.writer import MentionWriter, ScoredRecord
from services.scorer.process import scored_document
from tests.fixtures.mentions import mention_doc
from tests.fixtures.synthetic_traffic import BRANDS, T0, Timeline, synthetic_timeline

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "alert.v1.json").read_text())
BURST_MINUTE = 10 * 1440 + 14 * 60 + 7  # Thursday 14:07 UTC of the second week
BURST_START = datetime.fromtimestamp(T0 + BURST_MINUTE * 60, UTC)
BURST_TEXTS = [
    "Acme outage again, the login page is down and support is silent",
    "Acme down for an hour now, outage killing our launch, refund please",
    "Is Acme down? Total outage here, terrible",
    "Acme outage: invoices stuck, awful timing, want a refund",
]


def load_rollups(engine: Engine, tl: Timeline) -> None:
    rows = [
        {
            "brand": brand,
            "minute": tl.start + 60 * i,
            "mentions": int(n),
            "positive": 0,
            "neutral": int(n - neg),
            "negative": int(neg),
            "score_sum": 0.0,
            "reach": 0,
            "engagement": 0,
        }
        for brand in tl.mentions
        for i, (n, neg) in enumerate(zip(tl.mentions[brand], tl.negative[brand], strict=True))
        if n
    ]
    with engine.begin() as conn:
        conn.execute(insert(brand_minute_rollups), rows)


def burst_records(count: int) -> list[ScoredRecord]:
    """Negative Acme mentions, one a minute from the burst's start (stored for real)."""
    out = []
    for i in range(count):
        raw = orjson.dumps(
            mention_doc(
                id=f"burst-{i}",
                url=f"https://x.example/p/burst-{i}",
                text=BURST_TEXTS[i % len(BURST_TEXTS)],
                created_at=(BURST_START + timedelta(minutes=i, seconds=5)).isoformat(),
                conversation_id=f"burst-{i}",
                author={"id": f"b{i}", "handle": f"angry{i}", "followers": 100 * (i + 1)},
            )
        )
        s = Sentiment(
            label="negative", score=-0.7, confidence=0.9, method="lexicon", lexicon_compound=-0.7
        )
        out.append(
            ScoredRecord(
                Mention.model_validate_json(raw),
                ("Acme",),
                s,
                False,
                BURST_START,
                scored_document(raw, ("Acme",), s, False, BURST_START),
            )
        )
    return out


@pytest.fixture(scope="module")
def timeline_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two weeks of synthetic rollups for four brands, and a 40-minute burst of negative
    Acme mentions stored as real mentions; copied per test."""
    path = tmp_path_factory.mktemp("timeline") / "t.db"
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
def engine(timeline_db: Path, tmp_path: Path) -> Iterator[Engine]:
    target = tmp_path / "t.db"
    target.write_bytes(timeline_db.read_bytes())
    e = make_engine(f"sqlite:///{target}")
    yield e
    e.dispose()


def add_rules(engine: Engine, clock: FrozenClock) -> dict[tuple[str, AlertKind], int]:
    rules = AlertRuleStore(engine, clock)
    ids = {}
    for b in BRANDS:
        for kind in (AlertKind.NEGATIVE_SPIKE, AlertKind.NEGATIVE_SHARE):
            ids[(b.name, kind)] = rules.create(b.name, RuleParams(kind=kind)).id
    return ids


def run_ticks(
    evaluators: list[AlertEvaluator], clock: FrozenClock, until: datetime, step: timedelta
) -> None:
    i = 0
    while clock.now() < until:
        evaluators[i % len(evaluators)].evaluate_once()
        clock.advance(step)
        i += 1


def test_a_burst_alerts_once_within_two_windows_and_nothing_else_does(engine: Engine) -> None:
    clock = FrozenClock(BURST_START - timedelta(hours=1))
    rule_ids = add_rules(engine, clock)
    endpoint = WebhookStore(engine, clock).create(
        "https://hooks.example.com/sentimon", ["alert.negative_spike", "alert.negative_share"]
    )
    metrics = Metrics(CollectorRegistry())
    fired_at: list[tuple[AlertRecord, datetime]] = []
    settings = AlertSettings()
    # Two evaluators (as two API processes would run) take turns, and a third starts
    # half-way, as after a restart.
    evaluators = [
        AlertEvaluator(
            engine, settings, clock, metrics, on_alert=lambda a: fired_at.append((a, clock.now()))
        )
        for _ in range(2)
    ]
    run_ticks(evaluators, clock, BURST_START + timedelta(hours=1), timedelta(minutes=5))
    restarted = AlertEvaluator(make_engine(str(engine.url)), settings, clock, metrics)
    run_ticks(
        [restarted, *evaluators], clock, BURST_START + timedelta(hours=4), timedelta(minutes=15)
    )

    with engine.connect() as conn:
        stored = list_alerts(conn)
        deliveries = list(conn.execute(select(webhook_deliveries)))
    by_rule = {(a.brand, a.kind) for a in stored}
    assert by_rule == {("Acme", "negative_spike"), ("Acme", "negative_share")}, stored
    assert len(stored) == 2  # once per rule: the cooldown outlasts the 40-minute burst
    for alert, when in fired_at:
        assert alert.window_start < BURST_START + timedelta(minutes=30)
        assert when <= BURST_START + timedelta(minutes=30), (
            f"alerted {when - BURST_START} after the start"
        )
        assert alert.rule_id == rule_ids[("Acme", AlertKind(alert.kind))]
    assert (
        metrics.registry.get_sample_value("sentimon_alerts_fired_total", {"kind": "negative_spike"})
        == 1.0
    )

    for alert in stored:
        doc = alert.doc
        assert doc["observed"] > 3 * doc["expected"]
        assert doc["p_value"] < 1e-5
        followers = [m["author_followers"] for m in doc["top_mentions"]]
        assert followers == sorted(followers, reverse=True)
        assert len(followers) == 5
        assert all(m["id"].startswith("burst-") for m in doc["top_mentions"])
        terms = [t["term"] for t in doc["top_terms"]]
        assert "outage" in terms
        assert "acme" not in terms  # the brand itself never "rose"

    # The outbox: one delivery per alert for the subscribed endpoint, each a valid alert.v1.
    assert sorted(d.alert_id for d in deliveries) == sorted(a.id for a in stored)
    for d in deliveries:
        assert d.endpoint_id == endpoint.id and d.status == "pending"
        body = json.loads(d.payload)
        jsonschema.validate(body, SCHEMA, format_checker=jsonschema.FormatChecker())
        assert body["type"] == f"alert.{body['data']['kind']}"


def test_concurrent_evaluators_store_one_alert_per_window(engine: Engine) -> None:
    clock = FrozenClock(BURST_START + timedelta(minutes=20))
    rule_id = add_rules(engine, clock)[("Acme", AlertKind.NEGATIVE_SPIKE)]
    rule = AlertRuleStore(engine, clock).get(rule_id)
    window = int((BURST_START + timedelta(minutes=15)).timestamp()) // 900 * 900
    evaluators = [
        AlertEvaluator(
            make_engine(str(engine.url)), AlertSettings(), clock, Metrics(CollectorRegistry())
        )
        for _ in range(4)
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda e: e.evaluate_window(rule, window), evaluators * 3))
    stored = [r.alert for r in results if r is not None and r.alert is not None]
    assert len(stored) == 1
    with engine.connect() as conn:
        assert len(list_alerts(conn, brand="Acme")) == 1


def test_rules_stay_silent_while_warming_up(engine: Engine) -> None:
    clock = FrozenClock(BURST_START - timedelta(minutes=5))
    rules = AlertRuleStore(engine, clock)
    # The baseline has 10 days of data: a rule asking for 14 of warm-up stays silent.
    rules.create(
        "Acme", RuleParams(kind=AlertKind.NEGATIVE_SPIKE, baseline_days=14, warmup_days=14)
    )
    evaluator = AlertEvaluator(engine, AlertSettings(), clock, Metrics(CollectorRegistry()))
    run_ticks([evaluator], clock, BURST_START + timedelta(hours=1), timedelta(minutes=5))
    with engine.connect() as conn:
        assert list_alerts(conn) == []


def test_list_alerts_filters_by_brand_and_period(engine: Engine) -> None:
    clock = FrozenClock(BURST_START + timedelta(minutes=30))
    add_rules(engine, clock)
    AlertEvaluator(engine, AlertSettings(), clock, Metrics(CollectorRegistry())).evaluate_once()
    with engine.connect() as conn:
        found = list_alerts(
            conn,
            brand="Acme",
            since=BURST_START - timedelta(hours=1),
            until=BURST_START + timedelta(hours=1),
        )
        assert {a.kind for a in found} == {"negative_spike", "negative_share"}
        assert list_alerts(conn, brand="Globex") == []
        assert list_alerts(conn, since=BURST_START + timedelta(hours=1)) == []
        assert list_alerts(conn, kind="negative_share")[0].brand == "Acme"


def test_concurrent_evaluators_on_postgresql_store_one_alert_per_window(
    database_url: str,
) -> None:
    # Several API processes against one PostgreSQL (and SQLite): the unique key and the
    # rule's row lock keep it to one alert per window, and the cooldown to one per burst.
    engine = make_engine(database_url)
    try:
        migrate(engine)
        clock = FrozenClock(BURST_START + timedelta(minutes=20))
        BrandStore(engine, clock).create("Acme", '"acme"')
        tl = synthetic_timeline(days=11, seed=7)
        tl.mentions = {"Acme": tl.mentions["Acme"]}
        tl.negative = {"Acme": tl.negative["Acme"]}
        load_rollups(engine, tl)
        MentionWriter(engine, clock).write(burst_records(40))
        rule_id = (
            AlertRuleStore(engine, clock)
            .create("Acme", RuleParams(kind=AlertKind.NEGATIVE_SPIKE))
            .id
        )
        rule = AlertRuleStore(engine, clock).get(rule_id)
        first = int(BURST_START.timestamp()) // 900 * 900
        windows = [first, first + 900, first + 1800] * 4  # adjacent windows: cooldown too
        evaluators = [
            AlertEvaluator(
                make_engine(database_url), AlertSettings(), clock, Metrics(CollectorRegistry())
            )
            for _ in range(4)
        ]
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(
                pool.map(
                    lambda iw: evaluators[iw[0] % 4].evaluate_window(rule, iw[1]),
                    enumerate(windows),
                )
            )
        with engine.connect() as conn:
            assert len(list_alerts(conn, brand="Acme")) == 1
        for e in evaluators:
            e.close()
    finally:
        engine.dispose()
