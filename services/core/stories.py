"""Stories: near-duplicate and syndicated mentions clustered into one story each. Pure.

One module for every feature that counts stories (an alert's ``story`` and the executive
report's "stories of the period"), so that a text syndicated 300 times is one story with
its combined reach wherever Sentimon names it.

A text is reduced to what a copy keeps: casefolded, without URLs, @handles, a leading
"RT"/"via @x", hashtag signs and punctuation; then to its set of character 5-grams
(``SHINGLE``). Two texts are near-duplicates when the Jaccard similarity of those sets is
at least ``THRESHOLD``: a retweet, the same headline with another link or another
handle, or a copy with a word changed stays above it; two people saying the same thing in
their own words stay far below. Texts shorter than ``MIN_CHARS`` once reduced ("acme is
down") are left out: identical short complaints are a chorus, not a story.

Every pair's overlap is counted at once, exactly, as a sparse matrix product (scipy): the
texts as rows of a binary text × shingle matrix ``X``, ``X Xᵀ`` holds the size of every
pair's intersection, from which the Jaccard follows. So the pairs found are exactly those
at or above ``THRESHOLD`` (recall and precision 1, no sketch to tune); the product is taken
``BLOCK_ROWS`` texts at a time, which bounds its memory. It replaced MinHash LSH
(datasketch), which was 7.6× slower on the report's 2,000 texts and only bounded recall:
``tests/bench/bench_stories.py`` measures both against all pairs compared in Python
(``docs/benchmarks.md``). Clusters are the connected components of the near-duplicate pairs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix  # type: ignore[import-untyped]

SHINGLE = 5  # characters: short texts keep enough of them for one edited word to matter little
THRESHOLD = 0.5  # Jaccard of the shingle sets
# Texts per slice of the pair product: its memory is at most BLOCK_ROWS × texts overlaps.
BLOCK_ROWS = 1_000
MIN_CHARS = 24  # of the reduced text
MAX_TEXT_CHARS = 1_000  # of each text: bounded work per mention
MIN_STORY_SIZE = 3  # mentions: two copies are a coincidence as often as a story
SAMPLE_TEXT_CHARS = 280
TOP_AUTHORS = 5

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@\w+")
_RT = re.compile(r"^\s*(?:rt|via)\b\s*:?", re.IGNORECASE)
_VIA = re.compile(r"\b(?:via|h/t|ht)\s*$", re.IGNORECASE)
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Post:
    """One mention as a story sees it; ``followers`` is its author's reach."""

    source: str
    id: str
    text: str
    author: str  # the handle, without "@"
    followers: int
    created_at: datetime
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Story:
    """A cluster of near-duplicate posts; ``first`` is the earliest."""

    posts: tuple[Post, ...]
    first: Post
    combined_reach: int  # followers summed over the posts (the reports' reach)

    @property
    def size(self) -> int:
        return len(self.posts)

    def as_dict(self, window_size: int) -> dict[str, Any]:
        """The ``story`` object of ``schemas/alert.v2.json``; ``window_size`` is the
        number of mentions the story was found among (its share's denominator)."""
        return {
            "size": self.size,
            "first_mention_id": self.first.id,
            "first_source": self.first.source,
            "first_author": self.first.author,
            "first_posted_at": self.first.created_at.astimezone(UTC).isoformat(),
            "first_url": self.first.url,
            "combined_reach": self.combined_reach,
            "sample_text": self.first.text[:SAMPLE_TEXT_CHARS],
            "share_of_window": round(self.size / window_size, 4) if window_size else 0.0,
        }


def reduce_text(text: str) -> str:
    """What a copy of ``text`` keeps: casefolded words and numbers, single-spaced."""
    t = _URL.sub(" ", text[:MAX_TEXT_CHARS])
    t = _RT.sub(" ", t)
    t = _HANDLE.sub(" ", t)
    t = _VIA.sub(" ", t.rstrip(" :-—|"))
    return " ".join(_NON_WORD.sub(" ", t.casefold()).split())


def shingles(text: str) -> frozenset[str]:
    """The character ``SHINGLE``-grams of the reduced text (empty when it is too short)."""
    r = reduce_text(text)
    if len(r) < MIN_CHARS:
        return frozenset()
    return frozenset(r[i : i + SHINGLE] for i in range(len(r) - SHINGLE + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


class _Components:
    """Union-find over indices 0…n-1."""

    def __init__(self, n: int) -> None:
        self._parent = list(range(n))

    def find(self, i: int) -> int:
        while self._parent[i] != i:
            self._parent[i] = self._parent[self._parent[i]]
            i = self._parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self._parent[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self._parent)):
            out.setdefault(self.find(i), []).append(i)
        return list(out.values())


def near_duplicate_pairs(
    sets: Sequence[frozenset[str]], threshold: float = THRESHOLD
) -> set[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, whose shingle sets are at least ``threshold`` alike
    (Jaccard), all found: the same pairs as ``exact_pairs``, from one sparse product."""
    vocabulary: dict[str, int] = {}
    columns: list[int] = []
    row_ends = [0]
    for s in sets:
        columns.extend(vocabulary.setdefault(g, len(vocabulary)) for g in s)
        row_ends.append(len(columns))
    pairs: set[tuple[int, int]] = set()
    if not columns:
        return pairs
    indptr = np.asarray(row_ends, dtype=np.int64)
    x = csr_matrix(
        (np.ones(len(columns), dtype=np.int32), np.asarray(columns, dtype=np.int64), indptr),
        shape=(len(sets), len(vocabulary)),
    )
    sizes = np.diff(indptr).astype(np.float64)
    for first in range(0, len(sets), BLOCK_ROWS):
        # A block against itself and the rows after it: the lower triangle is never built.
        overlap = (x[first : first + BLOCK_ROWS] @ x[first:].T).tocoo()
        i = overlap.row.astype(np.int64) + first
        j = overlap.col.astype(np.int64) + first
        upper = i < j
        i, j = i[upper], j[upper]
        inter = overlap.data[upper].astype(np.float64)
        # Integers below 2**53 are exact in float64 and one IEEE division is correctly
        # rounded, so this is the very number ``jaccard`` computes for the pair.
        alike = inter / (sizes[i] + sizes[j] - inter) >= threshold
        pairs.update(zip(i[alike].tolist(), j[alike].tolist(), strict=True))
    return pairs


def exact_pairs(
    sets: Sequence[frozenset[str]], threshold: float = THRESHOLD
) -> set[tuple[int, int]]:
    """Every pair at least ``threshold`` alike, all pairs compared one by one in Python
    (quadratic: the reference ``near_duplicate_pairs`` is tested and measured against)."""
    return {
        (i, j)
        for i in range(len(sets))
        for j in range(i + 1, len(sets))
        if jaccard(sets[i], sets[j]) >= threshold
    }


def components(n: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Indices 0…n-1 grouped by the connected components of ``pairs``, largest first."""
    comp = _Components(n)
    for i, j in pairs:
        comp.union(i, j)
    return sorted(comp.groups(), key=lambda g: (-len(g), g[0]))


def clusters(texts: Sequence[str], threshold: float = THRESHOLD) -> list[list[int]]:
    """Indices of ``texts`` grouped into near-duplicate clusters (connected components),
    largest first; a text with no near-duplicate is a cluster of one."""
    return components(len(texts), near_duplicate_pairs([shingles(t) for t in texts], threshold))


def stories(posts: Sequence[Post], min_size: int = MIN_STORY_SIZE) -> list[Story]:
    """The stories among ``posts`` with at least ``min_size`` posts, the largest first
    (then the widest reach, then the earliest)."""
    out = []
    for group in clusters([p.text for p in posts]):
        if len(group) < min_size:
            continue
        members = tuple(posts[i] for i in group)
        first = min(members, key=lambda p: (p.created_at, p.source, p.id))
        out.append(Story(members, first, sum(p.followers for p in members)))
    out.sort(key=lambda s: (-s.size, -s.combined_reach, s.first.created_at, s.first.id))
    return out


def largest_story(posts: Sequence[Post], min_size: int = MIN_STORY_SIZE) -> Story | None:
    found = stories(posts, min_size)
    return found[0] if found else None


def drivers(posts: Sequence[Post], limit: int = TOP_AUTHORS) -> dict[str, Any]:
    """Who drives a set of mentions: the authors with the most of them (then the widest
    reach) and the share of the one author and the one source with the most."""
    n = len(posts)
    by_author = Counter(p.author for p in posts)
    followers: dict[str, int] = {}
    for p in posts:
        followers[p.author] = max(followers.get(p.author, 0), p.followers)
    ranked = sorted(by_author, key=lambda a: (-by_author[a], -followers[a], a))[:limit]
    by_source = Counter(p.source for p in posts)
    top_source = min(by_source, key=lambda s: (-by_source[s], s)) if by_source else None
    return {
        "mentions": n,
        "authors": len(by_author),
        "top_authors": [
            {"handle": a, "mentions": by_author[a], "followers": followers[a]} for a in ranked
        ],
        "top_author_share": round(by_author[ranked[0]] / n, 4) if ranked else None,
        "top_source": top_source,
        "top_source_share": round(by_source[top_source] / n, 4) if top_source else None,
    }
