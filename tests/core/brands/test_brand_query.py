"""The brand query language: parsing, precedence, errors with positions, limits, printing."""

from __future__ import annotations

import pickle
import time

import pytest

from services.core.brands import BrandQueryError, parse_query
from services.core.brands.query import (
    MAX_DEPTH,
    MAX_QUERY_CHARS,
    MAX_TERMS,
    And,
    Not,
    Or,
    QueryNode,
    Term,
    evaluate,
    positive_terms,
    to_query_string,
)

EXAMPLE = '("northwind" OR @northwindcrm) AND NOT "northwind traders"'


def word(text: str) -> Term:
    return Term("word", text)


def phrase(text: str) -> Term:
    return Term("phrase", text)


A, B, C, D = word("a"), word("b"), word("c"), word("d")


# --- terms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("northwind", word("northwind")),
        ("Northwind", word("Northwind")),
        ("@northwindcrm", Term("handle", "@northwindcrm")),
        ("#NorthwindLove", Term("hashtag", "#NorthwindLove")),
        ('"northwind traders"', phrase("northwind traders")),
        ('"  northwind \t\n traders  "', phrase("northwind traders")),
        ('"Northwind, Inc. (NW)"', phrase("Northwind, Inc. (NW)")),
        ('"and"', phrase("and")),
        ('"northwind"', phrase("northwind")),
        ("node.js", phrase("node.js")),
        ("AT&T", phrase("AT&T")),
        ("Café", word("Café")),
        ("ÜBER", word("ÜBER")),
        ("straße", word("straße")),
        ("苹果", word("苹果")),
        ("#苹果", Term("hashtag", "#苹果")),
        ("snake_case", word("snake_case")),
        ("   northwind   ", word("northwind")),
    ],
)
def test_a_single_term_parses_to_that_term(query: str, expected: Term) -> None:
    assert parse_query(query) == expected


@pytest.mark.parametrize("keyword", ["and", "And", "AND", "or", "Or", "OR"])
def test_operator_keywords_are_case_insensitive(keyword: str) -> None:
    expected = And((A, B)) if keyword.casefold() == "and" else Or((A, B))
    assert parse_query(f"a {keyword} b") == expected


@pytest.mark.parametrize("keyword", ["not", "Not", "NOT"])
def test_not_keyword_is_case_insensitive(keyword: str) -> None:
    assert parse_query(f"a {keyword} b") == And((A, Not(B)))


# --- operators and precedence ---------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a AND b", And((A, B))),
        ("a OR b", Or((A, B))),
        ("a AND NOT b", And((A, Not(B)))),
        ("a b", And((A, B))),
        ("a b c", And((A, B, C))),
        ("a AND b c", And((A, B, C))),
        ("a OR b AND c", Or((A, And((B, C))))),
        ("a AND b OR c", Or((And((A, B)), C))),
        ("a b OR c d", Or((And((A, B)), And((C, D))))),
        ("NOT a b", And((Not(A), B))),
        ("a NOT b OR c", Or((And((A, Not(B))), C))),
        ("(a OR b) c", And((Or((A, B)), C))),
        ("a (b OR c)", And((A, Or((B, C))))),
        ("NOT (a OR b) AND c", And((Not(Or((A, B))), C))),
        ("a AND (b AND c)", And((A, B, C))),
        ("(a OR b) OR (c OR d)", Or((A, B, C, D))),
        ("((a))", A),
        ("NOT NOT a", Not(Not(A))),
        ('a"b"', And((A, phrase("b")))),
        ("a(b)", And((A, B))),
        ("a OR(b)", Or((A, B))),
        ("NOT(b)a", And((Not(B), A))),
    ],
)
def test_operators_and_precedence(query: str, expected: QueryNode) -> None:
    assert parse_query(query) == expected


def test_the_example_query() -> None:
    assert parse_query(EXAMPLE) == And(
        (
            Or((phrase("northwind"), Term("handle", "@northwindcrm"))),
            Not(phrase("northwind traders")),
        )
    )


# --- evaluate, positive_terms ---------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "present", "expected"),
    [
        ("a b", {"a", "b"}, True),
        ("a b", {"a"}, False),
        ("a OR b", {"b"}, True),
        ("a OR b", set(), False),
        ("a AND NOT b", {"a"}, True),
        ("a AND NOT b", {"a", "b"}, False),
        ("a OR b AND c", {"a"}, True),
        ("a OR b AND c", {"b"}, False),
        ("(a OR b) AND c", {"a"}, False),
        ("(a OR b) AND c", {"a", "c"}, True),
        ("NOT NOT a", {"a"}, True),
    ],
)
def test_evaluate(query: str, present: set[str], expected: bool) -> None:
    assert evaluate(parse_query(query), lambda term: term.text in present) is expected


def test_positive_terms_are_those_under_an_even_number_of_nots() -> None:
    node = parse_query("(a OR NOT (b AND NOT c)) AND NOT NOT d")
    assert positive_terms(node) == frozenset({A, C, D})
    assert positive_terms(parse_query(EXAMPLE)) == frozenset(
        {phrase("northwind"), Term("handle", "@northwindcrm")}
    )


def test_a_term_both_negated_and_not_is_positive() -> None:
    assert positive_terms(parse_query("a AND NOT a")) == frozenset({A})


# --- printing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        EXAMPLE,
        "a",
        "a b c",
        "a OR b AND c",
        "(a OR b) AND (c OR d)",
        "NOT (a OR b) AND c",
        "a AND NOT (b c)",
        "NOT NOT a",
        'node.js OR AT&T OR "and" OR "or not"',
        "#tag @handle Café ÜBER 苹果",
        '"  spaced    out  " x',
        "(((a OR (b c)) d) OR NOT (e OR f)) g",
    ],
)
def test_to_query_string_round_trips(query: str) -> None:
    node = parse_query(query)
    printed = to_query_string(node)
    assert parse_query(printed) == node
    assert to_query_string(parse_query(printed)) == printed


def test_to_query_string_uses_explicit_operators_and_minimal_parentheses() -> None:
    assert to_query_string(parse_query("a b OR (c d)")) == "a AND b OR c AND d"
    assert to_query_string(parse_query("(a OR b) c")) == "(a OR b) AND c"
    assert to_query_string(parse_query(EXAMPLE)) == EXAMPLE


@pytest.mark.parametrize(
    "node",
    [And(()), Or(()), word("and"), word("node.js"), phrase('say "hi"'), phrase("  "), word("")],
)
def test_to_query_string_rejects_nodes_the_language_cannot_spell(node: QueryNode) -> None:
    with pytest.raises(ValueError, match=r"no children|cannot be written"):
        to_query_string(node)


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "position", "reason"),
    [
        ("", 0, "empty query"),
        ("   \t\n", 0, "empty query"),
        ("(a", 0, "unclosed '('"),
        ("a (b OR (c)", 2, "unclosed '('"),
        ("(", 0, "unclosed '('"),
        ("a)", 1, "unmatched ')'"),
        ("(a) b)", 5, "unmatched ')'"),
        (")", 0, "unexpected ')'"),
        ("()", 1, "unexpected ')'"),
        ("a ()", 3, "unexpected ')'"),
        ('"northwind', 0, "unterminated quote"),
        ('a "b" "c', 6, "unterminated quote"),
        ('""', 0, "empty quoted phrase"),
        ('a "  \t "', 2, "empty quoted phrase"),
        ('"!!!"', 0, 'phrase "!!!" has no letter or digit'),
        ("a & b", 2, "unexpected '&'"),
        ("a AND", 2, "'AND' has no right operand"),
        ("a OR", 2, "'OR' has no right operand"),
        ("(a OR) b", 3, "'OR' has no right operand"),
        ('("northwind" OR)', 13, "'OR' has no right operand"),
        ("a AND NOT", 6, "'NOT' has no operand"),
        ("NOT", 0, "'NOT' has no operand"),
        ("AND a", 0, "'AND' has no left operand"),
        ("OR a", 0, "'OR' has no left operand"),
        ("(OR a)", 1, "'OR' has no left operand"),
        ("a AND OR b", 6, "unexpected 'OR'"),
        ("a OR AND b", 5, "unexpected 'AND'"),
        ("NOT a", 0, "a query must contain at least one positive term"),
        ("NOT a AND NOT b", 0, "a query must contain at least one positive term"),
        ("(NOT a OR NOT b)", 1, "a query must contain at least one positive term"),
        ("a OR NOT b", 5, "the query matches texts that contain none of its positive terms"),
        ("(a OR NOT b) OR c", 6, None),
    ],
)
def test_invalid_queries_raise_with_the_position(
    query: str, position: int, reason: str | None
) -> None:
    with pytest.raises(BrandQueryError) as caught:
        parse_query(query)
    assert caught.value.position == position
    if reason is not None:
        assert caught.value.reason == reason


@pytest.mark.parametrize(
    "query", ["(a OR NOT b) c", "a AND NOT a", "NOT (NOT a)", "a (b OR NOT c)", "NOT a b"]
)
def test_a_query_false_without_its_positive_terms_is_accepted(query: str) -> None:
    node = parse_query(query)
    assert positive_terms(node)
    assert not evaluate(node, lambda _term: False)


def test_the_error_message_names_the_problem_the_position_and_the_hint() -> None:
    with pytest.raises(BrandQueryError) as caught:
        parse_query('("northwind" OR ())')
    error = caught.value
    assert str(error) == "query: unexpected ')' at position 17: expected a term"
    assert error.reason == "unexpected ')'"
    assert error.hint == "expected a term"
    assert isinstance(error, ValueError)


def test_the_error_can_name_its_brand_and_survives_pickling() -> None:
    with pytest.raises(BrandQueryError) as caught:
        parse_query("a AND")
    named = caught.value.for_brand("Northwind")
    assert str(named) == "brand 'Northwind': query: 'AND' has no right operand at position 2"
    copy = pickle.loads(pickle.dumps(named))  # noqa: S301 - our own bytes
    assert (copy.reason, copy.position, copy.brand, str(copy)) == (
        named.reason,
        named.position,
        named.brand,
        str(named),
    )


# --- limits and hostile input ---------------------------------------------------------


def _rejected_quickly(query: str) -> BrandQueryError:
    started = time.perf_counter()
    with pytest.raises(BrandQueryError) as caught:
        parse_query(query)
    assert time.perf_counter() - started < 0.5
    return caught.value


def test_ten_thousand_nested_parentheses_are_rejected_quickly() -> None:
    error = _rejected_quickly("(" * 10_000 + "a" + ")" * 10_000)
    assert error.position == MAX_QUERY_CHARS


def test_nesting_deeper_than_the_limit_is_rejected_at_the_first_level_too_deep() -> None:
    depth = 900
    error = _rejected_quickly("(" * depth + "a" + ")" * depth)
    assert error.position == MAX_DEPTH
    assert "nesting" in error.reason
    parse_query("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)


def test_unclosed_deep_nesting_is_rejected_quickly() -> None:
    error = _rejected_quickly("(" * MAX_QUERY_CHARS)
    assert error.position == MAX_DEPTH


def test_a_chain_of_nots_counts_as_nesting() -> None:
    error = _rejected_quickly("a " + "NOT " * 400 + "b")
    assert error.position == 2 + 4 * MAX_DEPTH
    assert parse_query("a " + "NOT " * MAX_DEPTH + "b") is not None


def test_a_query_over_the_length_limit_is_rejected() -> None:
    query = "a" * (MAX_QUERY_CHARS + 1)
    error = _rejected_quickly(query)
    assert error.position == MAX_QUERY_CHARS
    assert parse_query("a" * MAX_QUERY_CHARS) == word("a" * MAX_QUERY_CHARS)


def test_more_terms_than_the_limit_are_rejected_at_the_first_extra_term() -> None:
    query = " ".join(f"t{index}" for index in range(MAX_TERMS + 1))
    error = _rejected_quickly(query)
    assert error.position == query.index(f"t{MAX_TERMS}")
    assert "terms" in error.reason
    node = parse_query(" OR ".join(f"t{index}" for index in range(MAX_TERMS)))
    assert isinstance(node, Or)
    assert len(node.children) == MAX_TERMS


@pytest.mark.parametrize(
    "query",
    [
        '"' * MAX_QUERY_CHARS,
        '"a' * 1000,
        "NOT " * 500,
        "AND " * 500,
        ")" * MAX_QUERY_CHARS,
        "(" * 16 + ")" * 1984,
        "a OR " * 400,
        "&" * MAX_QUERY_CHARS,
    ],
)
def test_hostile_queries_are_rejected_quickly(query: str) -> None:
    assert len(query) <= MAX_QUERY_CHARS
    _rejected_quickly(query)
