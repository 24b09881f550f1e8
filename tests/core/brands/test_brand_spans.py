"""``MatchResult.brand_spans``: where the text names each matched brand (issue 16)."""

from __future__ import annotations

import pickle

from services.core.brands import BrandDefinition, BrandMatcher, MatchResult

MATCHER = BrandMatcher.compile(
    [
        BrandDefinition("Halcyra", "halcyra OR @halcyrahq"),
        BrandDefinition("Quorvia", '"quorvia cloud" OR quorvia'),
        BrandDefinition("Fabrikam", "fabrikam AND NOT jobs"),
    ]
)


def spans_of(text: str, match: MatchResult) -> dict[str, list[str]]:
    return {brand: [text[s:e] for s, e in spans] for brand, spans in match.brand_spans}


def test_each_matched_brand_has_the_spans_of_its_own_terms_in_order() -> None:
    text = "Left @halcyrahq for Quorvia Cloud; halcyra never answered, quorvia did"
    match = MATCHER.match(text)
    assert match.brands == ("Halcyra", "Quorvia")
    assert spans_of(text, match) == {
        "Halcyra": ["@halcyrahq", "halcyra"],
        # The phrase and the word inside it: one merged span.
        "Quorvia": ["Quorvia Cloud", "quorvia"],
    }
    assert [b for b, _ in match.brand_spans] == list(match.brands)
    assert match.spans_by_brand() == dict(match.brand_spans)


def test_a_brand_that_did_not_match_has_no_spans_but_is_still_masked() -> None:
    text = "fabrikam jobs at halcyra"
    match = MATCHER.match(text)
    assert match.brands == ("Halcyra",)
    assert spans_of(text, match) == {"Halcyra": ["halcyra"]}
    assert [text[s:e] for s, e in match.mask_spans] == ["fabrikam", "halcyra"]


def test_a_term_two_brands_share_is_a_span_of_both() -> None:
    matcher = BrandMatcher.compile(
        [BrandDefinition("A", "apple"), BrandDefinition("B", '"Apple" OR pie')]
    )
    text = "apple pie"
    assert spans_of(text, matcher.match(text)) == {"A": ["apple"], "B": ["apple", "pie"]}


def test_no_match_has_no_brand_spans_and_results_pickle() -> None:
    assert MATCHER.match("nothing here").brand_spans == ()
    match = MATCHER.match("halcyra vs quorvia")
    assert pickle.loads(pickle.dumps(match)) == match  # noqa: S301 (our own bytes)


def test_offsets_are_into_the_original_text_when_folding_changes_lengths() -> None:
    text = "Straße İstanbul: halcyra then Quorvia"
    match = MATCHER.match(text)
    assert spans_of(text, match) == {"Halcyra": ["halcyra"], "Quorvia": ["Quorvia"]}
