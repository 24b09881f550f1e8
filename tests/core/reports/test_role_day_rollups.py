"""The report's role totals from ``brand_role_day_rollups`` (whole UTC days) and the hour
rollups (partial days): the same totals as summing the period's hours, on every write path
and both databases, after redelivery, and after migration 0012's backfill — hours before
1970 included, which SQL's truncating ``%`` would put in the wrong day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from alembic import command
from sqlalchemy import Engine, select

from services.core.clock import FrozenClock
from services.core.models import Mention, Sentiment
from services.core.reports.queries import role_totals
from services.core.storage.db import _alembic_config, make_engine, migrate
from services.core.storage.report_rows import COUNTERS, RoleCounts, role_day_rows
from services.core.storage.tables import brand_role_day_rollups, brand_role_hour_rollups
from services.core.storage.writer import MentionWriter, ScoredRecord
from services.scorer.process import scored_document
from tests.fixtures import report_data
from tests.fixtures.mentions import mention_doc

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HOUR = 3600
DAY = 86_400
LABELS = ("positive", "neutral", "negative", "unscored", "positive", "negative")
# Descriptions from which author_role reads a role: a mix of roles in every day.
ROLES = ("", "CTO at a bank", "Marketing manager at Acme", "", "Head of IT")


def record(i: int, at: datetime = T0) -> ScoredRecord:
    """Mention ``i``: spread over ~4 days after ``at`` at uneven minutes, of a few roles,
    some naming two brands, some replies."""
    raw = orjson.dumps(
        mention_doc(
            id=f"r{i}",
            created_at=(at + timedelta(minutes=53 * i % 5_700, seconds=i % 59)).isoformat(),
            author={
                "id": f"a{i % 11}",
                "handle": f"h{i % 11}",
                "followers": 13 * i,
                "description": ROLES[i % len(ROLES)],
            },
            metrics={"likes": i % 5, "reposts": i % 3, "replies": i % 4},
        )
    )
    label = LABELS[i % len(LABELS)]
    s = Sentiment(label=label, score=0.0, confidence=0.5, method="lexicon", lexicon_compound=0.0)
    brands = ("Acme",) if i % 3 else ("Acme", "Globex")
    document = scored_document(raw, brands, s, False, at)
    return ScoredRecord(Mention.model_validate_json(raw), brands, s, False, at, document)


def totals_from_hours(
    engine: Engine, names: list[str], start: int, end: int
) -> dict[tuple[str, str], RoleCounts]:
    """What ``role_totals`` must say: every hour row of the period summed in Python."""
    out: dict[tuple[str, str], RoleCounts] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(brand_role_hour_rollups)):
            if row.brand in names and start <= int(row.hour) < end:
                c = out.setdefault((row.brand, row.role), RoleCounts())
                c.add(RoleCounts(*(int(getattr(row, k)) for k in COUNTERS)))
    return out


def test_role_totals_equal_the_hours_summed_over_any_period(
    store: tuple[Engine, MentionWriter],
) -> None:
    engine, writer = store
    batch = [record(i) for i in range(240)]
    assert writer.write(batch[:150]).inserted == 150
    assert writer.write(batch[100:]).inserted == 90  # redelivered ones add nothing
    report_data.assert_role_days_agree(engine)
    day = int(T0.timestamp()) - int(T0.timestamp()) % DAY
    periods = [
        (day, day + 5 * DAY),  # whole days only
        (day + 10 * HOUR, day + 3 * DAY + 5 * HOUR),  # partial days at both ends
        (day + DAY, day + 3 * DAY + 7 * HOUR),  # a partial last day only
        (day + 13 * HOUR, day + 2 * DAY),  # a partial first day only
        (day + DAY + 2 * HOUR, day + DAY + 9 * HOUR),  # within one day
        (day + 23 * HOUR, day + DAY + HOUR),  # an hour either side of midnight
        (day - 3 * DAY, day + HOUR),  # before the first mention, into it
        (day + 10 * DAY, day + 12 * DAY),  # nothing
    ]
    names = ["Acme", "Globex", "Initech"]
    with engine.connect() as conn:
        for start, end in periods:
            got = role_totals(conn, names, start, end)
            assert got == totals_from_hours(engine, names, start, end), (start - day, end - day)
        whole = role_totals(conn, names, day, day + 5 * DAY)
        assert role_totals(conn, [], day, day + DAY) == {}
    # The test's own premise: several roles, both brands, every counter non-zero somewhere.
    assert {b for b, _ in whole} == {"Acme", "Globex"} and len({r for _, r in whole}) >= 3
    assert all(any(getattr(c, k) for c in whole.values()) for k in COUNTERS)
    assert sum(c.mentions for c in whole.values()) == 240 + 80  # the 80 naming Globex twice


def test_role_day_rows_sum_hours_into_their_utc_days_before_1970_too() -> None:
    hours = {
        ("Acme", -2 * HOUR, "other"): [1, 1, 0, 0, 10, 2, 0],
        ("Acme", -HOUR, "other"): [2, 0, 1, 1, 20, 3, 1],
        ("Acme", 0, "other"): [4, 4, 0, 0, 40, 5, 0],
        ("Acme", DAY - HOUR, "other"): [8, 0, 8, 0, 80, 7, 2],
        ("Acme", -HOUR, "journalist"): [16, 0, 0, 16, 160, 11, 3],
    }
    assert role_day_rows(hours) == [
        ("Acme", -DAY, "journalist", 16, 0, 0, 16, 160, 11, 3),
        ("Acme", -DAY, "other", 3, 1, 1, 1, 30, 5, 1),
        ("Acme", 0, "other", 12, 4, 8, 0, 120, 12, 2),
    ]
    assert role_day_rows({}) == []


def test_the_migration_sums_the_hours_stored_before_it_into_days(tmp_path: Path) -> None:
    """Hours written under revision 0011 (no day rollups yet), some of them before 1970, are
    summed into their UTC days by 0012, in SQL."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = _alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0011")
        # The writer of today also writes 0012's table: a stand-in, dropped after the write.
        conn.exec_driver_sql(
            "CREATE TABLE brand_role_day_rollups (brand TEXT, day INT, role TEXT, "
            "mentions INT, positive INT, neutral INT, negative INT, reach INT, engagement INT, "
            "conversation INT, PRIMARY KEY (brand, day, role))"
        )
    writer = MentionWriter(engine, FrozenClock(T0))
    before_1970 = datetime(1969, 12, 28, 0, 0, tzinfo=UTC)  # mentions 60-89: the 30th and 31st
    writer.write([record(i) for i in range(60)] + [record(i, before_1970) for i in range(60, 90)])
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE brand_role_day_rollups")
    migrate(engine)
    report_data.assert_rollups_agree(engine)
    with engine.connect() as conn:
        days = conn.execute(select(brand_role_day_rollups.c.day).distinct()).scalars().all()
        hours = conn.execute(select(brand_role_hour_rollups.c.hour)).scalars().all()
    assert min(hours) < 0 and any(h % DAY for h in hours if h < 0)  # the premise
    assert min(days) == -2 * DAY  # 1969-12-30, not rounded up to the 31st
    assert -DAY in days
    engine.dispose()
