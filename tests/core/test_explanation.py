"""An alert in one sentence, on crafted alerts: the rarity computed independently from the
p-value and the window, the story, the drivers and the rising terms."""

from __future__ import annotations

import math
from typing import Any

import pytest

from services.core import explanation as ex


def doc(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "brand": "Acme",
        "kind": "negative_spike",
        "rule": {"window_minutes": 15},
        "observed": 142.0,
        "expected": 12.3,
        "count": 142,
        "total": 400,
        "p_value": 1e-7 / 672,  # one such window in ten million weeks of 672 windows
        "top_terms": [{"term": t} for t in ("outage", "refund", "login", "status")],
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("per_week", "words"),
    [
        (1e-7, "about 1 in 10 million in a normal week"),
        (2.6e-4, "about 1 in 4,000 in a normal week"),
        (0.02, "about 1 in 50 in a normal week"),
        (1.0, "about once in a normal week"),
        (6.7, "about 7 times in a normal week"),
        (1e-14, "less than 1 in a trillion in a normal week"),
        (0.0, "less than 1 in a trillion in a normal week"),
    ],
)
def test_rarity_is_the_chance_of_such_a_window_in_a_normal_week(
    per_week: float, words: str
) -> None:
    window_s = 900
    p = per_week / (7 * 86_400 / window_s)
    assert ex.per_week(p, window_s) == pytest.approx(per_week)
    assert ex.rarity(p, window_s) == words


def test_rarity_depends_on_the_window_length() -> None:
    # The same p-value is 4× as common a week with windows 4× as short.
    p = 1e-6
    hourly, quarterly = ex.per_week(p, 3_600), ex.per_week(p, 900)
    assert quarterly == pytest.approx(4 * hourly)
    assert (
        ex.rarity(p, 3_600)
        == f"about 1 in {ex.round_figure(1 / -math.expm1(-hourly))} in a normal week"
    )


@pytest.mark.parametrize(
    ("x", "words"),
    [
        (3, "3"),
        (35, "40"),
        (2_500, "3,000"),
        (96_000, "100,000"),
        (1.2e7, "10 million"),
        (4.4e9, "4 billion"),
        (9.6, "10"),
    ],
)
def test_round_figure(x: float, words: str) -> None:
    assert ex.round_figure(x) == words


@pytest.mark.parametrize(
    ("reach", "words"),
    [
        (999, "999"),
        (1_234, "1.2 k"),
        (35_400, "35 k"),
        (1_200_000, "1.2 M"),
        (1_000_000, "1 M"),
        (3_000_000_000, "3 B"),
    ],
)
def test_reach_words(reach: int, words: str) -> None:
    assert ex.reach_words(reach) == words


def test_the_sentence_names_the_rise_the_story_and_what_rose() -> None:
    story = {"size": 96, "first_author": "newsdesk", "combined_reach": 1_234_567}
    s = ex.summarise(doc(story=story))
    assert s == (
        "Negative mentions of Acme rose to 142 in 15 minutes against about 12 expected "
        "(about 1 in 10 million in a normal week); 96 of them repeat one story first posted "
        "by @newsdesk, combined reach 1.2 M; rising: outage, refund, login."
    )


def test_without_story_or_terms_the_sentence_is_just_the_rise() -> None:
    s = ex.summarise(doc(kind="volume_spike", story=None, top_terms=[], expected=0.4))
    assert s == (
        "Mentions of Acme rose to 142 in 15 minutes against about 0.4 expected "
        "(about 1 in 10 million in a normal week)."
    )


def test_share_alerts_speak_in_percent_and_one_loud_author_is_named() -> None:
    drivers = {
        "authors": 3,
        "top_authors": [{"handle": "spammer", "mentions": 60, "followers": 10}],
        "top_author_share": 0.6,
    }
    s = ex.summarise(
        doc(
            kind="negative_share",
            observed=0.45,
            expected=0.12,
            count=90,
            total=200,
            rule={"window_minutes": 60},
            drivers=drivers,
            top_terms=[],
        )
    )
    assert s.startswith(
        "The negative share of Acme's mentions rose to 45% (90 of 200) in an hour against "
        "about 12% expected (about 1 in "
    )
    assert s.endswith("; 60% of them from @spammer.")
