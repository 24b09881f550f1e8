"""The report's language mix from ``brand_language_hour_rollups`` (whole hours) and the
facts (partial hours): the same counts as grouping the period's facts, on every write path
and both databases, after redelivery, a relabel's refresh, and the migration's backfill
(which also fills ``brand_day_peaks``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from alembic import command
from sqlalchemy import Engine, delete, select, update

from services.core.clock import FrozenClock
from services.core.models import Mention, Sentiment
from services.core.reports.languages import language_counts, language_mix
from services.core.storage.db import _alembic_config, make_engine, migrate
from services.core.storage.report_rows import refresh_language_hour
from services.core.storage.tables import (
    brand_day_peaks,
    brand_language_hour_rollups,
    brand_mention_facts,
)
from services.core.storage.writer import MentionWriter, ScoredRecord
from services.scorer.process import scored_document
from tests.fixtures import report_data
from tests.fixtures.mentions import mention_doc

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HOUR = 3600
LANGUAGES = ("en", "en", "en", "de", "es", None, "fr", "en", "ja")
LABELS = ("positive", "neutral", "negative", "unscored", "positive")


def record(i: int) -> ScoredRecord:
    """Mention ``i``: spread over ~30 hours at uneven minutes, in one of several languages
    (or none), some unscored, a third of them naming two brands."""
    raw = orjson.dumps(
        mention_doc(
            id=f"l{i}",
            created_at=(T0 + timedelta(minutes=17 * i % 1800, seconds=i % 59)).isoformat(),
            author={"id": f"a{i % 13}", "handle": f"h{i % 13}", "followers": 7 * i},
        )
    )
    label = LABELS[i % len(LABELS)]
    s = Sentiment(label=label, score=0.0, confidence=0.5, method="lexicon", lexicon_compound=0.0)
    brands = ("Acme",) if i % 3 else ("Acme", "Globex")
    return ScoredRecord(
        Mention.model_validate_json(raw),
        brands,
        s,
        False,
        T0,
        scored_document(raw, brands, s, False, T0),
        language=LANGUAGES[i % len(LANGUAGES)],
    )


def counts_from_facts(
    engine: Engine, brand: str, start: int, end: int
) -> list[tuple[str | None, int, int]]:
    """What ``language_counts`` must say, by grouping every fact of the period in Python."""
    f = brand_mention_facts.c
    out: dict[str | None, list[int]] = {}
    with engine.connect() as conn:
        for created, label, language in conn.execute(
            select(f.created_at, f.label, f.language).where(f.brand == brand)
        ):
            if start <= int(created.timestamp()) < end:
                c = out.setdefault(language, [0, 0])
                c[0] += 1
                c[1] += label == "unscored"
    return sorted(((k, n, u) for k, (n, u) in out.items()), key=lambda r: (-r[1], r[0] or ""))


def test_language_counts_equal_the_facts_grouped_over_any_period(
    store: tuple[Engine, MentionWriter],
) -> None:
    engine, writer = store
    batch = [record(i) for i in range(200)]
    assert writer.write(batch[:120]).inserted == 120
    assert writer.write(batch[80:]).inserted == 80  # redelivered ones add nothing
    report_data.assert_language_hours_agree(engine)
    start = int(T0.timestamp())
    periods = [
        (start, start + 30 * HOUR),  # whole hours only
        (start + 7 * 60, start + 29 * HOUR + 11 * 60),  # partial hours at both ends
        (start + 5 * HOUR + 60, start + 5 * HOUR + 50 * 60),  # within one hour
        (start + 2 * HOUR + 59 * 60, start + 4 * HOUR + 60),  # a minute either side
        (start + 3 * HOUR, start + 3 * HOUR + 1),  # one second
        (start - 10 * HOUR, start + HOUR),  # before the first mention, into it
        (start + 40 * HOUR, start + 50 * HOUR),  # nothing
    ]
    with engine.connect() as conn:
        for brand in ("Acme", "Globex", "Initech"):
            for s, e in periods:
                want = counts_from_facts(engine, brand, s, e)
                assert language_counts(conn, brand, s, e) == want, (brand, s - start, e - start)
        mix = language_mix(conn, "Acme", start, start + 30 * HOUR, top=2)
    all_acme = counts_from_facts(engine, "Acme", start, start + 30 * HOUR)
    assert [x.language for x in mix.languages] == [r[0] for r in all_acme[:2]]
    assert mix.other_languages == sum(r[1] for r in all_acme[2:])
    assert mix.unscored == sum(r[2] for r in all_acme) > 0
    assert {r[0] for r in all_acme} >= {"en", "de", "es", None}


def test_a_refreshed_hour_is_recomputed_from_its_facts(store: tuple[Engine, MentionWriter]) -> None:
    """A relabel takes a fact out, puts one back, or changes its label (to or from
    unscored): the hour's rows are recomputed, a language with no fact left has none."""
    engine, writer = store
    writer.write([record(i) for i in range(60)])
    f = brand_mention_facts.c
    with engine.begin() as conn:
        (pk, created, lang), (pk2, created2, _) = conn.execute(
            select(f.mention_pk, f.created_at, f.language)
            .where(f.brand == "Acme", f.language == "de")
            .order_by(f.mention_pk)
            .limit(2)
        ).all()
        conn.execute(delete(brand_mention_facts).where(f.brand == "Acme", f.mention_pk == pk))
        conn.execute(
            update(brand_mention_facts)
            .where(f.brand == "Acme", f.mention_pk == pk2)
            .values(label="unscored")
        )
        refresh_language_hour(conn, "Acme", created)
        refresh_language_hour(conn, "Acme", created2)
    assert lang == "de"
    report_data.assert_language_hours_agree(engine)
    g = brand_language_hour_rollups.c
    with engine.begin() as conn:  # every fact of an hour gone: no row left for it
        hour = int(created.timestamp()) // HOUR * HOUR
        conn.execute(
            delete(brand_mention_facts).where(
                f.brand == "Acme",
                f.created_at >= datetime.fromtimestamp(hour, UTC),
                f.created_at < datetime.fromtimestamp(hour + HOUR, UTC),
            )
        )
        refresh_language_hour(conn, "Acme", created)
        left = conn.execute(select(g.language).where(g.brand == "Acme", g.hour == hour)).all()
    assert left == []
    report_data.assert_language_hours_agree(engine)


def test_the_migration_counts_and_peaks_the_facts_stored_before_it(tmp_path: Path) -> None:
    """Facts written under revision 0010 (no language rollups or day peaks yet) are
    counted and peaked by 0011."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = _alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010")
    writer = MentionWriter(engine, FrozenClock(T0))
    # The writer of today also writes 0011's and 0012's tables: stand-ins, dropped after
    # the write (0012's backfill is tested in test_role_day_rollups.py).
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE brand_role_day_rollups (brand TEXT, day INT, role TEXT, "
            "mentions INT, positive INT, neutral INT, negative INT, reach INT, engagement INT, "
            "conversation INT, PRIMARY KEY (brand, day, role))"
        )
        conn.exec_driver_sql(
            "CREATE TABLE brand_language_hour_rollups (brand TEXT, hour INT, language TEXT, "
            "mentions INT, unscored INT, PRIMARY KEY (brand, hour, language))"
        )
        conn.exec_driver_sql(
            "CREATE TABLE brand_day_peaks (brand TEXT, day INT, engagement INT, replies INT, "
            "PRIMARY KEY (brand, day))"
        )
    writer.write([record(i) for i in range(90)])
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE brand_language_hour_rollups")
        conn.exec_driver_sql("DROP TABLE brand_day_peaks")
        conn.exec_driver_sql("DROP TABLE brand_role_day_rollups")
    migrate(engine)
    report_data.assert_rollups_agree(engine)
    with engine.connect() as conn:
        n = conn.execute(select(brand_language_hour_rollups.c.mentions)).scalars().all()
        peaks = conn.execute(select(brand_day_peaks)).all()
    assert sum(n) == 90 + 30  # every mention once, the 30 naming Globex twice
    assert {p.brand for p in peaks} == {"Acme", "Globex"}
    engine.dispose()
