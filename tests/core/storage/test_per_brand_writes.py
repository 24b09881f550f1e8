"""Issue 16 in storage: a mention naming two brands is counted, for each, with the verdict
toward that brand (rollups, links, report rows, review items), on both write paths and on
PostgreSQL; a redelivery changes nothing, and an analyst's label on one brand's item moves
only that brand's figures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select

from services.core.clock import FrozenClock
from services.core.models import BrandSentiment, Mention, ScoredMention, Sentiment
from services.core.spotcheck import SpotCheck
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.storage.reads import MentionFilter, brand_view, list_mentions
from services.core.storage.report_rows import (
    author_day_rows,
    batch_rows,
    fact_rows,
    role_rollup_deltas,
)
from services.core.storage.review import Analyst, ReviewStore
from services.core.storage.tables import (
    brand_author_day_rollups,
    brand_mention_facts,
    brand_minute_rollups,
    brand_role_hour_rollups,
    mention_brands,
    mentions,
    review_items,
)
from services.core.storage.verdicts import verdict_toward
from services.core.storage.writer import MentionWriter, ScoredRecord, review_rows, rollup_deltas
from tests.fixtures.mentions import mention_doc
from tests.fixtures.report_data import assert_rollups_agree

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
MINUTE = int(T0.timestamp())
HOUR = MINUTE - MINUTE % 3600
SAMPLED = SpotCheck("random", 4.0, 1)
ANA = Analyst(1, "Ana")

# "Switched from Acme to Globex, support is night and day": the mention as a whole reads
# neutral-ish; toward Acme it is negative, toward Globex positive.
MIXED = Sentiment(
    label="neutral", score=0.05, confidence=0.4, method="lexicon", lexicon_compound=0.05
)
TOWARD = {
    "Acme": BrandSentiment(
        label="negative", score=-0.8, confidence=0.9, method="transformer", targeted=True
    ),
    "Globex": BrandSentiment(
        label="positive", score=0.7, confidence=0.85, method="transformer", targeted=True
    ),
}
ACME_ONLY = Sentiment(
    label="positive", score=0.6, confidence=0.5, method="lexicon", lexicon_compound=0.6
)


def scored(
    id: str,
    brands: tuple[str, ...],
    sentiment: Sentiment,
    by_brand: dict[str, BrandSentiment] | None,
    *,
    handle: str = "someone",
    spot: SpotCheck | None = None,
    seconds: int = 0,
) -> ScoredRecord:
    """A record as the scorer writes it, ``by_brand`` also in the stored document."""
    raw = mention_doc(
        id=id,
        text="Switched from Acme to Globex, support is night and day",
        created_at=(T0 + timedelta(seconds=seconds)).isoformat(),
        author={"id": f"u-{handle}", "handle": handle, "followers": 1_000},
        metrics={"likes": 3, "reposts": 1, "replies": 0},
    )
    doc: dict[str, Any] = {
        **raw,
        "brands": list(brands),
        "sentiment": sentiment.model_dump(),
        "spot_check": spot is not None,
        "scored_at": T0.isoformat(),
    }
    if by_brand is not None:
        doc["sentiment_by_brand"] = {b: v.model_dump() for b, v in by_brand.items()}
    return ScoredRecord(
        Mention.model_validate_json(orjson.dumps(raw)),
        brands,
        sentiment,
        spot is not None,
        T0,
        orjson.dumps(doc),
        spot,
        by_brand=by_brand,
    )


def batch() -> list[ScoredRecord]:
    return [
        scored("two", ("Acme", "Globex"), MIXED, TOWARD, spot=SAMPLED),
        scored("acme", ("Acme",), ACME_ONLY, None, seconds=5),
    ]


@dataclass(frozen=True)
class Db:
    engine: Engine
    writer: MentionWriter


@pytest.fixture(params=["sqlite-fast-path", "sqlite-returning", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "postgresql":
        engine = make_engine(request.getfixturevalue("pg_database"))
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    use_returning = request.param != "sqlite-fast-path"
    yield Db(engine, MentionWriter(engine, FrozenClock(T0), use_returning=use_returning))
    engine.dispose()


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table a write adds to, sorted (score sums rounded: summing order differs)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for t in (
            mentions,
            mention_brands,
            brand_minute_rollups,
            brand_role_hour_rollups,
            brand_mention_facts,
            brand_author_day_rollups,
            review_items,
        ):
            rows = [
                tuple(round(v, 9) if isinstance(v, float) else v for v in row)
                for row in conn.execute(select(t))
            ]
            out[t.name] = sorted(rows, key=repr)
    return out


def pks(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {mid: pk for pk, mid in conn.execute(select(mentions.c.pk, mentions.c.mention_id))}


def rollup(engine: Engine, brand: str) -> dict[str, Any]:
    r = brand_minute_rollups.c
    with engine.connect() as conn:
        row = conn.execute(
            select(r.mentions, r.positive, r.neutral, r.negative, r.score_sum).where(
                r.brand == brand, r.minute == MINUTE
            )
        ).one()
    return dict(row._mapping)


def links(engine: Engine) -> set[tuple[str, str, str]]:
    ids = {pk: mid for mid, pk in pks(engine).items()}
    with engine.connect() as conn:
        return {
            (ids[pk], brand, label)
            for pk, brand, label in conn.execute(
                select(mention_brands.c.mention_pk, mention_brands.c.brand, mention_brands.c.label)
            )
        }


def facts(engine: Engine) -> set[tuple[str, str, str]]:
    ids = {pk: mid for mid, pk in pks(engine).items()}
    f = brand_mention_facts.c
    with engine.connect() as conn:
        return {
            (ids[pk], brand, label)
            for pk, brand, label in conn.execute(select(f.mention_pk, f.brand, f.label))
        }


def role_hours(engine: Engine) -> dict[str, tuple[int, int, int, int]]:
    r = brand_role_hour_rollups.c
    out: dict[str, tuple[int, int, int, int]] = {}
    with engine.connect() as conn:
        for brand, m, p, neu, neg in conn.execute(
            select(r.brand, r.mentions, r.positive, r.neutral, r.negative).where(r.hour == HOUR)
        ):
            old = out.get(brand, (0, 0, 0, 0))
            out[brand] = (old[0] + m, old[1] + p, old[2] + neu, old[3] + neg)
    return out


def author_days(engine: Engine) -> dict[tuple[str, str], tuple[int, int]]:
    a = brand_author_day_rollups.c
    with engine.connect() as conn:
        return {
            (brand, author): (pos, neg)
            for brand, author, pos, neg in conn.execute(
                select(a.brand, a.author_id, a.positive, a.negative)
            )
        }


def items(engine: Engine) -> dict[str, tuple[str, str, float]]:
    ri = review_items.c
    with engine.connect() as conn:
        return {
            brand: (label, method, confidence)
            for brand, label, method, confidence in conn.execute(
                select(ri.brand, ri.auto_label, ri.auto_method, ri.auto_confidence)
            )
        }


# --- pure parts -------------------------------------------------------------------------


def test_rollup_deltas_count_each_brands_own_verdict() -> None:
    deltas = rollup_deltas(batch())
    acme, globex = deltas[("Acme", MINUTE)], deltas[("Globex", MINUTE)]
    assert (acme.mentions, acme.positive, acme.neutral, acme.negative) == (2, 1, 0, 1)
    assert acme.score_sum == pytest.approx(-0.8 + 0.6)
    assert (globex.mentions, globex.positive, globex.neutral, globex.negative) == (1, 1, 0, 0)
    assert globex.score_sum == pytest.approx(0.7)


def test_report_rows_and_review_rows_carry_each_brands_own_verdict() -> None:
    two = batch()[0]
    assert [(f[0], f[3]) for f in fact_rows([(two, 1)])] == [
        ("Acme", "negative"),
        ("Globex", "positive"),
    ]
    by_brand = {
        k[0]: (d.positive, d.neutral, d.negative) for k, d in role_rollup_deltas([two]).items()
    }
    assert by_brand == {"Acme": (0, 0, 1), "Globex": (1, 0, 0)}
    queued = {r["brand"]: r for r in review_rows([(two, 1)], T0)}
    assert {
        b: (r["auto_label"], r["auto_method"], r["auto_confidence"]) for b, r in queued.items()
    } == {
        "Acme": ("negative", "transformer", 0.9),
        "Globex": ("positive", "transformer", 0.85),
    }


def test_batch_rows_sum_a_batch_exactly_as_each_tables_own_function_does() -> None:
    # Keys shared across the batch: two authors, minutes, hours and brands repeat, and
    # some mentions carry verdicts per brand (issue 16), one only for one of its brands.
    kinds = (
        (("Acme", "Globex"), MIXED, TOWARD),
        (("Acme",), ACME_ONLY, None),
        (("Globex", "Initech"), MIXED, {"Globex": TOWARD["Globex"]}),
    )
    records = [
        scored(
            f"m{i}", *kinds[i % 3], handle=("ann", "bob")[i % 2], seconds=i % 6 * 20 + i // 6 * 1800
        )
        for i in range(24)
    ]
    inserted = [(r, 100 + i) for i, r in enumerate(records)]
    rows = batch_rows(inserted, lambda t: t)
    minutes = sorted(rollup_deltas(records).items())
    assert rows.minute_rows() == [
        (b, m, d.mentions, d.positive, d.neutral, d.negative, d.score_sum, d.reach, d.engagement)
        for (b, m), d in minutes
    ]
    assert len(rows.minute_rows()) < sum(len(r.brands) for r in records)
    assert rows.role_hour_rows() == [
        (*k, *d.row()) for k, d in sorted(role_rollup_deltas(records).items())
    ]
    assert rows.facts == fact_rows(inserted)
    assert rows.author_day_rows() == author_day_rows(fact_rows(inserted))
    assert rows.links == [
        (pk, b, r.mention.created_at, verdict_toward(r, b).label)
        for r, pk in inserted
        for b in r.brands
    ]


def test_the_writers_cheap_read_of_a_verdict_is_sentiment_for() -> None:
    def fields(v: Sentiment | BrandSentiment) -> tuple[object, ...]:
        return v.label, v.score, v.confidence, v.method

    partial = scored("x", ("Acme", "Initech"), MIXED, {"Acme": TOWARD["Acme"]})
    for r in (*batch(), partial):
        for brand in (*r.brands, "Nobody"):
            assert fields(verdict_toward(r, brand)) == fields(r.sentiment_for(brand))


def test_a_brand_missing_from_by_brand_gets_the_mentions_verdict() -> None:
    r = scored("x", ("Acme", "Initech"), MIXED, {"Acme": TOWARD["Acme"]})
    assert r.sentiment_for("Initech") == BrandSentiment.of(MIXED)
    deltas = rollup_deltas([r])
    assert deltas[("Initech", MINUTE)].neutral == 1
    assert deltas[("Initech", MINUTE)].score_sum == pytest.approx(0.05)


def test_brand_view_fills_every_brand_and_puts_the_brands_verdict_in_sentiment() -> None:
    two = ScoredMention.model_validate_json(batch()[0].doc)
    plain = ScoredMention.model_validate_json(batch()[1].doc)
    assert brand_view(two).sentiment == MIXED
    assert brand_view(two).sentiment_by_brand == TOWARD
    assert brand_view(plain).sentiment_by_brand == {"Acme": BrandSentiment.of(ACME_ONLY)}
    toward_acme = brand_view(two, "Acme").sentiment
    assert (toward_acme.label, toward_acme.score, toward_acme.confidence, toward_acme.method) == (
        "negative",
        -0.8,
        0.9,
        "transformer",
    )
    # What is the mention's, not the brand's, stays the mention's.
    assert toward_acme.lexicon_compound == MIXED.lexicon_compound
    assert toward_acme.model_version == MIXED.model_version


# --- stored -----------------------------------------------------------------------------


def test_each_brand_is_stored_with_its_own_verdict(db: Db) -> None:
    engine = db.engine
    result = db.writer.write(batch())
    assert (result.inserted, result.duplicates) == (2, 0)

    assert rollup(engine, "Acme") == {
        "mentions": 2,
        "positive": 1,
        "neutral": 0,
        "negative": 1,
        "score_sum": pytest.approx(-0.8 + 0.6),
    }
    assert rollup(engine, "Globex") == {
        "mentions": 1,
        "positive": 1,
        "neutral": 0,
        "negative": 0,
        "score_sum": pytest.approx(0.7),
    }
    expected = {
        ("two", "Acme", "negative"),
        ("two", "Globex", "positive"),
        ("acme", "Acme", "positive"),
    }
    assert links(engine) == expected
    assert facts(engine) == expected
    assert role_hours(engine) == {"Acme": (2, 1, 0, 1), "Globex": (1, 1, 0, 0)}
    assert author_days(engine) == {
        ("Acme", "u-someone"): (1, 1),
        ("Globex", "u-someone"): (1, 0),
    }
    assert items(engine) == {
        "Acme": ("negative", "transformer", 0.9),
        "Globex": ("positive", "transformer", 0.85),
    }
    # The mention's own columns keep the mention's own verdict.
    with engine.connect() as conn:
        row = conn.execute(
            select(mentions.c.label, mentions.c.score, mentions.c.method).where(
                mentions.c.mention_id == "two"
            )
        ).one()
    assert tuple(row) == ("neutral", 0.05, "lexicon")


def test_a_redelivery_changes_nothing(db: Db) -> None:
    engine = db.engine
    db.writer.write(batch())
    before = snapshot(engine)
    result = db.writer.write(batch())
    assert (result.inserted, result.duplicates) == (0, 2)
    assert snapshot(engine) == before


def test_the_mentions_list_reads_each_brands_verdict(db: Db) -> None:
    engine = db.engine
    db.writer.write(batch())
    with engine.connect() as conn:

        def listed(flt: MentionFilter) -> dict[str, tuple[str, float]]:
            page = list_mentions(conn, flt, limit=10, cursor=None)
            return {m.id: (m.sentiment.label, m.sentiment.score) for m in page.items}

        assert listed(MentionFilter()) == {"two": ("neutral", 0.05), "acme": ("positive", 0.6)}
        assert listed(MentionFilter(brand="Acme")) == {
            "two": ("negative", -0.8),
            "acme": ("positive", 0.6),
        }
        assert listed(MentionFilter(brand="Globex")) == {"two": ("positive", 0.7)}
        # The label filter with a brand is the label toward that brand.
        assert listed(MentionFilter(brand="Acme", label="negative")) == {"two": ("negative", -0.8)}
        assert listed(MentionFilter(brand="Globex", label="negative")) == {}
        assert listed(MentionFilter(label="neutral")) == {"two": ("neutral", 0.05)}
        every = list_mentions(conn, MentionFilter(), limit=10, cursor=None).items
    assert {m.id: m.sentiment_by_brand for m in every} == {
        "two": TOWARD,
        "acme": {"Acme": BrandSentiment.of(ACME_ONLY)},
    }


def test_an_analysts_label_on_one_brand_moves_only_that_brand(db: Db) -> None:
    engine = db.engine
    db.writer.write(batch())
    globex_before = rollup(engine, "Globex")
    store = ReviewStore(engine, FrozenClock(T0 + timedelta(hours=1)), lease=timedelta(minutes=5))

    item = store.claim(ANA, ("Acme",))
    assert item is not None and (item.brand, item.auto_label) == ("Acme", "negative")
    store.label(ANA, item.id, "positive")
    acme = rollup(engine, "Acme")
    assert (acme["mentions"], acme["positive"], acme["negative"]) == (2, 2, 0)
    # A label is not a score: the brand's sum keeps its automated polarity.
    assert acme["score_sum"] == pytest.approx(-0.8 + 0.6)
    assert rollup(engine, "Globex") == globex_before
    expected = {
        ("two", "Acme", "positive"),
        ("two", "Globex", "positive"),
        ("acme", "Acme", "positive"),
    }
    assert links(engine) == facts(engine) == expected
    assert role_hours(engine) == {"Acme": (2, 2, 0, 0), "Globex": (1, 1, 0, 0)}
    assert_rollups_agree(engine)

    # "Irrelevant" takes the mention out of Acme's figures with Acme's own score (-0.8),
    # not the mention's (0.05); Globex still untouched.
    store.undo(ANA)
    store.label(ANA, item.id, "irrelevant")
    acme = rollup(engine, "Acme")
    assert (acme["mentions"], acme["positive"], acme["negative"]) == (1, 1, 0)
    assert acme["score_sum"] == pytest.approx(0.6)
    assert rollup(engine, "Globex") == globex_before
    assert (
        links(engine)
        == facts(engine)
        == {("two", "Globex", "positive"), ("acme", "Acme", "positive")}
    )
    assert role_hours(engine) == {"Acme": (1, 1, 0, 0), "Globex": (1, 1, 0, 0)}
    assert_rollups_agree(engine)

    # Undone: back where the writer left it, the facts rebuilt from the stored document
    # with Acme's own verdict.
    store.undo(ANA)
    acme = rollup(engine, "Acme")
    assert (acme["mentions"], acme["positive"], acme["negative"]) == (2, 1, 1)
    assert acme["score_sum"] == pytest.approx(-0.8 + 0.6)
    expected = {
        ("two", "Acme", "negative"),
        ("two", "Globex", "positive"),
        ("acme", "Acme", "positive"),
    }
    assert links(engine) == facts(engine) == expected
    assert role_hours(engine) == {"Acme": (2, 1, 0, 1), "Globex": (1, 1, 0, 0)}
    assert_rollups_agree(engine)


def test_an_owned_accounts_mention_counts_for_the_other_brand_with_its_verdict(db: Db) -> None:
    engine = db.engine
    BrandStore(engine, FrozenClock(T0)).create("Globex", '"globex"', owned_handles=["GlobexCorp"])
    record = scored("own", ("Acme", "Globex"), MIXED, TOWARD, handle="GlobexCorp", spot=SAMPLED)
    db.writer.write([record])
    assert rollup(engine, "Acme") == {
        "mentions": 1,
        "positive": 0,
        "neutral": 0,
        "negative": 1,
        "score_sum": pytest.approx(-0.8),
    }
    assert links(engine) == facts(engine) == {("own", "Acme", "negative")}
    assert items(engine) == {"Acme": ("negative", "transformer", 0.9)}
