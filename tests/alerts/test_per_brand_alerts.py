"""Issue 16 in an alert's details: a mention negative toward one brand and positive toward
the other is among the first brand's negative mentions (with its score toward it), its
rising-term texts and its story candidates, and among none of the other's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from services.alerts.evaluator import top_negative_mentions
from services.core.clock import FrozenClock
from services.core.storage.alerts import mention_texts
from services.core.storage.db import make_engine, migrate
from services.core.storage.stories import story_posts
from services.core.storage.writer import MentionWriter
from tests.core.storage.test_per_brand_writes import ACME_ONLY, MIXED, T0, TOWARD, scored

START = int(T0.timestamp())
END = START + 3600


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    e = make_engine(database_url)
    migrate(e)
    MentionWriter(e, FrozenClock(T0)).write(
        [
            scored("two", ("Acme", "Globex"), MIXED, TOWARD),
            scored("acme", ("Acme",), ACME_ONLY, None, seconds=5),
        ]
    )
    yield e
    e.dispose()


def test_negative_toward_one_brand_is_in_its_alert_details_only(engine: Engine) -> None:
    with engine.connect() as conn:
        acme = top_negative_mentions(conn, "Acme", START, END, 10)
        globex = top_negative_mentions(conn, "Globex", START, END, 10)
        assert [(m["id"], m["score"]) for m in acme] == [("two", -0.8)]
        assert globex == []
        assert len(mention_texts(conn, "Acme", START, END, 10, negative_only=True)) == 1
        assert mention_texts(conn, "Globex", START, END, 10, negative_only=True) == []
        assert [p.id for p in story_posts(conn, "Acme", START, END, 10, negative_only=True)] == [
            "two"
        ]
        assert story_posts(conn, "Globex", START, END, 10, negative_only=True) == []
