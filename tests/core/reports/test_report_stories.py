"""The executive report's stories of the period: a story syndicated 300 times is one
story with its combined reach; texts in their own words are none."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from services.core import stories
from services.core.reports.executive import (
    ReportRequest,
    build_executive_report,
    distinct_text_stories,
)
from tests.fixtures.report_data import END, NOW, START, Fixture, fixture_set, report_state

HEADLINE = "Acme recalls its X2 routers after reports of overheating in customer homes"


def test_a_story_syndicated_300_times_is_one_story_with_its_combined_reach(
    tmp_path: Path,
) -> None:
    rng = random.Random(3)
    base = fixture_set()
    template = next(f for f in base if f.brands == ("Acme",) and START <= f.created_at < END)
    span = int((END - START).total_seconds())
    copies = [
        replace(
            template,
            i=10_000 + k,
            id=f"syn{k}",
            created_at=START + timedelta(seconds=rng.randrange(span)),
            author=k,
            followers=1_000 + k,
            engagement=20_000 + k,
            in_reply_to=None,
            conversation=None,
            text=rng.choice(
                [
                    f"{HEADLINE} https://t.co/{k:x}",
                    f"RT @wire{k % 7}: {HEADLINE}",
                    f"{HEADLINE.replace('recalls', 'is recalling')} via @news{k % 5}",
                    HEADLINE.upper(),
                ]
            ),
        )
        for k in range(300)
    ]
    own_words = [
        replace(copies[0], i=20_000 + k, id=f"own{k}", author=900 + k, text=t)
        for k, t in enumerate(
            [
                "My Acme X2 router got really hot last night, unplugged it just in case",
                "Acme says return the X2 for a refund, anyone know how long that takes?",
                "Glad Acme is pulling the X2 before someone's house burns down honestly",
            ]
        )
    ]
    mentions: list[Fixture] = base + copies + own_words
    state = report_state(tmp_path, mentions)
    req = ReportRequest(
        brand="Acme",
        competitors=("Globex",),
        start=int(START.timestamp()),
        end=int(END.timestamp()),
    )
    with state.engine.connect() as conn:
        report = build_executive_report(conn, req, now=NOW)
    state.engine.dispose()
    assert report.stories is not None
    assert report.stories.sample >= len(copies) + len(own_words)
    # The fixture's own short texts repeat word for word too ("acme service quick invoice
    # #outage"): those are stories of their own, never merged with this one.
    story, *others = report.stories.stories
    assert story.size == len(copies)
    assert story.combined_reach == sum(c.followers for c in copies)
    first = min(copies, key=lambda c: c.created_at)
    assert story.first_mention_id == first.id
    assert story.first_author == f"user{first.author}"
    assert story.sample_text == first.text
    own = {o.text for o in own_words}
    assert all(o.size < story.size and o.sample_text not in own for o in others)
    assert all(HEADLINE.casefold() not in o.sample_text.casefold() for o in others)


def test_clustering_each_distinct_text_once_finds_the_very_stories_of_every_text() -> None:
    rng = random.Random(11)
    words = [f"word{k}" for k in range(40)]
    headlines = [" ".join(rng.sample(words, 9)) for _ in range(30)]
    shorts = ["acme is down", "acme!!", "ok acme"]  # too short to have shingles
    t0 = START

    def variant(h: str) -> str:
        return rng.choice(
            [h, h, f"RT @wire: {h}", f"{h} https://t.co/{rng.randrange(99)}", h.upper()]
        )

    for trial in range(40):
        texts = [
            rng.choice([*[variant(rng.choice(headlines)) for _ in range(3)], *shorts])
            for _ in range(rng.randrange(0, 160))
        ]
        posts = [
            stories.Post(
                source=rng.choice(["x", "reddit"]),
                id=f"m{trial}-{k}",
                text=t,
                author=f"a{rng.randrange(20)}",
                followers=rng.choice([10, 100, 1_000]),  # ties in reach, ties in time
                created_at=t0 + timedelta(minutes=rng.randrange(5)),
            )
            for k, t in enumerate(texts)
        ]
        assert len(set(texts)) < len(texts) or len(texts) < 2
        for min_size in (1, 2, 3):
            assert distinct_text_stories(posts, min_size) == stories.stories(posts, min_size)
