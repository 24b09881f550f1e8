"""An alert explains itself: the evaluator stores a story, its drivers, the expectation
around the window and one sentence with the alert, all in the webhook payload."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import jsonschema
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, select

from services.alerts.evaluator import AlertEvaluator
from services.alerts.settings import AlertSettings
from services.core.clock import FrozenClock
from services.core.explanation import summarise
from services.core.metrics import Metrics
from services.core.storage.alerts import list_alerts
from services.core.storage.stories import story_posts
from services.core.storage.tables import webhook_deliveries
from services.core.storage.webhooks import WebhookStore
from tests.alerts.test_evaluator import (  # noqa: F401 (fixtures)
    BURST_START,
    SCHEMA,
    add_rules,
    engine,
    timeline_db,
)


def test_the_stored_alert_carries_its_story_summary_and_expectation(engine: Engine) -> None:  # noqa: F811
    clock = FrozenClock(BURST_START + timedelta(minutes=30))
    add_rules(engine, clock)
    WebhookStore(engine, clock).create("https://hooks.example.com/s", ["alert.negative_spike"])
    AlertEvaluator(engine, AlertSettings(), clock, Metrics(CollectorRegistry())).evaluate_once()
    with engine.connect() as conn:
        alert = list_alerts(conn, kind="negative_spike")[0]
        start = int(alert.window_start.timestamp())
        posts = story_posts(conn, "Acme", start, int(alert.window_end.timestamp()), 10_000)
        payloads = [json.loads(p) for (p,) in conn.execute(select(webhook_deliveries.c.payload))]
    doc = alert.doc
    # The burst repeats four different texts word for word: the story is the commonest.
    by_text = Counter(p.text for p in posts)
    text, size = by_text.most_common(1)[0]
    story = doc["story"]
    assert story is not None
    assert story["size"] == size >= 3
    first = min((p for p in posts if p.text == text), key=lambda p: p.created_at)
    assert story["first_mention_id"] == first.id
    assert story["first_author"] == first.author
    assert story["combined_reach"] == sum(p.followers for p in posts if p.text == text)
    assert story["share_of_window"] == pytest.approx(size / len(posts), abs=1e-4)
    assert doc["drivers"]["mentions"] == len(posts)
    assert doc["summary"] == summarise(doc)
    assert f"{size} of them repeat one story first posted by @{first.author}" in doc["summary"]
    assert "rising: outage" in doc["summary"]
    # The chart's line: the tested window's expectation is the verdict's.
    line = {e["start"]: e["expected"] for e in doc["expectation"]}
    assert len(line) == 33
    assert line[alert.window_start.isoformat()] == pytest.approx(doc["expected"], rel=1e-3)
    # The webhook carries the same document, valid against alert.v1.
    body = next(p for p in payloads if p["data"]["id"] == alert.id)
    assert body["data"]["summary"] == doc["summary"]
    jsonschema.validate(body, SCHEMA, format_checker=jsonschema.FormatChecker())
