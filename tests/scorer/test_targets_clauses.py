"""The clause-scoped lexicon's text for one brand of a mention that names several
(``services.scorer.targets``: ``clauses``, ``brand_clauses``, ``preferences``,
``clause_text``), and the verdicts VADER gives it."""

from __future__ import annotations

import re
import time

import pytest

from services.core.brands import BrandDefinition, BrandMatcher
from services.scorer.lexicon import VaderScorer, label_for
from services.scorer.targets import (
    CHOSEN_CUE,
    LEFT_CUE,
    Spans,
    brand_clauses,
    clause_text,
    clauses,
    preferences,
    sub_clauses,
    target_text,
)

VADER = VaderScorer()
BRANDS = ("Halcyra", "Quorvia", "Parlofy")


def spans_of(text: str, brands: tuple[str, ...] = BRANDS) -> dict[str, Spans]:
    """Each brand's case-insensitive whole-word occurrences (what the matcher gives for
    a plain-name query)."""
    out: dict[str, Spans] = {}
    for brand in brands:
        found = [(m.start(), m.end()) for m in re.finditer(rf"\b{brand}\b", text, re.I)]
        if found:
            out[brand] = found
    return out


def label(text: str, brand: str) -> str:
    return label_for(VADER.compound(clause_text(text, spans_of(text), brand)))


def pieces(text: str, cut: list[tuple[int, int]]) -> list[str]:
    return [text[s:e].strip() for s, e in cut]


def test_clauses_split_at_sentence_ends_and_contrasts() -> None:
    text = "Halcyra is fast. Quorvia is slow, but cheap; Parlofy is faster than Quorvia"
    assert pieces(text, clauses(text)) == [
        "Halcyra is fast",
        "Quorvia is slow",
        "cheap",
        "Parlofy is faster",
        "Quorvia",
    ]
    assert clauses("") == [(0, 0)]


def test_brand_clauses_carry_the_clauses_that_name_no_brand_only_when_asked() -> None:
    text = "Halcyra has the best reporting, but their pricing is brutal. Quorvia is cheap"
    spans = spans_of(text)
    halcyra = spans["Halcyra"]
    assert pieces(text, brand_clauses(text, halcyra)) == ["Halcyra has the best reporting"]
    assert pieces(text, brand_clauses(text, halcyra, named=spans)) == [
        "Halcyra has the best reporting",
        "their pricing is brutal",
    ]
    # Quorvia's clause comes after: the brandless clause before it is not Quorvia's.
    assert pieces(text, brand_clauses(text, spans["Quorvia"], named=spans)) == ["Quorvia is cheap"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # One sentence, two brands, a comma: each brand its own sub-clause.
        ("Quorvia is great, Halcyra is awful", ["Quorvia is great", "Halcyra is awful"]),
        # A list of brands is one sub-clause, wherever its predicate is.
        (
            "Halcyra, Quorvia and Parlofy are all down again",
            ["Halcyra, Quorvia and Parlofy are all down again"],
        ),
        (
            "We tried Halcyra, Quorvia, and Parlofy, all terrible",
            ["We tried Halcyra, Quorvia, and Parlofy", "all terrible"],
        ),
        # A brand standing alone before an aside: the aside and what follows are its own
        # (``brand_clauses`` carries them), not the sub-clause before it.
        (
            "Quorvia is great, Halcyra, on the other hand, is awful",
            ["Quorvia is great", "Halcyra", "on the other hand", "is awful"],
        ),
        # Brackets are no boundary: what follows an aside is about what came before it.
        (
            "Quorvia is great (Halcyra is a mess) and cheap",
            ["Quorvia is great (Halcyra is a mess) and cheap"],
        ),
        # The brandless start of the sentence goes with the first brand named.
        (
            "After three outages this month, Halcyra is dead to us, Quorvia it is",
            ["After three outages this month, Halcyra is dead to us", "Quorvia it is"],
        ),
        # A comma inside a number is no boundary.
        (
            "Halcyra charged us $1,200, Quorvia $300",
            ["Halcyra charged us $1,200", "Quorvia $300"],
        ),
        # A sentence naming one brand, or none, is kept whole.
        (
            "Honestly, Halcyra is great. Sadly, it costs a lot, Quorvia is fine.",
            ["Honestly, Halcyra is great", "Sadly, it costs a lot, Quorvia is fine"],
        ),
        (
            "Halcyra, Halcyra, Halcyra, all day long",
            ["Halcyra, Halcyra, Halcyra, all day long"],
        ),
    ],
)
def test_sub_clauses_split_a_sentence_between_the_brands_it_names(
    text: str, expected: list[str]
) -> None:
    assert pieces(text, sub_clauses(text, spans_of(text))) == expected


def test_one_sentence_two_verdicts_at_a_comma() -> None:
    """The known limit of the sentence-scoped lexicon: "Globex is great, Acme is awful"
    gave Acme the whole sentence's positive verdict."""
    text = "Quorvia is great, Halcyra is awful"
    spans = spans_of(text)
    assert clause_text(text, spans, "Quorvia") == "brand is great"
    assert clause_text(text, spans, "Halcyra") == "brand is awful"
    assert label(text, "Quorvia") == "positive"
    assert label(text, "Halcyra") == "negative"


def test_a_brands_neighbouring_sub_clauses_are_read_as_written() -> None:
    text = "Quorvia is great, Halcyra, on the other hand, is awful"
    assert clause_text(text, spans_of(text), "Halcyra") == "brand, on the other hand, is awful"
    assert clause_text(text, spans_of(text), "Quorvia") == "brand is great"
    assert label(text, "Quorvia") == "positive"


def test_brandless_sub_clauses_and_sentences_go_to_the_brand_named_before_them() -> None:
    text = "Halcyra is painfully slow, Quorvia is quick, honestly brilliant. Highly recommend."
    spans = spans_of(text)
    assert clause_text(text, spans, "Halcyra") == "brand is painfully slow"
    assert clause_text(text, spans, "Quorvia") == (
        "brand is quick, honestly brilliant. Highly recommend"
    )
    assert label(text, "Halcyra") == "negative"
    assert label(text, "Quorvia") == "positive"
    # A list shares its predicate.
    listed = "Halcyra, Quorvia and Parlofy are all terrible at SSO"
    assert {label(listed, b) for b in BRANDS} == {"negative"}


def test_the_preference_rules_survive_the_split() -> None:
    text = "Switched from Halcyra to Quorvia, support is night and day"
    spans = spans_of(text)
    # The switch's sub-clause and the brandless one after it are the brand chosen's.
    assert clause_text(text, spans, "Halcyra") == LEFT_CUE
    assert clause_text(text, spans, "Quorvia") == (
        f"Switched from brand to brand, support is night and day. {CHOSEN_CUE}"
    )
    assert label(text, "Halcyra") == "negative"
    assert label(text, "Quorvia") == "positive"
    instead = "We use Quorvia instead of Halcyra, for the reporting"
    assert clause_text(instead, spans_of(instead), "Halcyra") == LEFT_CUE
    assert label(instead, "Quorvia") == "positive"
    assert label(instead, "Halcyra") == "negative"
    left = "Ditched Halcyra for Quorvia, Halcyra kept losing tickets"
    assert clause_text(left, spans_of(left), "Halcyra") == (
        f"{LEFT_CUE}. brand kept losing tickets"
    )
    assert label(left, "Halcyra") == "negative"


@pytest.mark.parametrize(
    ("text", "chosen", "left"),
    [
        ("Switched from Halcyra to Quorvia last month", "Quorvia", "Halcyra"),
        ("We migrated 40 repos from Halcyra to Quorvia", "Quorvia", "Halcyra"),
        ("Replaced Halcyra with Quorvia for the whole org", "Quorvia", "Halcyra"),
        ("We moved the team off Halcyra and onto Quorvia", "Quorvia", "Halcyra"),
        ("Ditched Halcyra for Quorvia", "Quorvia", "Halcyra"),
        ("Goodbye Halcyra, hello Quorvia", "Quorvia", "Halcyra"),
        ("Quorvia instead of Halcyra saved us a day a week", "Quorvia", "Halcyra"),
        ("We chose Quorvia over Halcyra", "Quorvia", "Halcyra"),
        ("Quorvia's caching beats Halcyra's", "Quorvia", "Halcyra"),
        ("Quorvia is noticeably faster than Halcyra", "Quorvia", "Halcyra"),
        ("Halcyra is slower than Quorvia on cold caches", "Quorvia", "Halcyra"),
        ("Halcyra is not better than Quorvia", "Quorvia", "Halcyra"),
    ],
)
def test_preferences_stated_by_construction(text: str, chosen: str, left: str) -> None:
    spans = spans_of(text)
    assert [(c, lb) for c, lb, _ in preferences(text, spans)] == [(chosen, left)]
    (_, _, where) = preferences(text, spans)[0]
    assert where == spans[left][0][0]


@pytest.mark.parametrize(
    "text",
    [
        "We're evaluating Halcyra and Quorvia for a 20-seat team",
        "Halcyra is more expensive than Quorvia and worth every cent",  # price: no verdict
        "Does Halcyra integrate with Quorvia natively?",
        "Halcyra, Halcyra, Halcyra",
    ],
)
def test_no_preference_where_the_words_state_none(text: str) -> None:
    assert preferences(text, spans_of(text)) == []


def test_a_switch_reads_as_a_verdict_on_both_brands() -> None:
    text = "Moved from Halcyra to Quorvia in January. Ticket routing finally works."
    spans = spans_of(text)
    # The switch's clause and the reasons after it belong to the brand chosen.
    assert clause_text(text, spans, "Halcyra") == LEFT_CUE
    assert clause_text(text, spans, "Quorvia") == (
        "Moved from brand to brand in January. Ticket routing finally works. " + CHOSEN_CUE
    )
    assert label(text, "Halcyra") == "negative"
    assert label(text, "Quorvia") == "positive"


def test_what_else_a_mention_says_of_the_brand_left_behind_still_counts() -> None:
    text = "We left Halcyra for Quorvia. Halcyra's support was fantastic, to be fair."
    assert clause_text(text, spans_of(text), "Halcyra") == (
        f"{LEFT_CUE}. brand's support was fantastic, to be fair"
    )


def test_a_comparison_gives_opposite_verdicts() -> None:
    text = "Quorvia is noticeably faster than Halcyra at loading big ticket threads"
    assert label(text, "Quorvia") == "positive"
    assert label(text, "Halcyra") == "negative"


def test_plain_clauses_are_scoped_and_every_brand_masked() -> None:
    text = "Halcyra support is terrible, but Quorvia has been fantastic"
    spans = spans_of(text)
    assert clause_text(text, spans, "Halcyra") == "brand support is terrible"
    assert clause_text(text, spans, "Quorvia") == "brand has been fantastic"
    assert label(text, "Halcyra") == "negative"
    assert label(text, "Quorvia") == "positive"
    # Both in one clause: both read it, and neither name is read.
    both = "Halcyra and Quorvia both went down again, awful"
    assert clause_text(both, spans_of(both), "Halcyra") == clause_text(
        both, spans_of(both), "Quorvia"
    )
    assert "Halcyra" not in clause_text(both, spans_of(both), "Halcyra")


def test_a_brand_with_no_span_reads_the_whole_masked_text() -> None:
    text = "Halcyra is great"
    assert clause_text(text, spans_of(text), "Quorvia") == "brand is great"


def test_a_brand_named_in_a_url_takes_the_clause_holding_the_url() -> None:
    text = "https://halcyra.com/pricing is a disgrace. Quorvia gives us twice the seats"
    spans = spans_of(text)
    assert clause_text(text, spans, "Halcyra") == "brand is a disgrace"
    assert label(text, "Halcyra") == "negative"


def test_a_tracked_brand_the_mention_does_not_match_is_read_as_a_word() -> None:
    """The whole text masks every tracked brand's terms; the per-brand texts mask the
    matched brands only: a term whose brand's query is false here is an ordinary word."""
    matcher = BrandMatcher.compile(
        [
            BrandDefinition("Acme", "acme"),
            BrandDefinition("Globex", "globex"),
            BrandDefinition("Happy", "happy AND helpdesk"),
        ]
    )
    text = "Switched from Acme to Globex, happy with it so far"
    match = matcher.match(text)
    assert match.brands == ("Acme", "Globex")
    assert [text[s:e] for s, e in match.mask_spans] == ["Acme", "Globex", "happy"]
    spans = match.spans_by_brand()
    assert clause_text(text, spans, "Globex") == (
        f"Switched from brand to brand, happy with it so far. {CHOSEN_CUE}"
    )
    assert target_text(text, spans, "Acme") == "Switched from $T$ to brand, happy with it so far"


def test_hostile_text_costs_linear_time() -> None:
    """A run of 9,000 spaces took 13 s when each space started a try of the clause
    boundary; many clauses times many brand names took seconds by pairwise look-ups."""
    texts = [
        "switched from Halcyra" + " " * 9_000 + "to Quorvia",
        ". ".join(["Halcyra"] * 1_500 + ["Quorvia"] * 1_500),
        "Halcyra Quorvia than " * 500,
        # one sentence of thousands of sub-clauses and brand names, and a list
        "Halcyra is fine" + ", Quorvia is not, Halcyra is" * 1_500,
        "Halcyra" + ", Quorvia" * 3_000 + " and Parlofy are down" + " ," * 4_500,
        "Halcyra," + " " * 9_000 + ", Quorvia",
    ]
    for text in texts:
        spans = spans_of(text)
        t0 = time.perf_counter()
        clause_text(text, spans, "Halcyra")
        assert time.perf_counter() - t0 < 1.0
