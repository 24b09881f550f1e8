"""The report's reads against the very statements they replace: the unanswered negative
mentions, read from the most followed candidates first, equal every candidate joined to
its replies; the top mentions by reach of several labels, read at once, equal each
label's own read. Both with walks of the reach index as long as the store (they hold
every fact), a few facts long (they stop inside ties on followers, and the period's own
facts are read), and none."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, and_, exists
from sqlalchemy.orm import aliased

from services.core.clock import FrozenClock
from services.core.reports import queries
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.storage.tables import brand_mention_facts, mentions
from services.core.storage.writer import MentionWriter
from tests.fixtures.app import TEST_BRANDS
from tests.fixtures.report_data import END, NOW, PREV, START, fixture_set, record


def every_candidate_joined(
    conn: Connection, brand: str, start: int, end: int, min_reach: int, limit: int
) -> list[str]:
    """The statement ``unanswered_negative`` ran before: every candidate of the period
    joined to its mention and its replies, then ``LIMIT``."""
    f = brand_mention_facts.c
    reply = aliased(mentions)
    answered = exists().where(
        and_(reply.c.in_reply_to_id == mentions.c.mention_id, reply.c.source == mentions.c.source)
    )
    stmt: Any = (
        queries._facts(brand, start, end)
        .join(mentions, mentions.c.pk == f.mention_pk)
        .where(f.label == "negative", f.followers >= min_reach, f.replies == 0, ~answered)
        .order_by(f.followers.desc(), f.mention_pk.desc())
        .limit(limit)
    )
    ranked = [(int(pk), str(role), str(label)) for pk, role, label in conn.execute(stmt)]
    return [r.mention_id for r in queries.mention_rows(conn, brand, ranked)]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A store (SQLite, then PostgreSQL) of the report's fixture set, with the most
    followed negative mentions of Acme answered, so that a first batch of candidates can
    hold too few unanswered ones."""
    fixtures = fixture_set()
    negative = sorted(
        (f for f in fixtures if "Acme" in f.brands and f.label == "negative" and not f.replies),
        key=lambda f: -f.followers,
    )
    answers = [
        dataclasses.replace(
            fixtures[0],
            i=10_000 + k,
            id=f"answer{k}",
            brands=("United",),
            in_reply_to=f.id,
            created_at=f.created_at + timedelta(minutes=5),
        )
        for k, f in enumerate(negative[:40:3] + negative[:6])
    ]
    # A dozen negatives of Acme tied on followers, above everyone, whose engagement falls
    # as their pk rises: the reach walk and the candidates' order rank them oppositely.
    ties = [
        dataclasses.replace(
            fixtures[0],
            i=20_000 + k,
            id=f"tie{k}",
            brands=("Acme",),
            label="negative",
            followers=5_000_000,
            engagement=1_000 - k,
            replies=0,
            in_reply_to=None,
            created_at=START + timedelta(hours=k),
        )
        for k in range(12)
    ]
    engine = make_engine(database_url)
    migrate(engine)
    clock = FrozenClock(NOW)
    for name, query, competitors in TEST_BRANDS:
        BrandStore(engine, clock).create(name, query, competitors)
    MentionWriter(engine, clock).write([record(f, NOW) for f in fixtures + ties + answers])
    yield engine
    engine.dispose()


WALKS = [queries.REACH_WALKS, (1, 3), (2, 9), (5, 40), ()]


@pytest.mark.parametrize("walks", WALKS, ids=str)
def test_unanswered_negative_equals_every_candidate_joined(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, walks: tuple[int, ...]
) -> None:
    monkeypatch.setattr(queries, "REACH_WALKS", walks)
    spans = [(START, END), (PREV, END), (START, START + timedelta(days=1))]
    with engine.connect() as conn:
        for batch in (1, 2, 4):
            monkeypatch.setattr(queries, "UNANSWERED_BATCH", batch)
            for lo, hi in spans:
                start, end = int(lo.timestamp()), int(hi.timestamp())
                for min_reach in (0, 1_000, 300_000):
                    for limit in (0, 1, 3, 10, 40):
                        want = every_candidate_joined(conn, "Acme", start, end, min_reach, limit)
                        got = queries.unanswered_negative(
                            conn, "Acme", start, end, min_reach, limit
                        )
                        assert [r.mention_id for r in got] == want, (batch, lo, min_reach, limit)


def each_label_read(
    conn: Connection, brand: str, start: int, end: int, label: str, limit: int
) -> list[str]:
    """The statement ``top_by_reach`` ran before, for one label."""
    f = brand_mention_facts.c
    stmt: Any = (
        queries._facts(brand, start, end)
        .where(f.label == label)
        .order_by(f.followers.desc(), f.engagement.desc(), f.mention_pk.desc())
        .limit(limit)
    )
    ranked = [(int(pk), str(role), str(lb)) for pk, role, lb in conn.execute(stmt)]
    return [r.mention_id for r in queries.mention_rows(conn, brand, ranked)]


@pytest.mark.parametrize("walks", WALKS, ids=str)
def test_top_by_reach_of_several_labels_equals_each_label_read_alone(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, walks: tuple[int, ...]
) -> None:
    monkeypatch.setattr(queries, "REACH_WALKS", walks)
    spans = [(START, END), (PREV, END), (START, START + timedelta(days=1))]
    label_sets = [("positive", "negative"), ("negative",), ("neutral", "positive", "negative")]
    with engine.connect() as conn:
        for read in (1, 4):
            monkeypatch.setattr(queries, "TOP_BY_REACH_READ", read)
            for lo, hi in spans:
                start, end = int(lo.timestamp()), int(hi.timestamp())
                for labels in label_sets:
                    for limit in (0, 1, 3, 5, 40):
                        got = queries.top_by_reach_labels(conn, "Acme", start, end, labels, limit)
                        assert list(got) == list(labels)
                        for label in labels:
                            want = each_label_read(conn, "Acme", start, end, label, limit)
                            assert [r.mention_id for r in got[label]] == want, (read, lo, limit)
