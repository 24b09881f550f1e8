"""An unscored mention (a language the scorer cannot read) in the store: counted in
volume, in no sentiment count, never queued for review; its language is stored and
filters the mentions read back."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import Engine, func, select

from services.core.clock import FrozenClock
from services.core.models import Mention
from services.core.storage.db import make_engine, migrate
from services.core.storage.reads import MentionFilter, list_mentions
from services.core.storage.tables import (
    brand_mention_facts,
    brand_minute_rollups,
    brand_role_hour_rollups,
    mentions,
    review_items,
)
from services.core.storage.writer import MentionWriter, ScoredRecord
from services.scorer.lexicon import UNSCORED, lexicon_sentiment
from services.scorer.process import scored_document
from tests.fixtures.mentions import mention_doc

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def record(i: int, text: str, language: str | None, *, unscored: bool) -> ScoredRecord:
    raw = orjson.dumps(mention_doc(id=f"l{i}", text=text, lang=None))
    verdict = UNSCORED if unscored else lexicon_sentiment(0.6)
    spot = not unscored  # every scored one sampled, to show the unscored one is not
    doc = scored_document(raw, ("Acme",), verdict, spot, T0, language)
    m = Mention.model_validate_json(raw)
    return ScoredRecord(m, ("Acme",), verdict, spot, T0, doc, None, language)


@pytest.fixture(params=[False, True], ids=["sqlite-fast-path", "returning"])
def writer_and_engine(
    request: pytest.FixtureRequest, database_url: str
) -> tuple[MentionWriter, Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    returning = request.param or engine.dialect.name != "sqlite"
    return MentionWriter(engine, FrozenClock(T0), use_returning=returning), engine


def test_an_unscored_mention_counts_in_volume_only(
    writer_and_engine: tuple[MentionWriter, Engine],
) -> None:
    writer, engine = writer_and_engine
    batch = [
        record(1, "Acme es un desastre", "es", unscored=True),
        record(2, "Acme is great", "en", unscored=False),
        record(3, "Acme rocks", None, unscored=False),
    ]
    assert writer.write(batch).inserted == 3
    with engine.connect() as conn:
        r = brand_minute_rollups.c
        row = conn.execute(select(r.mentions, r.positive, r.neutral, r.negative)).one()
        assert tuple(row) == (3, 2, 0, 0)
        h = brand_role_hour_rollups.c
        hours = conn.execute(
            select(func.sum(h.mentions), func.sum(h.positive), func.sum(h.neutral))
        ).one()
        assert tuple(hours) == (3, 2, 0)
        queued = conn.execute(select(func.count()).select_from(review_items)).scalar_one()
        assert queued == 2  # the two scored ones; never the unscored one
        stored = dict(conn.execute(select(mentions.c.mention_id, mentions.c.language)).all())
        assert stored == {"l1": "es", "l2": "en", "l3": None}
        f = brand_mention_facts.c
        facts = dict(conn.execute(select(f.language, f.label)).all())
        assert facts == {"es": "unscored", "en": "positive", None: "positive"}
        page = list_mentions(conn, MentionFilter(language="es"), limit=10, cursor=None)
        assert [m.id for m in page.items] == ["l1"]
        assert page.items[0].sentiment.label == "unscored" and page.items[0].language == "es"
        by_brand = MentionFilter(brand="Acme", language="en")
        assert [m.id for m in list_mentions(conn, by_brand, limit=10, cursor=None).items] == ["l2"]
        unscored = MentionFilter(brand="Acme", label="unscored")
        assert [m.id for m in list_mentions(conn, unscored, limit=10, cursor=None).items] == ["l1"]
