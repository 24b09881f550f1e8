"""BrandMatcher: which brands a text matches, and which spans of it name a brand."""

from __future__ import annotations

import random
import re

import pytest

from services.core.brands import (
    BrandDefinition,
    BrandDefinitionError,
    BrandMatcher,
    BrandQueryError,
    MatchResult,
    parse_query,
)
from services.core.brands.query import QueryNode, Term, evaluate, positive_terms, to_query_string

EXAMPLE = '("northwind" OR @northwindcrm) AND NOT "northwind traders"'


def matches(query: str, text: str) -> bool:
    matcher = BrandMatcher.compile([BrandDefinition("brand", query)])
    return matcher.match(text).brands == ("brand",)


def masked(matcher: BrandMatcher, text: str) -> list[str]:
    return [text[start:end] for start, end in matcher.match(text).mask_spans]


# --- what a term matches --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Loving Northwind's new release", True),
        ("@NorthwindCRM support answered in minutes", True),
        ("northwind!", True),
        ("NORTHWIND", True),
        ("Northwind Traders sells tea", False),
        ("northwind\n  TRADERS, and northwind crm", False),
        ("northwinds are cold", False),
        ("#northwind", False),
        ("mail x@northwindcrm.com", False),
        ("", False),
    ],
)
def test_the_example_query(text: str, expected: bool) -> None:
    assert matches(EXAMPLE, text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("north", "north", True),
        ("north", "North, south", True),
        ("north", "(north)", True),
        ("north", "north-east", True),
        ("north", "northwind", False),
        ("north", "upnorth", False),
        ("north", "north_wind", False),
        ("north", "north2", False),
        ("north", "2north", False),
        ("northwind", "north wind", False),
    ],
)
def test_words_match_only_at_word_boundaries(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("apple", "apple", True),
        ("apple", "#apple", False),
        ("apple", "@apple", False),
        ("apple", "apples", False),
        ("apple", "pineapple", False),
        ("apple", "support@apple.com", True),
        ("@apple", "@Apple is down", True),
        ("@apple", "cc @apple.", True),
        ("@apple", "apple", False),
        ("@apple", "x@apple", False),
        ("@apple", "@apple_store", False),
        ("@apple", "#apple", False),
        ("#apple", "#Apple", True),
        ("#apple", "love it#apple", False),
        ("#apple", "#applepie", False),
        ("#apple", "apple", False),
        ('"@apple"', "@apple", True),
        ('"#apple"', "apple", False),
    ],
)
def test_handles_hashtags_and_words_are_different_terms(
    query: str, text: str, expected: bool
) -> None:
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ('"northwind traders"', "Northwind Traders", True),
        ('"northwind traders"', "northwind \n\t  traders", True),
        ('"northwind   traders"', "northwind traders", True),
        ('"northwind traders"', "northwindtraders", False),
        ('"northwind traders"', "northwind-traders", False),
        ('"northwind traders"', "northwind, traders", False),
        ('"northwind traders"', "northwind tradersco", False),
        ('"northwind traders"', "#northwind traders", False),
        ('"Northwind, Inc."', "northwind,   inc.", True),
        ('"Northwind, Inc."', "northwind,inc.", False),
        ('"Northwind, Inc."', "northwind , inc.", False),
        ('"Northwind, Inc."', "we like Northwind,  Inc. a lot", True),
        ('"node.js"', "Node.JS rocks", True),
        ('"node.js"', "(node.js)", True),
        ("node.js", "node.js.", True),
        ("node.js", "node. js", False),
        ("node.js", "node.jsx", False),
        ("node.js", "xnode.js", False),
        ("c++", "C++ is fast", True),
        ("c++", "in c++.", True),
        ("c++", "c++x", False),
        ("c++", "abc++", False),
        ('"+1"', "(+1)", True),
        ('"+1"', "a+1", False),
        ("AT&T", "at&t support", True),
        ("AT&T", "at & t", False),
        ('"and"', "salt and pepper", True),
    ],
)
def test_phrases_and_punctuation(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("Café", "CAFÉ au lait", True),
        ("Café", "café", True),
        ("Café", "cafe", False),
        ("Café", "cafés", False),
        ("Café", "cafe\u0301", False),  # not normalised: the caller NFC-normalises texts
        ("Café", "the café ✓", True),
        ("ÜBER", "über alles", True),
        ("über", "ÜBERALL", False),
        ("straße", "STRASSE", True),
        ("strasse", "Straße", True),
        ("ss", "ß", True),
        ("s", "ß", False),
        ("苹果", "我爱 苹果 手机", True),
        ("苹果", "「苹果」", True),
        ("苹果", "苹果。", True),
        ("苹果", "苹果手机", False),
        ("苹果", "我爱苹果", False),
        ("#苹果", "#苹果 新品", True),
        ("ΣΟΦΙΑ", "σοφια", True),
        ("москва", "МОСКВА!", True),
        ("москва", "Москвасити", False),
    ],
)
def test_unicode_case_folding_and_boundaries(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("a AND b", "b a", True),
        ("a AND b", "a", False),
        ("a b", "b x a", True),
        ("a OR b", "b", True),
        ("a OR b", "c", False),
        ("a AND NOT b", "a", True),
        ("a AND NOT b", "a b", False),
        ("a OR b AND c", "a", True),
        ("a OR b AND c", "b", False),
        ("(a OR b) AND c", "a c", True),
        ("(a OR b) AND c", "a", False),
        ("a NOT (b OR c)", "a c", False),
        ("NOT NOT a", "a", True),
    ],
)
def test_operators(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


# --- several brands -------------------------------------------------------------------


def test_a_text_matches_several_brands_in_the_order_they_were_given() -> None:
    matcher = BrandMatcher.compile(
        [
            BrandDefinition("Contoso", "contoso OR @contoso"),
            BrandDefinition("Northwind", EXAMPLE),
            BrandDefinition("Fabrikam", "fabrikam AND NOT jobs"),
            BrandDefinition("Tailspin", "tailspin"),
        ]
    )
    text = "Switched from @northwindcrm to Fabrikam, contoso next?"
    assert matcher.match(text).brands == ("Contoso", "Northwind", "Fabrikam")
    assert matcher.match("fabrikam jobs at contoso").brands == ("Contoso",)
    assert matcher.match("nothing to see") == MatchResult(brands=(), mask_spans=())


def test_brands_can_share_terms_written_differently() -> None:
    matcher = BrandMatcher.compile(
        [
            BrandDefinition("upper", "Apple"),
            BrandDefinition("phrase", '"apple"'),
            BrandDefinition("excluded", "pie AND NOT APPLE"),
        ]
    )
    assert matcher.match("apple pie").brands == ("upper", "phrase")
    assert matcher.match("pie").brands == ("excluded",)


def test_an_empty_matcher_matches_nothing() -> None:
    assert BrandMatcher.compile([]).match("anything at all") == MatchResult((), ())


def test_compile_names_the_brand_with_the_invalid_query() -> None:
    with pytest.raises(BrandQueryError) as caught:
        BrandMatcher.compile(
            [BrandDefinition("Good", "good"), BrandDefinition("Bad", '("northwind" OR)')]
        )
    error = caught.value
    assert error.brand == "Bad"
    assert error.position == 13
    assert str(error) == "brand 'Bad': query: 'OR' has no right operand at position 13"


def test_compile_rejects_a_brand_given_twice() -> None:
    with pytest.raises(BrandDefinitionError, match="'Twice'"):
        BrandMatcher.compile([BrandDefinition("Twice", "a"), BrandDefinition(" Twice ", "b")])


def test_brand_definition_strips_and_bounds_its_name() -> None:
    assert BrandDefinition("  Northwind \n", "northwind").name == "Northwind"
    assert BrandDefinition("x" * 128, "x").name == "x" * 128
    with pytest.raises(BrandDefinitionError):
        BrandDefinition("   ", "northwind")
    with pytest.raises(BrandDefinitionError):
        BrandDefinition("x" * 129, "northwind")


def test_the_matcher_keeps_its_brands() -> None:
    brands = [BrandDefinition("A", "a"), BrandDefinition("B", "b")]
    assert BrandMatcher.compile(brands).brands == tuple(brands)


# --- mask spans -----------------------------------------------------------------------


def test_mask_spans_point_into_the_original_text() -> None:
    matcher = BrandMatcher.compile(
        [
            BrandDefinition("Northwind", EXAMPLE),
            BrandDefinition("Strasse", "straße OR #straße"),
        ]
    )
    text = "ßß ẞ Straße, STRASSE und #Straße ❤ @NorthwindCRM / Northwind"
    result = matcher.match(text)
    assert result.brands == ("Northwind", "Strasse")
    assert masked(matcher, text) == ["Straße", "STRASSE", "#Straße", "@NorthwindCRM", "Northwind"]


def test_mask_spans_cover_positive_terms_of_every_brand_matched_or_not() -> None:
    matcher = BrandMatcher.compile(
        [
            BrandDefinition("Northwind", EXAMPLE),
            BrandDefinition("Contoso", "contoso AND cloud"),
        ]
    )
    text = "Northwind Traders and Contoso"
    assert matcher.match(text).brands == ()
    # "northwind traders" is only ever negated, so only "Northwind" itself is masked.
    assert masked(matcher, text) == ["Northwind", "Contoso"]


def test_mask_spans_are_sorted_and_merged() -> None:
    matcher = BrandMatcher.compile(
        [
            BrandDefinition("phrase", '"north wind"'),
            BrandDefinition("word", "wind"),
            BrandDefinition("repeat", '"a a"'),
        ]
    )
    text = "a a a, north  wind and wind"
    assert matcher.match(text).mask_spans == ((0, 5), (7, 18), (23, 27))
    assert masked(matcher, text) == ["a a a", "north  wind", "wind"]


def test_mask_spans_of_cjk_and_handles() -> None:
    matcher = BrandMatcher.compile([BrandDefinition("Apple", "苹果 OR @apple OR #apple")])
    text = "「苹果」@APPLE #Apple 苹果手机 x@apple"
    assert masked(matcher, text) == ["苹果", "@APPLE", "#Apple"]


# --- against a reference implementation -----------------------------------------------


def _reference_pattern(term: Term) -> re.Pattern[str]:
    folded = term.text.casefold()
    if term.kind == "phrase":
        body = r"\s+".join(re.escape(part) for part in folded.split())
    else:
        body = re.escape(folded)
    starts_with_word = folded[0].isalnum() or folded[0] == "_"
    if term.kind == "phrase" or term.kind == "word":
        # A word is not matched inside a handle or hashtag, i.e. after an @ or # that
        # does not itself follow a word character.
        guard = r"(?<!\w)(?<!(?<!\w)[@#])" if starts_with_word else r"(?<!\w)"
    else:
        guard = r"(?<!\w)"
    # In a lookahead so that overlapping occurrences ("a a" in "a a a") are all found.
    return re.compile(rf"(?=({guard}{body}(?!\w)))")


def _reference_match(brands: list[tuple[str, QueryNode]], text: str) -> MatchResult:
    folded = text.casefold()
    patterns: dict[Term, re.Pattern[str]] = {}

    def pattern(term: Term) -> re.Pattern[str]:
        if term not in patterns:
            patterns[term] = _reference_pattern(term)
        return patterns[term]

    names = tuple(
        name
        for name, node in brands
        if evaluate(node, lambda term: pattern(term).search(folded) is not None)
    )
    spans: list[tuple[int, int]] = []
    own: dict[str, list[tuple[int, int]]] = {}
    for name, node in brands:
        for term in positive_terms(node):
            found = [match.span(1) for match in pattern(term).finditer(folded)]
            spans.extend(found)
            if name in names:
                own.setdefault(name, []).extend(found)
    return MatchResult(
        names, _reference_merge(spans), tuple((n, _reference_merge(own[n])) for n in names)
    )


def _reference_merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


_QUERY_TERMS = [
    "north",
    "northwind",
    "wind",
    "traders",
    "Café",
    "ÜBER",
    "straße",
    "ss",
    "苹果",
    "a",
    "x_y",
    "@north",
    "@NorthWind",
    "#north",
    "#wind",
    "#苹果",
    '"north wind"',
    '"Northwind  Traders"',
    '"a a"',
    '"@north wind"',
    '"wind, north"',
    "node.js",
    "c++",
    '"+1"',
    '"and"',
    '"north!"',
]

_TEXT_PIECES = [
    "north",
    "North",
    "NORTHWIND",
    "northwind",
    "northwinds",
    "wind",
    "Traders",
    "traders",
    "café",
    "CAFÉ",
    "cafe",
    "über",
    "Über",
    "STRASSE",
    "straße",
    "ß",
    "ss",
    "苹果",
    "苹果手机",
    "a",
    "A",
    "x_y",
    "node",
    "js",
    "c",
    "c++",
    "+1",
    "north!",
    "1",
    "and",
    "@",
    "#",
    ".",
    "+",
    ",",
]

_SEPARATORS = [
    " ",
    " ",
    " ",
    "  ",
    "\n",
    "\t ",
    "",
    "",
    ",",
    ", ",
    ".",
    "@",
    "#",
    "+",
    "_",
    "!",
    "。",
]


def _random_query(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if depth == 0 or roll < 0.35:
        return rng.choice(_QUERY_TERMS)
    if roll < 0.5:
        return f"NOT {_random_query(rng, depth - 1)}"
    operands = [f"({_random_query(rng, depth - 1)})" for _ in range(rng.randint(2, 3))]
    joiner = rng.choice([" AND ", " ", " OR ", " or ", " and "])
    return joiner.join(operands)


def _random_text(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(0, 12)):
        parts.append(rng.choice(_TEXT_PIECES))
        parts.append(rng.choice(_SEPARATORS))
    return "".join(parts)


def test_matcher_agrees_with_a_regex_per_term_reference() -> None:
    rng = random.Random(20240611)
    cases = 0
    brand_matches = 0
    while cases < 400:
        brands: list[tuple[str, QueryNode]] = []
        for index in range(4):
            query = _random_query(rng, depth=3)
            try:
                node = parse_query(query)
            except BrandQueryError:
                continue  # an unanchored random query, e.g. "a OR NOT b"
            assert parse_query(to_query_string(node)) == node
            brands.append((f"brand{index}", node))
        matcher = BrandMatcher.compile(
            [BrandDefinition(name, to_query_string(node)) for name, node in brands]
        )
        for _ in range(10):
            text = _random_text(rng)
            actual = matcher.match(text)
            expected = _reference_match(brands, text)
            assert actual.brands == expected.brands, (text, brands)
            if len(text.casefold()) == len(text):
                # The reference's offsets are into the casefolded text.
                assert actual.mask_spans == expected.mask_spans, (text, brands)
                assert actual.brand_spans == expected.brand_spans, (text, brands)
            brand_matches += len(actual.brands)
            cases += 1
    # The generator must produce matches, or the comparison proves little.
    assert brand_matches > cases // 4
