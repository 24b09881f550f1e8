"""Many brand queries compiled into one matcher that reads each mention once.

The cost of ``match`` grows with the length of the text and with the number of brand
terms that actually occur in it, not with the number of brands:

1. The text is split into tokens by one regex pass: handles and hashtags, words (runs
   of word characters), single other characters, and runs of whitespace. Together the
   tokens cover the text exactly, so their offsets are a running sum of their lengths.
   Tokens are casefolded one by one (casefold can lengthen a string, ``ß`` -> ``ss``, so
   the folded text's offsets would not be the original's).
2. Every term of every brand is tokenized the same way and inserted in a trie keyed by
   folded tokens (and, between tokens, whether whitespace separates them). Each text
   token is looked up in the trie's root dict; the rare hits walk on to verify phrases.
3. An inverted index from term to the brands where it is a positive term gives the
   only brands whose query can be true (the parser guarantees that a query is false
   when none of its positive terms occurs); only their queries are evaluated.

The query language and what a term matches are described in ``query``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import accumulate, compress
from typing import NamedTuple

from services.core.brands.errors import BrandDefinitionError, BrandQueryError
from services.core.brands.query import And, Not, QueryNode, Term, parse_query, positive_terms

MAX_BRAND_NAME_CHARS = 128

# A word, whitespace, a handle/hashtag (only where the sign does not follow a word
# character, so ``x@handle`` is not one), or any other single character. Only the last
# two can start at the same character, so only their order matters; the common
# alternatives come first because that is measurably faster.
_TOKEN = re.compile(r"\w+|\s+|(?<!\w)[@#]\w+|[^\w\s]")

# A term's key: its folded tokens, each with whether whitespace precedes it.
_TermKey = tuple[tuple[bool, str], ...]
_Predicate = Callable[[AbstractSet[int]], bool]


FORBIDDEN_NAME_CHARS = frozenset("/,")
# C0, DEL, C1, and the bidirectional embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069) plus the implicit marks (U+200E, U+200F, U+061C).
UNPRINTABLE_NAME_CHARS = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]"
)


@dataclass(frozen=True, slots=True)
class BrandDefinition:
    """A tracked brand: a display name (stripped, 1 to 128 characters) and its query.

    Raises ``BrandDefinitionError`` for a blank or overlong name; the query is checked
    by ``BrandMatcher.compile``.
    """

    name: str
    query: str

    def __post_init__(self) -> None:
        name = self.name.strip()
        if not name:
            raise BrandDefinitionError("a brand name must not be blank")
        if len(name) > MAX_BRAND_NAME_CHARS:
            raise BrandDefinitionError(
                f"brand name {name[:32]!r}... is longer than {MAX_BRAND_NAME_CHARS} characters"
            )
        # Shown on pages and in /metrics labels: no control characters, and no
        # bidirectional controls that would make a name read as something else.
        if (m := UNPRINTABLE_NAME_CHARS.search(name)) is not None:
            raise BrandDefinitionError(
                f"brand name must not contain the control character U+{ord(m.group()):04X}"
            )
        # A name is a path segment (/brands/{name}) and an item of comma lists (?brands=A,B).
        if bad := set(name) & FORBIDDEN_NAME_CHARS:
            raise BrandDefinitionError(
                f"brand name {name!r} must not contain {' or '.join(sorted(map(repr, bad)))}"
            )
        object.__setattr__(self, "name", name)


class MatchResult(NamedTuple):
    """What one text matched (a tuple: one is made per mention, and a tuple is made
    several times faster than a frozen dataclass).

    ``brands``: the names of the brands whose query is true, in the order the brands
    were given to ``compile``. ``mask_spans``: sorted, merged ``(start, end)`` offsets
    into the original text of every occurrence of a positive term of any tracked brand
    (matched or not), for masking brand names before sentiment scoring.
    ``brand_spans``: for each matched brand, in the order of ``brands``, its name and the
    sorted, merged spans of its own positive terms (where the text names it: what the
    per-brand scoring marks as the target, ``services.scorer.targets``).
    """

    brands: tuple[str, ...]
    mask_spans: tuple[tuple[int, int], ...]
    brand_spans: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()

    def spans_by_brand(self) -> dict[str, tuple[tuple[int, int], ...]]:
        """``brand_spans`` as a dict: matched brand → its spans."""
        return dict(self.brand_spans)


_NO_MATCH = MatchResult(brands=(), mask_spans=())


class _TrieNode:
    __slots__ = ("children", "masked", "other", "owners", "term_ids")

    def __init__(self, token: str) -> None:
        self.children: dict[tuple[bool, str], _TrieNode] = {}
        self.term_ids: tuple[int, ...] = ()
        # Whether a term ending here is a positive term of some brand, so it is masked.
        self.masked = False
        # The brands (indexes) of which a term ending here is a positive term.
        self.owners: frozenset[int] = frozenset()
        # A single character that is neither a word character nor whitespace: the only
        # kind of token whose edges are not word boundaries already, so a term that
        # starts or ends with one needs its neighbour checked.
        self.other = len(token) == 1 and not _is_word_char(token) and not token.isspace()


class BrandMatcher:
    """Matches texts against a fixed set of brands; build it with ``compile``.

    A matcher is immutable after ``compile`` and safe to share between threads.
    """

    def __init__(
        self,
        brands: tuple[BrandDefinition, ...],
        root: dict[str, _TrieNode],
        brands_by_term: tuple[tuple[int, ...], ...],
        predicates: tuple[_Predicate, ...],
    ) -> None:
        self._brands = brands
        self._names = tuple(brand.name for brand in brands)
        self._root = root
        self._brands_by_term = brands_by_term
        self._predicates = predicates

    @classmethod
    def compile(cls, brands: Sequence[BrandDefinition]) -> BrandMatcher:
        """Parse every brand's query and build one matcher for all of them.

        Raises ``BrandQueryError`` naming the brand (``brand 'X': query: ...``) for the
        first invalid query, and ``BrandDefinitionError`` for a brand name given twice.
        """
        term_ids: dict[_TermKey, int] = {}
        id_of: dict[Term, int] = {}
        brands_by_term: list[list[int]] = []
        predicates: list[_Predicate] = []
        seen: set[str] = set()
        for index, brand in enumerate(brands):
            if brand.name in seen:
                raise BrandDefinitionError(f"brand {brand.name!r} is defined twice")
            seen.add(brand.name)
            try:
                node = parse_query(brand.query)
            except BrandQueryError as error:
                raise error.for_brand(brand.name) from None
            positive = positive_terms(node)
            for term in _terms(node):
                if term in id_of:
                    continue
                key = _term_key(term.text)
                term_id = term_ids.setdefault(key, len(term_ids))
                if term_id == len(brands_by_term):
                    brands_by_term.append([])
                id_of[term] = term_id
            for term in positive:
                term_id = id_of[term]
                if not brands_by_term[term_id] or brands_by_term[term_id][-1] != index:
                    brands_by_term[term_id].append(index)
            predicates.append(_compile_predicate(node, id_of))
        root = _build_trie(term_ids, brands_by_term)
        return cls(
            tuple(brands),
            root,
            tuple(tuple(indexes) for indexes in brands_by_term),
            tuple(predicates),
        )

    @property
    def brands(self) -> tuple[BrandDefinition, ...]:
        """The brands, in the order they were compiled."""
        return self._brands

    def match(self, text: str) -> MatchResult:
        """The brands whose query is true for ``text``, and the spans to mask in it."""
        if text.isascii():
            # Lowercasing ASCII is casefolding it, and keeps every offset and token edge.
            raw = _TOKEN.findall(text.lower())
            folded = raw
        else:
            raw = _TOKEN.findall(text)
            folded = [token.casefold() for token in raw]
        root = self._root
        # The tokens that start a term, found without a Python-level loop over every token.
        hits = list(compress(range(len(folded)), map(root.__contains__, folded)))
        if not hits:
            return _NO_MATCH
        present: set[int] = set()
        found_spans: list[tuple[int, int]] = []
        found_owners: list[frozenset[int]] = []  # whose positive term each span is
        starts: list[int] | None = None
        count = len(raw)
        for first in hits:
            node = root[folded[first]]
            if node.other and first > 0 and _is_word_char(raw[first - 1][-1]):
                continue
            last = first
            while True:
                if node.term_ids and not (
                    node.other and last + 1 < count and _is_word_char(raw[last + 1][0])
                ):
                    present.update(node.term_ids)
                    if node.masked:
                        if starts is None:
                            starts = list(accumulate(map(len, raw), initial=0))
                        found_spans.append((starts[first], starts[last + 1]))
                        found_owners.append(node.owners)
                if not node.children:
                    break
                following = last + 1
                spaced = following < count and raw[following][0].isspace()
                if spaced:
                    following += 1
                if following >= count:
                    break
                next_node = node.children.get((spaced, folded[following]))
                if next_node is None:
                    break
                node = next_node
                last = following
        candidates: set[int] = set()
        for term_id in present:
            candidates.update(self._brands_by_term[term_id])
        predicates = self._predicates
        matched = [index for index in sorted(candidates) if predicates[index](present)]
        if not matched:
            return MatchResult((), _merge(found_spans))
        names = self._names
        if len(matched) == 1:
            # The common case, kept cheap: one brand, its spans without per-brand lists.
            (only,) = matched
            pairs = zip(found_spans, found_owners, strict=True)
            own = [span for span, owners in pairs if only in owners]
            brand_spans = ((names[only], tuple(own) if len(own) == 1 else _merge(own)),)
            return MatchResult((names[only],), _merge(found_spans), brand_spans)
        wanted: dict[int, list[tuple[int, int]]] = {index: [] for index in matched}
        for span, owners in zip(found_spans, found_owners, strict=True):
            for index in owners:
                if index in wanted:
                    wanted[index].append(span)
        return MatchResult(
            tuple(names[index] for index in matched),
            _merge(found_spans),
            tuple((names[index], _merge(own)) for index, own in wanted.items()),
        )


def _terms(node: QueryNode) -> list[Term]:
    found: list[Term] = []
    stack: list[QueryNode] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Term):
            found.append(current)
        elif isinstance(current, Not):
            stack.append(current.child)
        else:
            stack.extend(current.children)
    return found


def _term_key(text: str) -> _TermKey:
    key: list[tuple[bool, str]] = []
    spaced = False
    for token in _TOKEN.findall(text):
        if token[0].isspace():
            spaced = True
            continue
        key.append((spaced, token.casefold()))
        spaced = False
    return tuple(key)


def _build_trie(
    term_ids: dict[_TermKey, int], brands_by_term: Sequence[Sequence[int]]
) -> dict[str, _TrieNode]:
    root: dict[str, _TrieNode] = {}
    for key, term_id in term_ids.items():
        (_, first), *rest = key
        node = root.get(first) or root.setdefault(first, _TrieNode(first))
        for step in rest:
            node = node.children.get(step) or node.children.setdefault(step, _TrieNode(step[1]))
        node.term_ids = (*node.term_ids, term_id)
        node.owners = node.owners.union(brands_by_term[term_id])
        node.masked = bool(node.owners)
    return root


def _compile_predicate(node: QueryNode, id_of: dict[Term, int]) -> _Predicate:
    if isinstance(node, Term):
        term_id = id_of[node]
        return lambda present: term_id in present
    if isinstance(node, Not):
        inner = _compile_predicate(node.child, id_of)
        return lambda present: not inner(present)
    children = node.children
    if all(isinstance(child, Term) for child in children):
        # The common shapes (``a b c``, ``a OR b OR c``) as one set operation.
        ids = frozenset(id_of[child] for child in children if isinstance(child, Term))
        if isinstance(node, And):
            return lambda present: ids <= present
        return lambda present: not ids.isdisjoint(present)
    parts = tuple(_compile_predicate(child, id_of) for child in children)
    if isinstance(node, And):
        return lambda present: all(part(present) for part in parts)
    return lambda present: any(part(present) for part in parts)


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    if not spans:
        return ()
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return tuple(merged)
