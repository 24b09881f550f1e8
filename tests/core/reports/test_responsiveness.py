"""The report and owned accounts, on both databases: a brand's own mentions are absent
from its share of voice, net sentiment, top voices, top mentions and "unanswered" list;
its accounts' replies answer what they reply to, and responsiveness (share of negative
mentions answered, median time to the first answer) is checked against values computed
here from the mentions written."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from services.core.clock import FrozenClock
from services.core.reports.executive import ReportRequest, build_executive_report
from services.core.reports.responsiveness import first_answers, has_owned_mentions
from services.core.storage.brands import BrandStore
from services.core.storage.tables import brand_mention_facts, mention_owners, mentions
from services.core.storage.writer import MentionWriter
from tests.fixtures.owned_accounts import ACME_COUNTED, BATCH, END, START, T0, owned_store, record


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = owned_store(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _owned(engine: Engine) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(mentions.c.mention_id, mention_owners.c.brand).join(
                mention_owners, mention_owners.c.mention_pk == mentions.c.pk
            )
        )
        return {(m, b) for m, b in rows}


def _facts(engine: Engine, brand: str) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                select(mentions.c.mention_id)
                .join(brand_mention_facts, brand_mention_facts.c.mention_pk == mentions.c.pk)
                .where(brand_mention_facts.c.brand == brand)
            ).scalars()
        )


def report(engine: Engine, owned: tuple[str, ...] = ("AcmeSupport", "x:AcmeCare")) -> Any:
    req = ReportRequest(
        brand="Acme",
        competitors=("Globex",),
        start=START,
        end=END,
        compare_previous=False,
        min_reach=1_000,
        owned_handles=owned,
    )
    with engine.connect() as conn:
        return build_executive_report(conn, req, now=T0 + timedelta(days=1))


def test_the_report_leaves_owned_mentions_out_and_measures_responsiveness(
    engine: Engine,
) -> None:
    MentionWriter(engine, FrozenClock(T0)).write(BATCH)
    r = report(engine)

    sov = {b.brand: b for b in r.share_of_voice.brands}
    assert (sov["Acme"].mentions, sov["Globex"].mentions) == (4, 2)
    assert sov["Acme"].share_of_mentions == pytest.approx(4 / 6)
    assert r.net_sentiment.value == pytest.approx(-0.5)
    voices = {v.handle.lower() for v in r.top_voices}
    assert voices == {"bob", "carol", "dan", "acmecare"}  # acmecare: the Reddit one
    assert all(v.followers == 5_000 for v in r.top_voices)
    # c1 and c3 were answered by Acme's accounts; c2's only "reply" is on another platform;
    # the apology s1 (negative, 90,000 followers) is Acme's own, not a negative mention.
    assert {m.id for m in r.top_negative} == {"c1", "c2", "c3"}
    assert [m.id for m in r.conversation.unanswered_negative] == ["c2"]

    resp = r.responsiveness
    assert resp is not None
    negatives = [
        x for x in BATCH if x.mention.id in ACME_COUNTED and x.sentiment.label == "negative"
    ]
    answers = {"c1": BATCH[1], "c3": BATCH[4]}  # the owned replies, by what they answer
    delays = [
        (answers[m.mention.id].mention.created_at - m.mention.created_at).total_seconds()
        for m in negatives
        if m.mention.id in answers
    ]
    assert resp.negative_mentions == len(negatives) == 3
    assert resp.answered == len(delays) == 2
    assert resp.share_answered == pytest.approx(2 / 3)
    assert resp.median_seconds_to_first_answer == pytest.approx(statistics.median(delays))
    assert resp.median_seconds_to_first_answer == pytest.approx(31 * 60)  # 12 and 50 min
    assert resp.denominators["share_answered"].total == 3
    assert resp.denominators["median_seconds_to_first_answer"].total == 2
    assert resp.owned_mentions == 3
    assert resp.owned_handles == ["AcmeSupport", "x:AcmeCare"]
    assert resp.note is None


def test_only_the_first_owned_answer_counts_and_unowned_replies_answer_nothing(
    engine: Engine,
) -> None:
    later = record(
        "s4",
        "@bob following up: acme fixed it",
        ("Acme",),
        "positive",
        handle="acmesupport",
        minutes=200,
        reply_to="c1",
    )
    MentionWriter(engine, FrozenClock(T0)).write([*BATCH, later])
    resp = report(engine).responsiveness
    assert resp is not None
    assert resp.answered == 2
    assert resp.median_seconds_to_first_answer == pytest.approx(31 * 60)


def test_a_brand_without_owned_accounts_has_no_responsiveness_share(engine: Engine) -> None:
    BrandStore(engine, FrozenClock(T0)).update("Acme", "acme", ["Globex"], [])
    MentionWriter(engine, FrozenClock(T0)).write(BATCH)
    # Nothing of Acme is set aside now: every mention naming it counts.
    assert _owned(engine) == set()
    assert _facts(engine, "Acme") == {r.mention.id for r in BATCH if "Acme" in r.brands}
    resp = report(engine, owned=()).responsiveness
    assert resp is not None
    assert (resp.answered, resp.share_answered, resp.median_seconds_to_first_answer) == (
        0,
        None,
        None,
    )
    assert resp.note is not None
    assert "lists no owned accounts" in resp.note


def test_an_answer_written_after_the_period_still_answers_and_only_owners_are_probed(
    engine: Engine,
) -> None:
    # The only owned mention of all is a reply written two days after the period.
    answer = record(
        "s9",
        "@carol found it, acme is sorry",
        ("Acme",),
        "neutral",
        handle="acmesupport",
        minutes=48 * 60,
        reply_to="c2",
    )
    counted = [r for r in BATCH if r.mention.id in ACME_COUNTED | {"g1"}]
    with engine.connect() as conn:
        assert not has_owned_mentions(conn, "Acme")
    MentionWriter(engine, FrozenClock(T0)).write([*counted, answer])
    with engine.connect() as conn:
        assert has_owned_mentions(conn, "Acme")
        assert not has_owned_mentions(conn, "Globex")
        assert first_answers(conn, "Globex", START, END) == []
        found = first_answers(conn, "Acme", START, END)
    delay = answer.mention.created_at - BATCH[2].mention.created_at
    assert [(a - c) for c, a in found] == [delay]
    resp = report(engine).responsiveness
    assert resp is not None
    assert (resp.answered, resp.owned_mentions) == (1, 0)
    assert resp.median_seconds_to_first_answer == pytest.approx(delay.total_seconds())
