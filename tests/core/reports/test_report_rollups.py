"""Per-role rollups and author columns: written with the mentions, idempotent on both
write paths and both databases, and backfilled by the migration for older mentions."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic import command
from sqlalchemy import Engine, delete, select, update

from services.core.authors import influence_ceiling
from services.core.models import Mention, Sentiment
from services.core.reports import executive, queries
from services.core.storage.db import _alembic_config, make_engine, migrate
from services.core.storage.report_rows import COUNTERS, refresh_author_day
from services.core.storage.tables import (
    brand_mention_facts,
    brand_minute_rollups,
    brand_role_hour_rollups,
    mention_brands,
    mentions,
)
from services.core.storage.writer import MentionWriter, ScoredRecord, mention_row
from services.scorer.process import scored_document
from tests.fixtures import report_data
from tests.fixtures.mentions import mention_doc

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BIOS = (
    ("CEO at Initech", "decision_maker"),
    ("Marketing manager", "marketing_pr"),
    ("Plumber", "other"),
    ("Fondatrice", "decision_maker"),
    ("", "other"),
)
LABELS = ("positive", "neutral", "negative", "negative", "positive", "neutral", "neutral")


def crafted(i: int) -> tuple[ScoredRecord, str, bool]:
    """A record, the role its bio states, and whether it is in a conversation."""
    bio, role = BIOS[i % len(BIOS)]
    reply_to = f"r{i - 1}" if i % 4 == 0 and i else None
    thread = f"r{i - 2}" if i % 6 == 1 else f"r{i}"
    replies = 2 if i % 9 == 3 else 0
    raw = orjson.dumps(
        mention_doc(
            id=f"r{i}",
            created_at=(T0 + timedelta(minutes=i % 7, seconds=i % 50)).isoformat(),
            author={
                "id": f"a{i % 11}",
                "handle": f"h{i % 11}",
                "followers": 10 * i,
                "description": bio,
            },
            in_reply_to_id=reply_to,
            conversation_id=thread,
            metrics={"likes": i % 5, "reposts": 1, "replies": replies},
        )
    )
    label = LABELS[i % len(LABELS)]
    s = Sentiment(label=label, score=0.0, confidence=0.5, method="lexicon", lexicon_compound=0.0)
    brands = ("Acme",) if i % 3 else ("Acme", "Globex")
    rec = ScoredRecord(
        Mention.model_validate_json(raw),
        brands,
        s,
        False,
        T0,
        scored_document(raw, brands, s, False, T0),
    )
    talk = reply_to is not None or thread != f"r{i}" or replies > 0
    return rec, role, talk


def expected(n: int) -> dict[tuple[str, int, str], list[int]]:
    out: dict[tuple[str, int, str], list[int]] = defaultdict(lambda: [0] * 7)
    for i in range(n):
        rec, role, talk = crafted(i)
        m = rec.mention
        hour = int(m.created_at.timestamp()) // 3600 * 3600
        for b in rec.brands:
            row = out[(b, hour, role)]
            row[0] += 1
            row[1 + ("positive", "neutral", "negative").index(rec.sentiment.label)] += 1
            row[4] += m.author.followers
            row[5] += m.engagement
            row[6] += talk
    return dict(out)


def role_rollups(engine: Engine) -> dict[tuple[str, int, str], list[int]]:
    r = brand_role_hour_rollups.c
    with engine.connect() as conn:
        rows = conn.execute(select(r.brand, r.hour, r.role, *(r[c] for c in COUNTERS)))
        return {(b, int(h), ro): [int(x) for x in rest] for b, h, ro, *rest in rows}


def facts(engine: Engine) -> dict[tuple[str, str], tuple[Any, ...]]:
    f = brand_mention_facts.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                f.brand,
                mentions.c.mention_id,
                f.created_at,
                f.label,
                f.author_id,
                f.author_role,
                f.followers,
                f.engagement,
                f.replies,
            ).join(mentions, mentions.c.pk == f.mention_pk)
        )
        return {(b, mid): tuple(rest) for b, mid, *rest in rows}


def expected_facts(n: int) -> dict[tuple[str, str], tuple[Any, ...]]:
    out = {}
    for i in range(n):
        rec, role, _ = crafted(i)
        m = rec.mention
        replies = m.metrics.replies if m.metrics else 0
        for b in rec.brands:
            out[(b, m.id)] = (
                m.created_at,
                rec.sentiment.label,
                m.author.id,
                role,
                m.author.followers,
                m.engagement,
                replies,
            )
    return out


def test_role_rollups_equal_direct_sums_and_redelivery_changes_nothing(
    store: tuple[Engine, MentionWriter],
) -> None:
    engine, writer = store
    batch = [crafted(i)[0] for i in range(120)]
    assert writer.write(batch[:70]).inserted == 70
    assert writer.write(batch[40:]).inserted == 50  # overlaps: redelivered ones are skipped
    assert writer.write(batch).inserted == 0
    want = expected(120)
    assert role_rollups(engine) == want
    assert facts(engine) == expected_facts(120)
    # Summed over roles, the same as the brand rollups (summed into hours).
    by_brand: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0] * 6)
    for (b, hour, _), v in want.items():
        by_brand[(b, hour)] = [x + y for x, y in zip(by_brand[(b, hour)], v[:6], strict=True)]
    r = brand_minute_rollups.c
    minutes: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0] * 6)
    with engine.connect() as conn:
        for b, minute, *rest in conn.execute(
            select(
                r.brand,
                r.minute,
                r.mentions,
                r.positive,
                r.neutral,
                r.negative,
                r.reach,
                r.engagement,
            )
        ):
            key = (b, int(minute) // 3600 * 3600)
            minutes[key] = [x + int(y) for x, y in zip(minutes[key], rest, strict=True)]
    assert dict(minutes) == dict(by_brand)


def test_the_migration_backfills_roles_and_rollups_of_older_mentions(tmp_path: Path) -> None:
    old = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = _alembic_config(str(old.url))
    with old.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    records = [crafted(i)[0] for i in range(90)]
    with old.begin() as conn:
        for pk, rec in enumerate(records, start=1):
            row = mention_row(rec, T0)
            del row["language"]  # a column of a later revision (0007)
            conn.execute(mentions.insert().values(pk=pk, **row))
            for b in rec.brands:
                conn.execute(
                    mention_brands.insert().values(
                        mention_pk=pk,
                        brand=b,
                        created_at=rec.mention.created_at,
                        label=rec.sentiment.label,
                    )
                )
    migrate(old)  # to every head, this feature's included
    assert role_rollups(old) == expected(90)
    assert facts(old) == expected_facts(90)
    report_data.assert_rollups_agree(old)
    old.dispose()


def test_top_voices_from_day_rollups_equal_the_facts_grouped_over_any_period(
    store: tuple[Engine, MentionWriter],
) -> None:
    """Whole days from ``brand_author_day_rollups``, partial days from the facts: the
    same totals as grouping the period's facts, for aligned and unaligned periods."""
    engine, writer = store
    records = [report_data.record(f, report_data.END) for f in report_data.fixture_set()]
    assert writer.write(records[: len(records) // 2]).inserted == len(records) // 2
    assert writer.write(records).inserted == len(records) - len(records) // 2
    report_data.assert_rollups_agree(engine)
    day, hour = 86_400, 3_600
    start, end = int(report_data.PREV.timestamp()), int(report_data.END.timestamp())
    periods = [
        (start, end),  # whole days only
        (start + 5 * hour, end - 7 * hour),  # partial days at both ends
        (start + 30 * hour, start + 41 * hour),  # within one day
        (start + 23 * hour, start + 2 * day + hour),  # an hour either side of whole days
        (end, end + day),  # nothing
    ]
    with engine.connect() as conn:
        for brand in ("Acme", "Globex"):
            for s, e in periods:
                got = queries.voices(conn, brand, s, e)
                assert len(got) == len(set(got))
                assert set(got) == report_data.voices_from_facts(engine, brand, s, e)
                assert [v.followers for v in got] == sorted(
                    (v.followers for v in got), reverse=True
                )


def test_refreshing_an_author_day_after_its_facts_change_recomputes_it(
    store: tuple[Engine, MentionWriter],
) -> None:
    """What a spot-check relabel does: facts relabelled or taken out, then the author's
    day recomputed — maxima included, which no subtraction could take back."""
    engine, writer = store
    writer.write([crafted(i)[0] for i in range(60)])
    f = brand_mention_facts.c
    with engine.begin() as conn:
        top = conn.execute(
            select(f.brand, f.author_id, f.created_at, f.mention_pk)
            .where(f.brand == "Acme")
            .order_by(f.followers.desc())
            .limit(2)
        ).all()
        (b1, a1, t1, pk1), (b2, a2, t2, pk2) = top
        conn.execute(delete(brand_mention_facts).where(f.brand == b1, f.mention_pk == pk1))
        conn.execute(
            update(brand_mention_facts)
            .where(f.brand == b2, f.mention_pk == pk2)
            .values(label="positive")
        )
        refresh_author_day(conn, b1, a1, t1)
        refresh_author_day(conn, b2, a2, t2)
    report_data.assert_author_days_agree(engine)
    with engine.begin() as conn:  # an author's last fact of the day gone: no row left
        conn.execute(delete(brand_mention_facts).where(f.author_id == a1, f.brand == b1))
        refresh_author_day(conn, b1, a1, t1)
    report_data.assert_author_days_agree(engine)


VOICE_WALKS = [queries.VOICE_WALKS, (1, 2), (3,), ()]


@pytest.mark.parametrize("walks", VOICE_WALKS, ids=str)
def test_top_voices_from_the_most_followed_authors_equal_ranking_every_author(
    store: tuple[Engine, MentionWriter], monkeypatch: pytest.MonkeyPatch, walks: tuple[int, ...]
) -> None:
    """The shortcut (rank the authors of the most followed rows, when the bound on
    everyone else proves it exact) gives the rankings of grouping every author, and it
    is really taken for some of these sizes; with walks of the author days as long as
    the store, a few rows long, and none (the period's rows sorted)."""
    monkeypatch.setattr(queries, "VOICE_WALKS", walks)
    engine, writer = store
    writer.write([report_data.record(f, report_data.END) for f in report_data.fixture_set()])
    start, end = int(report_data.PREV.timestamp()), int(report_data.END.timestamp())
    taken = later = 0
    with engine.connect() as conn:
        for rows_scanned in ((1,), (5,), (20,), (60,), (150,), (400,), (1, 20, 60, 150), (5, 400)):
            monkeypatch.setattr(executive, "VOICE_CANDIDATE_ROWS", rows_scanned)
            for brand in ("Acme", "Globex"):
                for s, e in ((start, end), (start + 7 * 3_600, end - 86_400 - 3_600)):
                    req = executive.ReportRequest(brand=brand, competitors=(), start=s, end=e)
                    every = executive._ranked(queries.voice_tuples(conn, brand, s, e))
                    assert executive._top_voice_rows(conn, req) == every
                    holds = [shortcut_holds(conn, brand, s, e, n) for n in rows_scanned]
                    taken += any(holds)
                    later += len(holds) > 1 and not holds[0] and any(holds)
    assert taken > 0
    assert later > 0  # a later, larger count of rows proved what the first could not


def shortcut_holds(conn: Any, brand: str, start: int, end: int, rows_scanned: int) -> bool:
    found = queries.voice_candidates(conn, brand, start, end, rows_scanned)
    if found is None:
        return False
    top, top_dm = executive._ranked(found.rows)
    ceiling = influence_ceiling(found.followers, found.engagement, found.replies)
    return (
        len(top) == executive.TOP_VOICES
        and len(top_dm) == executive.TOP_VOICES
        and ceiling + 0.1 < min(-top[-1][0], -top_dm[-1][0])
    )


@pytest.mark.parametrize("walks", VOICE_WALKS, ids=str)
def test_the_candidates_cut_and_peaks_equal_the_periods_rows(
    store: tuple[Engine, MentionWriter], monkeypatch: pytest.MonkeyPatch, walks: tuple[int, ...]
) -> None:
    """The most followed voice rows (walked, or sorted) have the followers of the
    period's rows sorted; the peaks are the most engagement and replies one fact of the
    period had, at least every author's average there."""
    monkeypatch.setattr(queries, "VOICE_WALKS", walks)
    engine, writer = store
    writer.write([report_data.record(f, report_data.END) for f in report_data.fixture_set()])
    report_data.assert_rollups_agree(engine)
    day, hour = 86_400, 3_600
    start, end = int(report_data.PREV.timestamp()), int(report_data.END.timestamp())
    periods = [
        (start, end),
        (start + 5 * hour, end - 7 * hour),
        (start + 30 * hour, start + 41 * hour),
        (start + 23 * hour, start + 2 * day + hour),
        (end, end + day),
    ]
    f = brand_mention_facts.c
    walked = 0
    with engine.connect() as conn:
        for brand in ("Acme", "Globex"):
            for s, e in periods:
                rows = queries._voice_rows(brand, s, e)
                every = sorted(
                    (int(x) for x in conn.execute(select(rows.c.followers)).scalars()),
                    reverse=True,
                )
                for n in (1, 3, 10, 50, 400):
                    got = queries._top_voice_rows(conn, brand, s, e, n)
                    if got is None:  # no walk held n rows of the period: it is sorted
                        assert len(every) < n or not walks or s > start
                        continue
                    walked += 1
                    assert [x for _, x in got] == every[:n], (brand, s - start, e - start, n)
                facts = [
                    (int(x.engagement), int(x.replies))
                    for x in conn.execute(
                        select(f.engagement, f.replies).where(
                            f.brand == brand,
                            f.created_at >= queries.ts(s),
                            f.created_at < queries.ts(e),
                        )
                    )
                ]
                peaks = queries._peaks(conn, brand, s, e)
                assert peaks == (
                    float(max((x for x, _ in facts), default=0)),
                    float(max((y for _, y in facts), default=0)),
                )
                for v in queries.voices(conn, brand, s, e):
                    assert v.engagement <= peaks[0] * v.mentions
                    assert v.replies <= peaks[1] * v.mentions
    assert walked > 0 or not walks
