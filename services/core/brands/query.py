"""The brand query language: a query string parsed into an immutable AST.

Grammar (``NOT`` binds tighter than ``AND``, ``AND`` tighter than ``OR``; operands
written next to each other are joined by an implicit ``AND``)::

    query   := or
    or      := and ("OR" and)*
    and     := not (["AND"] not)*
    not     := "NOT" not | primary
    primary := term | "(" or ")"
    term    := word | @handle | #hashtag | "quoted phrase"

Example: ``("northwind" OR @northwindcrm) AND NOT "northwind traders"``.

Operators are keywords in any case (``and``, ``Or``, ``NOT``); to search for the word
"and", quote it: ``"and"``. A bare term that contains punctuation other than a leading
``@``/``#`` (``node.js``, ``AT&T``) is read as the phrase ``"node.js"``. A phrase runs
to the next ``"``; it cannot contain a ``"``.

What a query means (``BrandMatcher`` implements this; it is stated here because it is
part of the language):

* Matching is case-insensitive, by ``str.casefold`` (``STRASSE`` matches ``straße``).
* A term matches only where it is neither preceded nor followed by a word character:
  a letter, digit or ``_`` in any script (``str.isalnum()`` or ``_``). So ``north``
  does not match ``northwind``. In scripts written without spaces this means a term
  matches only where punctuation or space sets it apart: ``苹果`` matches
  ``买了「苹果」`` but not ``买了苹果手机`` (there is no word segmentation).
* ``@handle`` matches the token ``@handle`` and not ``x@handle`` (an e-mail address);
  ``#tag`` matches ``#tag``. A bare word or phrase does NOT match inside a handle or
  hashtag: ``apple`` matches neither ``@apple`` nor ``#apple`` (write ``apple OR
  @apple OR #apple`` to track all three). An ``@``/``#`` that follows a word character
  does not start a handle, so ``northwind`` does match ``support@northwind.com``.
* A phrase matches its words separated by any run of whitespace (``"northwind
  traders"`` matches ``Northwind\\n  Traders``); punctuation in it must appear as
  written, with no space added or removed (``"node.js"`` does not match ``node. js``).
* There is no Unicode normalisation: ``café`` written with a combining accent
  (``cafe\\u0301``) is not ``café``. Normalise texts (NFC) before matching.

Every query must be able to match only through one of its positive terms (terms under
an even number of ``NOT``): ``NOT northwind`` and ``northwind OR NOT traders`` would
match nearly every mention, so they are rejected.

Limits, so that hostile input costs linear time and bounded recursion:
``MAX_QUERY_CHARS`` characters, ``MAX_TERMS`` terms, ``MAX_DEPTH`` levels of nesting
(each parenthesis and each ``NOT`` is a level).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from services.core.brands.errors import BrandQueryError

MAX_QUERY_CHARS = 2000
MAX_TERMS = 200
MAX_DEPTH = 32

TermKind = Literal["word", "phrase", "handle", "hashtag"]


@dataclass(frozen=True, slots=True)
class Term:
    """One term as written (original case; a phrase's whitespace collapsed to one space)."""

    kind: TermKind
    text: str


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[QueryNode, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[QueryNode, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: QueryNode


QueryNode: TypeAlias = Term | And | Or | Not

_KEYWORDS = frozenset({"and", "or", "not"})
_SPACE = re.compile(r"\s+")
_BARE = re.compile(r'[^\s()"]+')
_WORD = re.compile(r"\w+")
_HANDLE = re.compile(r"@\w+")
_HASHTAG = re.compile(r"#\w+")
_WORD_CHAR = re.compile(r"\w")

_TokenKind = Literal["term", "AND", "OR", "NOT", "(", ")", "end"]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _TokenKind
    position: int
    term: Term | None = None


def parse_query(query: str) -> QueryNode:
    """Parse a brand query into its AST.

    ``And``/``Or`` nodes are flattened (``a (b c)`` is ``And((a, b, c))``) and a group of
    one operand is the operand itself. Raises ``BrandQueryError`` with the 0-based
    position of the problem for: an empty query, unbalanced parentheses, an unterminated
    quote, an empty quoted phrase, a term with no letter or digit, an operator with a
    missing operand, a query that could match without any of its positive terms, and a
    query over the limits (``MAX_QUERY_CHARS``, ``MAX_TERMS``, ``MAX_DEPTH``).
    """
    if len(query) > MAX_QUERY_CHARS:
        raise BrandQueryError(f"query is longer than {MAX_QUERY_CHARS} characters", MAX_QUERY_CHARS)
    if not query or query.isspace():
        raise BrandQueryError("empty query", 0)
    tokens = _lex(query)
    node = _Parser(tokens).parse()
    _require_anchor(node, tokens)
    return node


def evaluate(node: QueryNode, present: Callable[[Term], bool]) -> bool:
    """Whether the query is true, given which of its terms are present in a text."""
    if isinstance(node, Term):
        return present(node)
    if isinstance(node, Not):
        return not evaluate(node.child, present)
    if isinstance(node, And):
        return all(evaluate(child, present) for child in node.children)
    return any(evaluate(child, present) for child in node.children)


def positive_terms(node: QueryNode) -> frozenset[Term]:
    """The terms of the query that are under an even number of ``NOT`` (often none)."""
    found: set[Term] = set()
    stack: list[tuple[QueryNode, bool]] = [(node, False)]
    while stack:
        current, negated = stack.pop()
        if isinstance(current, Term):
            if not negated:
                found.add(current)
        elif isinstance(current, Not):
            stack.append((current.child, not negated))
        else:
            stack.extend((child, negated) for child in current.children)
    return frozenset(found)


def to_query_string(node: QueryNode) -> str:
    """The query as a string, with explicit operators and only the parentheses it needs.

    ``parse_query(to_query_string(node)) == node`` for every ``node`` that
    ``parse_query`` returned. Raises ``ValueError`` for a hand-built node that has no
    spelling in the language (an empty ``And``, a word that is an operator keyword, a
    phrase containing ``"``).
    """
    if isinstance(node, Term):
        return _term_string(node)
    if isinstance(node, Not):
        return f"NOT {_operand_string(node.child, wrap=(And, Or))}"
    if not node.children:
        raise ValueError(f"{type(node).__name__} has no children")
    if isinstance(node, And):
        return " AND ".join(_operand_string(child, wrap=(And, Or)) for child in node.children)
    return " OR ".join(_operand_string(child, wrap=(Or,)) for child in node.children)


def _operand_string(node: QueryNode, wrap: tuple[type[And | Or], ...]) -> str:
    text = to_query_string(node)
    return f"({text})" if isinstance(node, wrap) else text


def _term_string(term: Term) -> str:
    text = term.text
    if term.kind == "phrase":
        if '"' in text or not _WORD_CHAR.search(text):
            raise ValueError(f"phrase {text!r} cannot be written as a query")
        return f'"{text}"'
    pattern = {"word": _WORD, "handle": _HANDLE, "hashtag": _HASHTAG}[term.kind]
    if not pattern.fullmatch(text) or text.casefold() in _KEYWORDS:
        raise ValueError(f"{term.kind} {text!r} cannot be written as a query")
    return text


def _lex(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    term_count = 0
    position = 0
    length = len(query)
    while True:
        space = _SPACE.match(query, position)
        if space is not None:
            position = space.end()
        if position >= length:
            break
        char = query[position]
        if char in "()":
            tokens.append(_Token("(" if char == "(" else ")", position))
            position += 1
            continue
        if char == '"':
            close = query.find('"', position + 1)
            if close < 0:
                raise BrandQueryError("unterminated quote", position, hint="add a closing '\"'")
            term = _phrase(query[position + 1 : close], position)
            end = close + 1
        else:
            bare = _BARE.match(query, position)
            assert bare is not None  # the character is not a space, a parenthesis or a quote
            raw = bare.group()
            keyword = raw.casefold()
            if keyword in _KEYWORDS:
                kind: _TokenKind = "AND" if keyword == "and" else "OR" if keyword == "or" else "NOT"
                tokens.append(_Token(kind, position))
                position = bare.end()
                continue
            term = _bare_term(raw, position)
            end = bare.end()
        term_count += 1
        if term_count > MAX_TERMS:
            raise BrandQueryError(f"more than {MAX_TERMS} terms", position)
        tokens.append(_Token("term", position, term))
        position = end
    tokens.append(_Token("end", length))
    return tokens


def _phrase(raw: str, position: int) -> Term:
    text = " ".join(raw.split())
    if not text:
        raise BrandQueryError("empty quoted phrase", position)
    if not _WORD_CHAR.search(text):
        raise BrandQueryError(
            f'phrase "{text}" has no letter or digit', position, hint="a term needs one"
        )
    return Term("phrase", text)


def _bare_term(raw: str, position: int) -> Term:
    if _WORD.fullmatch(raw):
        return Term("word", raw)
    if _HANDLE.fullmatch(raw):
        return Term("handle", raw)
    if _HASHTAG.fullmatch(raw):
        return Term("hashtag", raw)
    if not _WORD_CHAR.search(raw):
        raise BrandQueryError(
            f"unexpected {raw!r}", position, hint="expected a term (a term needs a letter or digit)"
        )
    return Term("phrase", raw)


class _Parser:
    """Recursive descent over the token list; recursion is bounded by ``MAX_DEPTH``."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self._depth = 0

    def parse(self) -> QueryNode:
        node = self._or()
        token = self._tokens[self._index]
        # ``_or`` stops only at a ``)`` or at the end.
        if token.kind == ")":
            raise BrandQueryError("unmatched ')'", token.position, hint="remove it or add a '('")
        return node

    def _or(self) -> QueryNode:
        children = [self._and()]
        while self._tokens[self._index].kind == "OR":
            self._index += 1
            children.append(self._and())
        return _join(Or, children)

    def _and(self) -> QueryNode:
        children = [self._not()]
        while True:
            kind = self._tokens[self._index].kind
            if kind == "AND":
                self._index += 1
            elif kind not in ("term", "(", "NOT"):
                break
            children.append(self._not())
        return _join(And, children)

    def _not(self) -> QueryNode:
        token = self._tokens[self._index]
        if token.kind != "NOT":
            return self._primary()
        self._index += 1
        self._enter(token)
        child = self._not()
        self._depth -= 1
        return Not(child)

    def _primary(self) -> QueryNode:
        token = self._tokens[self._index]
        if token.kind == "term":
            assert token.term is not None
            self._index += 1
            return token.term
        if token.kind != "(":
            raise self._missing_operand(token)
        self._enter(token)
        self._index += 1
        node = self._or()
        if self._tokens[self._index].kind != ")":
            raise BrandQueryError("unclosed '('", token.position, hint="add a matching ')'")
        self._index += 1
        self._depth -= 1
        return node

    def _enter(self, token: _Token) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise BrandQueryError(
                f"nesting deeper than {MAX_DEPTH} levels (parentheses and NOTs)", token.position
            )

    def _missing_operand(self, token: _Token) -> BrandQueryError:
        previous = self._tokens[self._index - 1] if self._index > 0 else None
        if previous is not None and previous.kind in ("AND", "OR", "NOT"):
            if token.kind in (")", "end"):
                missing = "operand" if previous.kind == "NOT" else "right operand"
                return BrandQueryError(f"'{previous.kind}' has no {missing}", previous.position)
            return BrandQueryError(
                f"unexpected '{token.kind}'",
                token.position,
                hint=f"expected a term after '{previous.kind}'",
            )
        if token.kind in ("AND", "OR"):
            return BrandQueryError(f"'{token.kind}' has no left operand", token.position)
        if token.kind == "end":
            # Only a '(' can precede the end where a term was expected: an operator is
            # handled above and an empty query is rejected before lexing.
            assert previous is not None
            return BrandQueryError("unclosed '('", previous.position, hint="add a matching ')'")
        return BrandQueryError("unexpected ')'", token.position, hint="expected a term")


def _join(kind: type[And | Or], children: list[QueryNode]) -> QueryNode:
    if len(children) == 1:
        return children[0]
    flat: list[QueryNode] = []
    for child in children:
        if isinstance(child, kind):
            flat.extend(child.children)
        else:
            flat.append(child)
    return kind(tuple(flat))


def _require_anchor(node: QueryNode, tokens: list[_Token]) -> None:
    # The matcher evaluates a brand's query only when one of its positive terms occurs.
    # That is exact only for a query that is false whenever all of its positive terms
    # are absent; since the remaining terms occur only negated, the query is then at
    # its truest with every term absent, so one evaluation decides it.
    if not evaluate(node, lambda _term: False):
        return
    # Such a query always contains a NOT: without one, every term is positive.
    position = next(token.position for token in tokens if token.kind == "NOT")
    if not positive_terms(node):
        raise BrandQueryError("a query must contain at least one positive term", position)
    raise BrandQueryError(
        "the query matches texts that contain none of its positive terms",
        position,
        hint="a negated term must be combined with AND, e.g. 'northwind AND NOT traders'",
    )
