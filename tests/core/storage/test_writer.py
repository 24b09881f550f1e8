"""The batch writer: idempotent, transactional, rollups equal to direct sums."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from services.core.clock import FrozenClock
from services.core.models import Mention, ScoredMention, Sentiment
from services.core.storage.analytics import brand_buckets
from services.core.storage.db import make_engine, migrate
from services.core.storage.reads import MentionFilter, list_mentions
from services.core.storage.tables import brand_minute_rollups, mention_brands, mentions, metadata
from services.core.storage.writer import MentionWriter, ScoredRecord, minute_of, rollup_deltas
from services.scorer.process import scored_document
from tests.fixtures.mentions import mention_doc
from tests.fixtures.store_refusal import POISON_PREFIX, REFUSAL_MESSAGE, install_refusal_trigger

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LABEL_SCORE = {"positive": 0.6, "neutral": 0.0, "negative": -0.7}


def record(
    i: int,
    label: str = "positive",
    brands: tuple[str, ...] = ("Acme",),
    minute: int = 0,
    followers: int = 100,
) -> ScoredRecord:
    raw = orjson.dumps(
        mention_doc(
            id=f"w{i}",
            created_at=(T0 + timedelta(minutes=minute, seconds=i % 60)).isoformat(),
            author={"id": f"a{i}", "handle": f"h{i}", "followers": followers},
            metrics={"likes": 1, "reposts": 2, "replies": 3},
        )
    )
    mention = Mention.model_validate_json(raw)
    score = LABEL_SCORE[label]
    s = Sentiment.model_validate(
        {
            "label": label,
            "score": score,
            "confidence": 0.5,
            "method": "lexicon",
            "lexicon_compound": score,
        }
    )
    spot = i % 5 == 0
    return ScoredRecord(mention, brands, s, spot, T0, scored_document(raw, brands, s, spot, T0))


@pytest.fixture(params=["sqlite-fast-path", "sqlite-returning", "postgresql"])
def writer_and_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[MentionWriter, Engine]:
    if request.param == "postgresql":
        engine = make_engine(request.getfixturevalue("pg_database"))
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    writer = MentionWriter(
        engine, FrozenClock(T0), use_returning=request.param != "sqlite-fast-path"
    )
    return writer, engine


def rollups(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(brand_minute_rollups).order_by(
                    brand_minute_rollups.c.brand, brand_minute_rollups.c.minute
                )
            )
        ]


def test_rollups_equal_direct_sums(writer_and_engine: tuple[MentionWriter, Engine]) -> None:
    writer, engine = writer_and_engine
    batch = [
        record(
            i,
            label=("positive", "neutral", "negative")[i % 3],
            brands=("Acme",) if i % 4 else ("Acme", "Globex"),
            minute=i % 3,
            followers=i,
        )
        for i in range(60)
    ]
    assert writer.write(batch).inserted == 60
    expected: dict[tuple[str, int], list[float]] = {}
    for r in batch:
        for b in r.brands:
            row = expected.setdefault((b, minute_of(r.mention.created_at)), [0, 0, 0, 0, 0.0, 0, 0])
            row[0] += 1
            row[1 + ("positive", "neutral", "negative").index(r.sentiment.label)] += 1
            row[4] += r.sentiment.score
            row[5] += r.mention.author.followers
            row[6] += 6
    got = {(r[0], r[1]): list(r[2:]) for r in rollups(engine)}
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k][:4] == v[:4] and got[k][5:] == v[5:]
        assert got[k][4] == pytest.approx(v[4])
    with engine.connect() as conn:
        assert len(list(conn.execute(select(mention_brands)))) == 60 + 15


def test_redelivery_is_stored_and_counted_once(
    writer_and_engine: tuple[MentionWriter, Engine],
) -> None:
    writer, engine = writer_and_engine
    batch = [record(i) for i in range(20)]
    first = writer.write(batch)
    before = rollups(engine)
    again = writer.write([*batch[5:], record(100), record(100)])
    assert (first.inserted, first.duplicates) == (20, 0)
    assert (again.inserted, again.duplicates) == (1, 16)
    after = rollups(engine)
    assert sum(r[2] for r in after) == sum(r[2] for r in before) + 1
    with engine.connect() as conn:
        assert len(list(conn.execute(select(mentions.c.pk)))) == 21


def test_a_batch_partly_stored_already_links_each_new_mention_to_its_own_row(
    writer_and_engine: tuple[MentionWriter, Engine],
) -> None:
    # The single writer numbers its rows itself; when some of a batch were stored already
    # (and one repeats inside the batch), each row it did insert must still be counted
    # with its own mention's time and verdict.
    writer, engine = writer_and_engine
    labels = ("positive", "neutral", "negative")
    everything = [
        record(i, label=labels[i % 3], brands=("Acme", "Globex")[: 1 + i % 2], minute=i % 4)
        for i in range(20)
    ]
    first = writer.write(everything[::2])
    again = writer.write([*everything, everything[3], record(3, label=labels[0])])
    assert (first.inserted, first.duplicates) == (10, 0)
    assert (again.inserted, again.duplicates) == (10, 12)
    expected: dict[tuple[str, int], list[int]] = {}
    for r in everything:
        for b in r.brands:
            row = expected.setdefault((b, minute_of(r.mention.created_at)), [0, 0, 0, 0])
            row[0] += 1
            row[1 + labels.index(r.sentiment.label)] += 1
    assert {(r[0], r[1]): list(r[2:6]) for r in rollups(engine)} == expected
    with engine.connect() as conn:
        linked = {
            (mention_id, brand, created, label)
            for mention_id, brand, created, label in conn.execute(
                select(
                    mentions.c.mention_id,
                    mention_brands.c.brand,
                    mention_brands.c.created_at,
                    mention_brands.c.label,
                ).join(mentions, mentions.c.pk == mention_brands.c.mention_pk)
            )
        }
    assert linked == {
        (r.mention.id, b, r.mention.created_at, r.sentiment.label)
        for r in everything
        for b in r.brands
    }


def test_a_failed_batch_stores_nothing_and_can_be_retried(
    writer_and_engine: tuple[MentionWriter, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, engine = writer_and_engine
    batch = [record(i) for i in range(10)]

    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(MentionWriter, "_sqlite_rollups_and_links", boom)
    monkeypatch.setattr(MentionWriter, "_add_to_rollups", boom)
    monkeypatch.setattr(MentionWriter, "_postgres_rollups_and_links", boom)
    with pytest.raises(RuntimeError):
        writer.write(batch)
    with engine.connect() as conn:
        assert list(conn.execute(select(mentions.c.pk))) == []
    monkeypatch.undo()
    assert writer.write(batch).inserted == 10
    assert sum(r[2] for r in rollups(engine)) == 10


def test_stored_documents_read_back_as_scored_mentions(
    writer_and_engine: tuple[MentionWriter, Engine],
) -> None:
    writer, engine = writer_and_engine
    batch = [record(i, brands=("Acme", "Globex")) for i in range(3)]
    writer.write(batch)
    with engine.connect() as conn:
        page = list_mentions(conn, MentionFilter(brand="Globex"), limit=10, cursor=None)
        buckets = brand_buckets(conn, ["Acme"], minute_of(T0), minute_of(T0) + 3600, 600)
    assert sorted(m.id for m in page.items) == ["w0", "w1", "w2"]
    assert all(isinstance(m, ScoredMention) and m.brands == ["Acme", "Globex"] for m in page.items)
    assert page.items[0].sentiment.label == "positive"
    assert buckets.totals["Acme"].mentions == 3
    assert len(buckets.bucket_starts) == 6


def test_both_write_paths_store_the_same_rows(tmp_path: Path, pg_database: str) -> None:
    batch = [record(i, label=("positive", "negative")[i % 2], minute=i % 2) for i in range(12)]
    tables: list[list[tuple[Any, ...]]] = []
    for url, returning in (
        (f"sqlite:///{tmp_path / 'fast.db'}", False),
        (f"sqlite:///{tmp_path / 'returning.db'}", True),
        (pg_database, True),
    ):
        engine = make_engine(url)
        migrate(engine)
        MentionWriter(engine, FrozenClock(T0), use_returning=returning).write(batch)
        with engine.connect() as conn:
            tables.append(
                [tuple(r) for r in conn.execute(select(mentions).order_by(mentions.c.mention_id))]
                + [
                    tuple(r)
                    for r in conn.execute(
                        select(mention_brands).order_by(mention_brands.c.mention_pk)
                    )
                ]
            )
        tables[-1] += rollups(engine)
        engine.dispose()
    assert tables[0] == tables[1] == tables[2]


def test_rollup_deltas_is_pure_arithmetic() -> None:
    deltas = rollup_deltas([record(1, "positive"), record(2, "negative"), record(3, "neutral")])
    (d,) = deltas.values()
    assert (d.mentions, d.positive, d.negative, d.neutral) == (3, 1, 1, 1)
    assert d.score_sum == pytest.approx(-0.1)


def test_migrations_create_exactly_the_declared_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_the_migrations_form_one_linear_chain() -> None:
    # One head, every revision with at most one parent: `alembic upgrade head` works and
    # every database walks the same path.
    from importlib.resources import files

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(files("services.core.storage") / "migrations"))
    script = ScriptDirectory.from_config(cfg)
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert [r.down_revision for r in revisions].count(None) == 1
    assert all(not isinstance(r.down_revision, tuple) for r in revisions)


def test_naive_datetimes_are_refused_by_the_store(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    from sqlalchemy.exc import StatementError

    with pytest.raises(StatementError, match="naive"), engine.begin() as conn:
        conn.execute(
            mention_brands.insert().values(
                mention_pk=1, brand="x", created_at=datetime(2026, 1, 1), label="neutral"
            )
        )


def test_concurrent_writers_on_one_database_count_each_mention_once(database_url: str) -> None:
    # e.g. `sentimon replay` into the data directory of a running `sentimon run`, or two
    # scorer processes sharing one PostgreSQL
    from concurrent.futures import ThreadPoolExecutor

    url = database_url
    migrate(make_engine(url))
    records = [record(i, minute=i % 5) for i in range(600)]
    batches = [records[i : i + 50] for i in range(0, 600, 25)]  # every mention twice
    writers = [MentionWriter(make_engine(url), FrozenClock(T0)) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda kb: writers[kb[0] % 2].write(kb[1]), enumerate(batches)))
    assert sum(r.inserted for r in results) == 600
    engine = make_engine(url)
    assert sum(r[2] for r in rollups(engine)) == 600
    with engine.connect() as conn:
        assert len(list(conn.execute(select(mention_brands)))) == 600


def poison(rec: ScoredRecord, mention_id: str) -> ScoredRecord:
    return dataclasses.replace(rec, mention=rec.mention.model_copy(update={"id": mention_id}))


def test_what_the_database_refuses_is_isolated_and_the_rest_stored(
    writer_and_engine: tuple[MentionWriter, Engine],
) -> None:
    writer, engine = writer_and_engine
    install_refusal_trigger(engine)
    batch = [record(i) for i in range(40)]
    for i in (0, 17, 39):
        batch[i] = poison(batch[i], f"{POISON_PREFIX}-{i}")
    written = writer.write_isolating(batch)
    assert written.result.inserted == 37
    assert sorted(r.record.mention.id for r in written.refused) == [
        f"{POISON_PREFIX}-0",
        f"{POISON_PREFIX}-17",
        f"{POISON_PREFIX}-39",
    ]
    for r in written.refused:
        assert r.reason.startswith("store refused: ")
        assert REFUSAL_MESSAGE in r.reason
    with engine.connect() as conn:
        stored = {row[0] for row in conn.execute(select(mentions.c.mention_id))}
    assert stored == {f"w{i}" for i in range(40) if i not in (0, 17, 39)}
    assert sum(r[2] for r in rollups(engine)) == 37
    # Redelivered, the same batch stores nothing twice and refuses the same three.
    again = writer.write_isolating(batch)
    assert (again.result.inserted, again.result.duplicates) == (0, 37)
    assert len(again.refused) == 3


def test_a_time_the_code_cannot_convert_is_isolated_too(
    writer_and_engine: tuple[MentionWriter, Engine],
) -> None:
    # A mention validated before the edge refused such times (an old message still on
    # the bus): year 1 at +01:00 has no UTC instant, and converting it raises in Python.
    writer, _ = writer_and_engine
    good = [record(i) for i in range(5)]
    year_one = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    bad = dataclasses.replace(
        good[2],
        mention=good[2].mention.model_construct(
            **{**dict(good[2].mention), "id": "year-one", "created_at": year_one}
        ),
    )
    written = writer.write_isolating([*good, bad])
    assert written.result.inserted == 5
    ((refused,),) = [written.refused]
    assert refused.record.mention.id == "year-one"
    assert "OverflowError" in refused.reason


def test_a_transient_error_is_raised_for_a_retry_not_isolated(
    writer_and_engine: tuple[MentionWriter, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, _ = writer_and_engine
    calls = []

    def away(self: MentionWriter, batch: Sequence[ScoredRecord]) -> None:
        calls.append(len(batch))
        raise OperationalError("INSERT …", {}, Exception("connection refused"))

    monkeypatch.setattr(MentionWriter, "write", away)
    with pytest.raises(OperationalError):
        writer.write_isolating([record(i) for i in range(8)])
    assert calls == [8]  # no bisection: the whole batch comes again later
