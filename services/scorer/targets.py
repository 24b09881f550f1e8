"""Sentiment toward one brand of a mention that names several.

"Switched from Halcyra to Quorvia, support is night and day" is negative for Halcyra and
positive for Quorvia: one label per mention would give both the same. A mention naming
two or more tracked brands is scored once per brand, in one of two ways:

- **the target-aware model** (hybrid and transformer modes): the model reads the text
  with the brand asked about written ``TARGET_MARK`` and the other brands masked as the
  general path masks every brand (``services.scorer.mask.PLACEHOLDER``). It was trained
  on Dong et al.'s target-dependent tweets in exactly that form (their ``$T$``) together
  with the general tweets, so one model answers both questions
  (``services/scorer/training``);
- **the clause-scoped lexicon** (lexicon mode, or when the model has no room): VADER on
  the clauses that name the brand (``brand_clauses``; "Globex is great, Acme is awful"
  is split at its comma, ``sub_clauses``).

The pure functions here are shared by the scorer and by training, so the model is
served text in the form it learnt.

They mask the brands they are given: the matched ones (``MatchResult.brand_spans``). A
term of a tracked brand whose query is not true for the mention ("happy" in "Switched
from Acme to Globex, happy with it so far", the brand Happy's query asking for
"helpdesk" too) is left as written, where the whole-text path masks it
(``MatchResult.mask_spans``): the query said it is not that brand here, so it is read as
the word it is. Deliberate, and rare: none of the comparative set's 202 mentions has one.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from services.scorer.mask import PLACEHOLDER

# Dong et al.'s own marker, kept so the shipped data set trains the model unchanged.
TARGET_MARK = "$T$"
# A "$T$" the author wrote is not the target: it is spaced out before marking.
_AUTHOR_MARK = re.compile(re.escape(TARGET_MARK))
# How much text around the brand the model reads: a 10,000-character post would be cut
# to its first 64 tokens, and a brand named further on would not be seen at all.
WINDOW_CHARS = 320
# Brands per mention scored one by one; beyond it (a list of 50 vendors, a tag cloud)
# every brand gets the mention's own verdict: such a text says nothing toward each one.
MAX_TARGETS = 8

Spans = Sequence[tuple[int, int]]


_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)


def widen_to_urls(text: str, spans: Spans) -> list[tuple[int, int]]:
    """``spans``, each one inside a URL widened to the whole URL: a brand named only in a
    link ("https://halcyra.com/pricing is a joke") is what the link stands for, and the
    model should read one mark, not "https://$T$.com/pricing"."""
    urls = [(m.start(), m.end()) for m in _URL.finditer(text)]
    if not urls:
        return list(spans)
    out: list[tuple[int, int]] = []
    for s, e in spans:
        for us, ue in urls:
            if us <= s < ue:
                s, e = us, max(e, ue)
                break
        if (s, e) not in out:
            out.append((s, e))
    return sorted(out)


def mark_target(text: str, spans: Mapping[str, Spans], target: str) -> tuple[str, int]:
    """``text`` with ``target``'s spans written ``TARGET_MARK`` and every other brand's
    written ``PLACEHOLDER``; and where the first mark starts (-1 if ``target`` has no
    span). Spans are ``(start, end)`` character offsets; spans inside a URL stand for
    the whole URL (``widen_to_urls``); overlaps keep the first."""
    marked: list[tuple[int, int, str]] = []
    for brand, brand_spans in spans.items():
        mark = TARGET_MARK if brand == target else PLACEHOLDER
        marked.extend((s, e, mark) for s, e in widen_to_urls(text, brand_spans))
    marked.sort()
    out: list[str] = []
    pos = 0
    first = -1
    length = 0
    for start, end, mark in marked:
        if start < pos:
            continue
        piece = _AUTHOR_MARK.sub("$ T $", text[pos:start])
        out.append(piece)
        length += len(piece)
        if mark == TARGET_MARK and first < 0:
            first = length
        out.append(mark)
        length += len(mark)
        pos = end
    out.append(_AUTHOR_MARK.sub("$ T $", text[pos:]))
    return "".join(out), first


def window(text: str, at: int, chars: int = WINDOW_CHARS) -> str:
    """At most ``chars`` of ``text`` around position ``at``, cut at spaces."""
    if len(text) <= chars:
        return text
    start = max(0, min(at - chars // 3, len(text) - chars))
    end = start + chars
    if start > 0:
        space = text.find(" ", start, at if at > start else start + 40)
        start = space + 1 if space >= 0 else start
    if end < len(text):
        space = text.rfind(" ", max(at + 1, end - 40), end)
        end = space if space > 0 else end
    return text[start:end]


def target_text(text: str, spans: Mapping[str, Spans], target: str) -> str:
    """What the target-aware model reads for ``target``: the marked text, windowed."""
    marked, first = mark_target(text, spans, target)
    return window(marked, max(first, 0))


# Clause boundaries: sentence ends, semicolons, and the contrastive and causal
# conjunctions that turn a comparison ("…, but X…", "… because Y…", "… than X"). A run
# of spaces is tried once, from its first (the lookbehind, the possessive ``++``): a
# hostile run of 9,000 spaces would otherwise be tried from each, in quadratic time.
_CLAUSE = re.compile(
    r"(?:[.!?;]+(?=\s|$)|\n+|\s[-–—]\s"
    r"|,?(?<!\s)\s++(?:but|whereas|while|although|though|however|unlike|than|instead of|"
    r"compared to|vs\.?|versus)\s+)",
    re.IGNORECASE,
)


def clauses(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each clause of ``text`` (``_CLAUSE`` boundaries)."""
    out: list[tuple[int, int]] = []
    pos = 0
    for m in _CLAUSE.finditer(text):
        if m.start() > pos:
            out.append((pos, m.start()))
        pos = m.end()
    if pos < len(text):
        out.append((pos, len(text)))
    return out or [(0, len(text))]


# Inside a clause that names two or more brands, the sub-clause boundary: a comma
# followed by a space ("Globex is great, Acme is awful"); the other boundaries
# (semicolons, dashes, "but", "while", "whereas"…) are ``_CLAUSE``'s already. A comma
# inside a number ("1,000") or a link is not one. Brackets are not either: the text after
# an aside ("Globex is great (Acme is a mess) and cheap") is about what came before it.
# Each boundary is one character, which ``clause_text`` relies on to read a brand's
# neighbouring sub-clauses as written.
_SUB_CLAUSE = re.compile(r",(?=\s)")
_SUB_CLAUSE_MARKS = frozenset(",")
# The words a list of brands is written with: a sub-clause of brand names and these only
# ("Acme", "and Globex") is an item of a list, not a clause of its own.
_LIST_WORDS = frozenset(
    ("and", "or", "nor", "plus", "also", "both", "either", "neither", "the", "s", "&")
)
_WORD = re.compile(r"[^\W_]+|&")
_LIST_START = re.compile(r"\W*(?:(?:and|or|nor|plus)\b|&)", re.IGNORECASE)


def sub_clauses(text: str, named: Mapping[str, Spans]) -> list[tuple[int, int]]:
    """``(start, end)`` of each clause of ``text`` (``clauses``), a clause that names two
    or more distinct brands split further at its commas (``_SUB_CLAUSE``) so that
    each brand gets the sub-clause naming it: "Globex is great, Acme is awful" is two.
    Within such a clause:

    - a sub-clause of brand names only (a list item: "Acme", "and Globex") joins the
      sub-clause after it when that one names a brand too ("Acme, Globex and Initech are
      all down"); a run of items that closes a list ("…, Globex, and Initech") or ends
      the clause joins the sub-clause before it ("We tried Acme, Globex, and Initech");
      any other item stands alone, and what follows it is its own ("Globex is great,
      Acme, on the other hand, is awful");
    - the sub-clauses that name no brand at the start of the clause belong to the first
      one that names one ("After three outages, Acme is gone, Globex it is"); those after
      a brand's sub-clause are left to ``brand_clauses``, which gives them to it.

    A clause naming one brand, or none, is kept whole. Linear in ``len(text)`` and the
    number of spans."""
    every = sorted((s, e, b) for b, sp in named.items() for s, e in sp)
    starts = [s for s, _, _ in every]
    out: list[tuple[int, int]] = []
    for start, end in clauses(text):
        lo, hi = bisect_left(starts, start), bisect_left(starts, end)
        if len({b for _, _, b in every[lo:hi]}) < 2:
            out.append((start, end))
            continue
        out.extend(_split_clause(text, start, end, every[lo:hi]))
    return out


@dataclass(slots=True)
class _Piece:
    """A sub-clause of ``_split_clause``, or a run of them joined."""

    start: int
    end: int
    names: bool  # names a brand
    bare: bool  # brand names and list words only: an item of a list
    closes: bool  # starts with "and", "or"…: the last item of a list


def _split_clause(
    text: str, start: int, end: int, inside: Sequence[tuple[int, int, str]]
) -> list[tuple[int, int]]:
    """``sub_clauses``'s split of one clause, given the brand spans that start in it."""
    starts = [s for s, _, _ in inside]
    pieces: list[_Piece] = []
    pos = start
    for cut in [*(m.start() for m in _SUB_CLAUSE.finditer(text, start, end)), end]:
        i = bisect_left(starts, cut)
        if i > 0 and inside[i - 1][1] > cut:
            continue  # inside a brand's span (a link)
        if text[pos:cut].strip():
            lo = bisect_left(starts, pos)
            rest, at = [], pos
            for s, e, _ in inside[lo:i]:
                rest.append(text[at:s])
                at = max(at, e)
            rest.append(text[at:cut])
            words = _WORD.findall(" ".join(rest).lower())
            bare = i > lo and all(w in _LIST_WORDS for w in words)
            closes = _LIST_START.match(text, pos, cut) is not None
            pieces.append(_Piece(pos, cut, i > lo, bare, closes))
        pos = cut + 1
    # A list item joins the sub-clause after it when that one names a brand.
    runs: list[_Piece] = []
    for p in pieces:
        if runs and runs[-1].bare and p.names:
            runs[-1].end, runs[-1].bare = p.end, p.bare
            runs[-1].closes = runs[-1].closes or p.closes
        else:
            runs.append(p)
    # A run of items that closes a list, or ends the clause, joins the one before it.
    joined: list[_Piece] = []
    for n, p in enumerate(runs):
        if p.bare and (p.closes or n == len(runs) - 1) and joined and joined[-1].names:
            joined[-1].end = p.end
        else:
            joined.append(p)
    # Brandless sub-clauses at the start belong to the first one naming a brand.
    first = next((n for n, p in enumerate(joined) if p.names), 0)
    joined[first].start = start
    return [(p.start, p.end) for p in joined[first:]]


def brand_clauses(
    text: str, spans: Spans, named: Mapping[str, Spans] | None = None
) -> list[tuple[int, int]]:
    """The clauses of ``text`` that hold one of ``spans`` (in order, each once).

    With ``named`` (every brand's spans), the clauses are ``sub_clauses`` (a clause
    naming two brands is split between them), and the clauses that name no brand after
    each of those are taken too, up to the next clause that names one: "Halcyra has the
    best reporting, but their pricing is brutal" says "their pricing is brutal" of
    Halcyra."""
    # Sorted starts and bisection: a hostile text of a thousand clauses and a thousand
    # brand names costs thousands of steps, not millions.
    own_starts = sorted(s for s, _ in spans)
    named_starts = sorted(s for sp in named.values() for s, _ in sp) if named is not None else []

    def holds(starts: list[int], c: tuple[int, int]) -> bool:
        i = bisect_left(starts, c[0])
        return i < len(starts) and starts[i] < c[1]

    hit: list[tuple[int, int]] = []
    carrying = False
    for c in clauses(text) if named is None else sub_clauses(text, named):
        own = holds(own_starts, c)
        if own or (carrying and not holds(named_starts, c)):
            if not hit or hit[-1] != c:
                hit.append(c)
            carrying = named is not None
        else:
            carrying = False
    return hit


# A preference between two brands that the words around them state without any word of
# sentiment: "moved from X to Y", "replaced X with Y", "Y instead of X", "X is faster
# than Y". VADER reads none of them; an annotator reads each as a verdict on both.
_SWITCH_VERB = (
    r"\b(?:switch|mov|migrat|went|go|churn|transition|port|jump|upgrad|chang)\w*\b"
    r"[^.!?;\n]{0,40}?\bfrom\s+$"
)
# (pattern before the first brand, pattern of the words between the two; the first
# brand is the one left behind)
_LEFT_THEN_CHOSEN = (
    (
        re.compile(_SWITCH_VERB, re.I),
        re.compile(r"^(?:['’]s)?(?:\s+[\w-]+){0,2}?\s+(?:to|onto|for)\s+$", re.I),
    ),
    (re.compile(r"\b(?:replac|swap)\w*\s+$", re.I), re.compile(r"^\s+(?:with|for|by)\s+$", re.I)),
    (
        re.compile(r"\b(?:left|leav\w*|ditch\w*|dropp\w*|dump\w*|quit\w*|off)\s+$", re.I),
        re.compile(r"^\s+(?:and\s+)?(?:for|to|onto|in favou?r of)\s+$", re.I),
    ),
    (
        re.compile(r"\b(?:goodbye|bye|farewell)\s+$", re.I),
        re.compile(r"^\W{0,3}\s*(?:hello|hi|welcome)\s+$", re.I),
    ),
)
# (pattern before the first brand, pattern between; the first brand is the one chosen)
_CHOSEN_THEN_LEFT = (
    (None, re.compile(r"^[^.!?;\n]{0,40}?\binstead of\s+$", re.I)),
    (
        re.compile(
            r"\b(?:chose|choose|picked|pick|prefer\w*|went with|go with|recommend\w*)\s+$", re.I
        ),
        re.compile(r"^\s+over\s+$", re.I),
    ),
    (None, re.compile(r"^[^.!?;\n]{0,60}?\b(?:beats?|outperforms?|outclass\w*)\s+$", re.I)),
)
# "X is <better> than Y": which comparatives say which brand is preferred. Price words
# are left out on purpose: "more expensive than Y and worth every cent" is no verdict.
_BETTER = (
    r"better|faster|quicker|easier|simpler|cleaner|smoother|snappier|nicer|friendlier|"
    r"superior|more (?:reliable|stable|polished|intuitive|flexible)"
)
_WORSE = (
    r"worse|slower|clunkier|buggier|flakier|harder|uglier|inferior|"
    r"less (?:reliable|stable|polished|intuitive|flexible)|more (?:confusing|complicated)"
)
_COMPARED = re.compile(
    rf"^[^.!?;\n]{{0,60}}?\b(?:(?P<better>{_BETTER})|(?P<worse>{_WORSE}))\b"
    r"[^.!?;\n]{0,30}?\bthan\s+$",
    re.I,
)
_NEGATED = re.compile(r"\b(?:not|no|never|nowhere|\w+n['’]t)\b", re.I)
# How much text before the first brand, and between the two, a construction may take:
# no construction is longer, and the patterns then cost a bounded time on any text.
_BEFORE_CHARS = 60
_GAP_CHARS = 100
# The verdict a preference implies, written as the word an annotator would use for it,
# so that the lexicon weighs it with the rest of the brand's clauses (VADER: +1.9 / −2.1).
CHOSEN_CUE = "better"
LEFT_CUE = "worse"


def preferences(text: str, spans: Mapping[str, Spans]) -> list[tuple[str, str, int]]:
    """``(chosen, left, where)`` for each preference between two brands that ``text``
    states by construction (``_LEFT_THEN_CHOSEN``, ``_CHOSEN_THEN_LEFT``, ``_COMPARED``);
    ``where`` is the start of the left-behind brand's span. Only brands named next to
    each other are compared."""
    named = sorted((s, e, brand) for brand, sp in spans.items() for s, e in widen_to_urls(text, sp))
    out: list[tuple[str, str, int]] = []
    for (s1, e1, first), (s2, _, second) in pairwise(named):
        if first == second or s2 - e1 > _GAP_CHARS:
            continue
        before, gap = text[max(0, s1 - _BEFORE_CHARS) : s1], text[e1:s2]
        if any(b.search(before) and g.search(gap) for b, g in _LEFT_THEN_CHOSEN):
            out.append((second, first, s1))
            continue
        if any((b is None or b.search(before)) and g.search(gap) for b, g in _CHOSEN_THEN_LEFT):
            out.append((first, second, s2))
            continue
        m = _COMPARED.search(gap)
        if m is None:
            continue
        first_better = (m.group("better") is not None) != bool(_NEGATED.search(gap))
        out.append((first, second, s2) if first_better else (second, first, s1))
    return out


def clause_text(text: str, spans: Mapping[str, Spans], target: str) -> str:
    """What the clause-scoped lexicon reads for ``target``: the clauses naming it, and
    the clauses after them that name no brand (``brand_clauses``; a clause naming two
    brands is split between them first, ``sub_clauses``), with every brand
    masked (``PLACEHOLDER``: a brand's own name carries no valence), joined. Where the
    text prefers another brand to ``target`` by construction (``preferences``), the
    clause that says so reads ``LEFT_CUE`` instead (its words are about the switch or
    the other brand); where it prefers ``target``, ``CHOSEN_CUE`` is added. The whole
    masked text if ``target`` has no span."""
    widened = {b: widen_to_urls(text, sp) for b, sp in spans.items()}
    own = widened.get(target, [])
    masked, _ = mark_target(text, spans, "")  # every brand written PLACEHOLDER
    if not own:
        return masked
    every = sorted((s, e, b) for b, sp in widened.items() for s, e in sp)
    starts = [s for s, _, _ in every]
    prefs = preferences(text, spans) if len(spans) > 1 else []
    left_at = [at for _, left, at in prefs if left == target]
    chosen = any(c == target for c, _, _ in prefs)
    # Clauses are found in the original text, so offsets are mapped through the masking:
    # mask each clause on its own instead.
    out: list[str] = []
    skipping = False
    after = -1  # where the last clause read ended (-1: after a cue)
    for start, end in brand_clauses(text, own, named=widened):
        lo, hi = bisect_left(starts, start), bisect_left(starts, end)
        if any(start <= at < end for at in left_at):
            # The clause of the switch, and the brandless ones after it (the reasons for
            # it), are about the brand chosen: the one left behind reads the verdict only.
            out.extend((". ", LEFT_CUE))
            skipping, after = True, -1
            continue
        if skipping and hi == lo:
            continue
        skipping = False
        inside: dict[str, list[tuple[int, int]]] = {}
        for s, e, b in every[lo:hi]:
            inside.setdefault(b, []).append((s - start, e - start))
        piece = mark_target(text[start:end], inside, "")[0].strip()
        if piece:
            # Two sub-clauses of one sentence (``sub_clauses``) are read as written.
            neighbours = after >= 0 and after + 1 == start and text[after] in _SUB_CLAUSE_MARKS
            out.extend((", " if neighbours else ". ", piece))
            after = end
    if chosen:
        out.extend((". ", CHOSEN_CUE))
    return "".join(out[1:])
