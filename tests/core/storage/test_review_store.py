"""The spot-check queue in storage: queued once, leased to one analyst at a time, labels
reflected in the aggregates and undone exactly, every change audited."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, select

from services.core.clock import FrozenClock
from services.core.models import Mention, Sentiment
from services.core.spotcheck import SpotCheck
from services.core.storage.analytics import brand_buckets
from services.core.storage.db import make_engine, migrate
from services.core.storage.errors import ConflictError, NotFoundError
from services.core.storage.review import (
    Analyst,
    ReviewStore,
    labelled_items,
    measured_accuracy,
)
from services.core.storage.tables import (
    brand_mention_facts,
    brand_minute_rollups,
    brand_role_hour_rollups,
    mention_brands,
    review_audit,
    review_items,
    review_labels,
)
from services.core.storage.writer import MentionWriter, ScoredRecord
from services.scorer.process import scored_document
from tests.fixtures.mentions import mention_doc
from tests.fixtures.report_data import assert_rollups_agree

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
SCORES = {"positive": 0.6, "neutral": 0.0, "negative": -0.7}
SAMPLED = SpotCheck("random", 50.0, 1)
ANA = Analyst(1, "Ana")
BEN = Analyst(2, "Ben")


def record(
    i: int,
    label: str = "positive",
    brands: tuple[str, ...] = ("Acme",),
    *,
    spot: SpotCheck | None = SAMPLED,
    minute: int = 0,
    method: str = "lexicon",
) -> ScoredRecord:
    raw = orjson.dumps(
        mention_doc(
            id=f"r{i}",
            text=f"<b>Acme</b> mention {i}",
            created_at=(T0 + timedelta(minutes=minute, seconds=i % 60)).isoformat(),
            author={"id": f"a{i}", "handle": f"h{i}", "followers": 100 + i},
            metrics={"likes": 1, "reposts": 2, "replies": 3},
        )
    )
    mention = Mention.model_validate_json(raw)
    s = Sentiment.model_validate(
        {
            "label": label,
            "score": SCORES[label],
            "confidence": 0.5,
            "method": method,
            "lexicon_compound": SCORES[label],
        }
    )
    flagged = spot is not None
    doc = scored_document(raw, brands, s, flagged, T0)
    return ScoredRecord(mention, brands, s, flagged, T0, doc, spot)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    e = make_engine(database_url)
    migrate(e)
    yield e
    e.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0 + timedelta(hours=1))


def store(engine: Engine, clock: FrozenClock) -> ReviewStore:
    return ReviewStore(engine, clock, lease=LEASE)


def rollups(engine: Engine) -> dict[tuple[str, int], tuple[Any, ...]]:
    r = brand_minute_rollups
    with engine.connect() as conn:
        return {(row.brand, row.minute): tuple(row)[2:] for row in conn.execute(select(r))}


def links(engine: Engine) -> set[tuple[int, str, str]]:
    mb = mention_brands
    with engine.connect() as conn:
        return {(r.mention_pk, r.brand, r.label) for r in conn.execute(select(mb))}


def assert_report_rows_agree(engine: Engine) -> None:
    """The executive report's rollups sum to the brand rollups, and its facts carry the
    labels ``mention_brands`` does (the invariants of ``report_rows``)."""
    hourly: dict[tuple[str, int], list[int]] = {}
    for (brand, minute), c in rollups(engine).items():
        row = hourly.setdefault((brand, minute - minute % 3600), [0] * 6)
        for i, v in enumerate((*c[:4], *c[5:])):  # mentions, labels, reach, engagement
            row[i] += v
    by_role: dict[tuple[str, int], list[int]] = {}
    with engine.connect() as conn:
        r = brand_role_hour_rollups
        counters = ("mentions", "positive", "neutral", "negative", "reach", "engagement")
        for role_row in conn.execute(select(r)):
            acc = by_role.setdefault((role_row.brand, role_row.hour), [0] * 6)
            for i, name in enumerate(counters):
                acc[i] += getattr(role_row, name)
        f = brand_mention_facts
        facts = {(x.mention_pk, x.brand, x.label) for x in conn.execute(select(f))}
    assert by_role == hourly
    assert facts == links(engine)
    assert_rollups_agree(engine)


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize("path", ["sqlite-fast-path", "sqlite-returning"])
def test_the_writer_queues_a_sampled_mention_once_per_brand_even_when_redelivered(
    tmp_path: Path, path: str
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    migrate(engine)
    writer = MentionWriter(engine, FrozenClock(T0), use_returning=path == "sqlite-returning")
    batch = [
        record(0, brands=("Acme", "Globex"), spot=SpotCheck("uncertainty", 10.0, 2)),
        record(1, spot=None),
        record(2),
    ]
    assert writer.write(batch).inserted == 3
    assert writer.write(batch).duplicates == 3  # redelivered: nothing new
    with engine.connect() as conn:
        rows = conn.execute(
            select(review_items).order_by(review_items.c.mention_pk, review_items.c.brand)
        ).all()
    assert [(r.brand, r.reason, r.weight, r.reviews_required) for r in rows] == [
        ("Acme", "uncertainty", 10.0, 2),
        ("Globex", "uncertainty", 10.0, 2),
        ("Acme", "random", 50.0, 1),
    ]
    assert all(r.auto_label == "positive" and r.reviews_done == 0 for r in rows)


def test_the_writer_queues_once_on_postgresql(pg_database: str) -> None:
    engine = make_engine(pg_database)
    migrate(engine)
    writer = MentionWriter(engine, FrozenClock(T0))
    batch = [record(i, brands=("Acme", "Globex")) for i in range(5)]
    writer.write(batch)
    writer.write([*batch[2:], record(9)])
    assert count(engine, review_items) == 11  # 5 mentions × 2 brands, then one new × 1
    engine.dispose()


def test_analysts_claiming_at_once_never_hold_the_same_item(
    engine: Engine, clock: FrozenClock
) -> None:
    MentionWriter(engine, clock).write([record(i) for i in range(4)])
    analysts = [Analyst(k, f"analyst {k}") for k in range(1, 9)]
    start = threading.Barrier(len(analysts))
    got: dict[int, int | None] = {}

    def claim(a: Analyst) -> None:
        s = store(engine, clock)
        start.wait()
        item = s.claim(a)
        got[a.key_id] = None if item is None else item.id

    threads = [threading.Thread(target=claim, args=(a,)) for a in analysts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    held = [i for i in got.values() if i is not None]
    assert len(got) == 8
    assert len(held) == 4 and len(set(held)) == 4  # four items, four analysts, no sharing


def test_analysts_working_through_the_queue_at_once_label_each_item_once(
    engine: Engine, clock: FrozenClock
) -> None:
    MentionWriter(engine, clock).write([record(i, brands=("Acme", "Globex")) for i in range(30)])
    analysts = [Analyst(k, f"analyst {k}") for k in range(1, 7)]
    start = threading.Barrier(len(analysts))
    labelled: dict[int, list[int]] = {a.key_id: [] for a in analysts}
    errors: list[BaseException] = []

    def work(a: Analyst) -> None:
        s = store(engine, clock)
        start.wait()
        try:
            while (item := s.claim(a)) is not None:
                s.label(a, item.id, "negative")
                labelled[a.key_id].append(item.id)
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(a,)) for a in analysts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    every = [i for ids in labelled.values() for i in ids]
    assert len(every) == 60 and len(set(every)) == 60
    # every label moved one mention from positive to negative in its brand's rollup
    for counts in rollups(engine).values():
        mentions_, positive, _neutral, negative = counts[:4]
        assert positive == 0 and negative == mentions_
    assert_report_rows_agree(engine)


def test_an_expired_lease_returns_the_item_to_the_queue(engine: Engine, clock: FrozenClock) -> None:
    MentionWriter(engine, clock).write([record(0)])
    s = store(engine, clock)
    item = s.claim(ANA)
    assert item is not None
    assert s.claim(BEN) is None  # held by Ana
    assert s.claim(ANA) == item  # Ana asks again: the same item, lease renewed
    clock.advance(LEASE - timedelta(seconds=1))
    assert s.claim(BEN) is None
    clock.advance(timedelta(seconds=1))  # Ana's lease has run out
    taken = s.claim(BEN)
    assert taken is not None and taken.id == item.id
    with pytest.raises(ConflictError, match="not claimed by you"):
        s.label(ANA, item.id, "neutral")
    s.label(BEN, item.id, "neutral")
    assert s.claim(ANA) is None  # done


def test_an_expired_lease_nobody_took_still_accepts_the_label(
    engine: Engine, clock: FrozenClock
) -> None:
    MentionWriter(engine, clock).write([record(0)])
    s = store(engine, clock)
    item = s.claim(ANA)
    assert item is not None
    clock.advance(LEASE * 3)
    s.label(ANA, item.id, "negative")
    assert s.claim(ANA) is None and s.progress(ANA).labelled_by_you == 1


def test_a_label_overrides_the_aggregates_and_undo_restores_them_exactly(
    engine: Engine, clock: FrozenClock
) -> None:
    MentionWriter(engine, clock).write(
        [record(0, brands=("Acme", "Globex")), record(1, "neutral", spot=None)]
    )
    before_rollups, before_links = rollups(engine), links(engine)
    s = store(engine, clock)
    first = s.claim(ANA)
    assert first is not None and first.brand == "Acme" and first.auto_label == "positive"
    s.label(ANA, first.id, "negative")
    second = s.claim(ANA)
    assert second is not None and second.brand == "Globex"
    s.label(ANA, second.id, "irrelevant")

    minute = int(T0.timestamp())
    after = rollups(engine)
    # Acme: 2 mentions (one neutral), the positive one is now negative; reach unchanged
    a0, a1 = before_rollups[("Acme", minute)], after[("Acme", minute)]
    assert a1[:4] == (2, a0[1] - 1, a0[2], a0[3] + 1)
    assert a1[5:] == a0[5:]
    # Globex: the mention is gone from every figure
    assert after[("Globex", minute)][:4] == (0, 0, 0, 0)
    assert after[("Globex", minute)][5:] == (0, 0)
    with engine.connect() as conn:
        acme = brand_buckets(conn, ["Acme"], minute, minute + 60, 60).totals["Acme"]
        assert (acme.positive, acme.negative, acme.net_sentiment) == (0, 1, -1.0)
    assert {(b, lbl) for _, b, lbl in links(engine)} == {("Acme", "negative"), ("Acme", "neutral")}
    assert_report_rows_agree(engine)

    undone, withdrawn = s.undo(ANA)
    assert undone.id == second.id and undone.reviews_done == 0 and withdrawn == "irrelevant"
    undone, withdrawn = s.undo(ANA)
    assert undone.id == first.id and withdrawn == "negative"
    assert links(engine) == before_links
    assert_report_rows_agree(engine)
    restored = rollups(engine)
    for key, counts in before_rollups.items():
        assert restored[key][:4] == counts[:4] and restored[key][5:] == counts[5:]
        assert restored[key][4] == pytest.approx(counts[4], abs=1e-12)  # score sum (a float)
    with pytest.raises(NotFoundError, match="nothing to undo"):
        s.undo(ANA)


def test_double_review_first_label_counts_and_undo_hands_over(
    engine: Engine, clock: FrozenClock
) -> None:
    MentionWriter(engine, clock).write([record(0, spot=SpotCheck("random", 50.0, 2))])
    s = store(engine, clock)
    item = s.claim(ANA)
    assert item is not None
    s.label(ANA, item.id, "negative")
    assert s.claim(ANA) is None  # Ana has labelled it; it waits for a second analyst
    again = s.claim(BEN)
    assert again is not None and again.id == item.id and again.reviews_done == 1
    s.label(BEN, item.id, "neutral")
    with pytest.raises(ConflictError, match="labelled it already"):
        s.label(BEN, item.id, "positive")
    assert s.claim(BEN) is None and s.claim(ANA) is None

    minute = int(T0.timestamp())
    assert rollups(engine)[("Acme", minute)][1:4] == (0, 0, 1)  # Ana's label counts
    with engine.connect() as conn:
        [li] = labelled_items(conn)
    assert li.labels == ("negative", "neutral")

    s.undo(ANA)  # now Ben's is the first standing label
    assert rollups(engine)[("Acme", minute)][1:4] == (0, 1, 0)
    s.undo(BEN)
    assert rollups(engine)[("Acme", minute)][1:4] == (1, 0, 0)


def test_skipped_items_go_to_other_analysts(engine: Engine, clock: FrozenClock) -> None:
    MentionWriter(engine, clock).write([record(0)])
    s = store(engine, clock)
    item = s.claim(ANA)
    assert item is not None
    s.skip(ANA, item.id)
    assert s.claim(ANA) is None
    other = s.claim(BEN)
    assert other is not None and other.id == item.id
    with pytest.raises(ConflictError):
        s.skip(ANA, item.id)
    with pytest.raises(NotFoundError):
        s.skip(ANA, 999)


def test_every_label_change_is_audited(engine: Engine, clock: FrozenClock) -> None:
    MentionWriter(engine, clock).write([record(0)])
    s = store(engine, clock)
    item = s.claim(ANA)
    assert item is not None
    s.label(ANA, item.id, "neutral")
    clock.advance(timedelta(seconds=30))
    s.undo(ANA)
    clock.advance(timedelta(seconds=30))
    s.label(ANA, item.id, "irrelevant")
    entries = s.audit(item_id=item.id)
    assert [(e.analyst, e.action, e.before, e.after) for e in entries] == [
        ("Ana", "label", None, "irrelevant"),
        ("Ana", "undo", "neutral", None),
        ("Ana", "label", None, "neutral"),
    ]
    assert [e.at for e in entries] == [
        clock.now(),
        clock.now() - timedelta(seconds=30),
        clock.now() - timedelta(seconds=60),
    ]
    assert count(engine, review_audit) == 3
    with pytest.raises(ValueError, match="label:"):
        s.label(ANA, item.id, "<script>")


def test_measured_accuracy_applies_to_the_brands_and_range_asked(
    engine: Engine, clock: FrozenClock
) -> None:
    MentionWriter(engine, clock).write(
        [
            record(0, "positive", ("Acme",), minute=0),
            record(1, "positive", ("Acme",), minute=0),
            record(2, "negative", ("Globex",), minute=0),
            record(3, "neutral", ("Acme",), minute=90),
        ]
    )
    s = store(engine, clock)
    verdicts = {"r0": "positive", "r1": "negative", "r2": "negative", "r3": "irrelevant"}
    while (item := s.claim(ANA)) is not None:
        s.label(ANA, item.id, verdicts[item.mention["id"]])
    with engine.connect() as conn:
        everything = measured_accuracy(conn)
        acme = measured_accuracy(conn, brands=["Acme"])
        first_hour = measured_accuracy(conn, since=T0, until=T0 + timedelta(hours=1))
        nothing = measured_accuracy(conn, brands=["United"])
    # Acme r0 right, r1 wrong (r3 irrelevant: not a sentiment label); Globex r2 right
    assert everything is not None and everything.value == pytest.approx(2 / 3)
    assert everything.n == 3
    assert acme is not None and acme.value == pytest.approx(0.5) and acme.n == 2
    assert first_hour is not None and first_hour.n == 3
    assert nothing is None


def test_measured_accuracy_counts_only_labels_of_mentions_in_the_range(
    engine: Engine, clock: FrozenClock
) -> None:
    # Half-open [since, until): r0 at since counts, r2 at until does not, r1 inside does.
    MentionWriter(engine, clock).write(
        [
            record(0, "positive", ("Acme",), minute=60),
            record(1, "negative", ("Acme",), minute=90),
            record(2, "positive", ("Acme",), minute=120),
            record(3, "negative", ("Acme",), minute=0),
        ]
    )
    s = store(engine, clock)
    # r0 and r3 confirmed; r1 and r2 overturned.
    verdicts = {"r0": "positive", "r1": "positive", "r2": "negative", "r3": "negative"}
    while (item := s.claim(ANA)) is not None:
        s.label(ANA, item.id, verdicts[item.mention["id"]])
    since = T0 + timedelta(minutes=60)
    until = T0 + timedelta(minutes=120)
    with engine.connect() as conn:
        window = measured_accuracy(conn, since=since, until=until)
        after = measured_accuracy(conn, since=since)
        before = measured_accuracy(conn, until=since)
        assert [i.auto_label for i in labelled_items(conn, since=since, until=until)] == [
            "positive",
            "negative",
        ]
    assert window is not None and window.n == 2 and window.value == pytest.approx(0.5)
    assert after is not None and after.n == 3 and after.value == pytest.approx(1 / 3)
    assert before is not None and before.n == 1 and before.value == pytest.approx(1.0)


def test_concurrent_labels_and_undos_keep_the_counts_consistent(
    engine: Engine, clock: FrozenClock
) -> None:
    # An analyst double-clicking undo while a colleague labels the same double-review item.
    MentionWriter(engine, clock).write(
        [record(i, spot=SpotCheck("random", 50.0, 2)) for i in range(6)]
    )
    s = store(engine, clock)
    while (item := s.claim(ANA)) is not None:
        s.label(ANA, item.id, "negative")
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def undo() -> None:
        start.wait()
        try:
            s.undo(ANA)
        except ConflictError:
            pass  # the other click withdrew it
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    def second_opinions() -> None:
        start.wait()
        try:
            while (item := s.claim(BEN)) is not None:
                s.label(BEN, item.id, "neutral")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=f) for f in (undo, undo, second_opinions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with engine.connect() as conn:
        done = conn.execute(select(func.sum(review_items.c.reviews_done))).scalar_one()
        labels = conn.execute(select(func.count()).select_from(review_labels)).scalar_one()
        [(positive, neutral, negative)] = conn.execute(
            select(
                func.sum(brand_minute_rollups.c.positive),
                func.sum(brand_minute_rollups.c.neutral),
                func.sum(brand_minute_rollups.c.negative),
            )
        ).all()
        items = labelled_items(conn)
    assert done == labels
    # each mention counts under its first standing label, or the automated positive
    firsts = Counter(i.labels[0] for i in items)
    assert negative == firsts["negative"] and neutral == firsts["neutral"]
    assert positive == 6 - len(items)
    assert_report_rows_agree(engine)
