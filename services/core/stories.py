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

Pairs are found exactly, with a prefix filter (the set-similarity join's, Chaudhuri et al.
2006; Bayardo et al. 2007) and a sparse matrix product (scipy). Shingles are ordered
rarest first; a pair that is ``THRESHOLD`` alike must share at least ``a`` shingles (``a``
from the two sizes), so each text's ``PREFIX_MATCHES`` rarest shared shingles lie within
the first ``size - a + PREFIX_MATCHES`` of both. The product of those prefixes (texts as
rows of a binary text × shingle matrix, ``BLOCK_ROWS`` rows at a time, upper triangle
only) names the candidate pairs; each candidate's whole overlap is then counted and its
Jaccard taken as ``jaccard`` does. So the pairs found are exactly those at or above
``THRESHOLD`` (recall and precision 1, no sketch to tune), without counting the overlap of
every pair that shares only common shingles ("the ", a brand's name). It replaced every
pair's overlap from one product (3× slower on the report's samples), which had replaced
MinHash LSH (datasketch; slower still, and only bounded recall):
``tests/bench/bench_stories.py`` measures them against all pairs compared in Python
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
# Rarest shingles two alike texts are sure to share within their prefixes (at most the
# fewest any pair must share): more makes the prefixes longer and the candidates fewer.
PREFIX_MATCHES = 8
VERIFY_PAIRS = 50_000  # candidate pairs checked at once: bounds the rows gathered
MIN_CHARS = 24  # of the reduced text
MAX_TEXT_CHARS = 1_000  # of each text: bounded work per mention
MIN_STORY_SIZE = 3  # mentions: two copies are a coincidence as often as a story
SAMPLE_TEXT_CHARS = 280
TOP_AUTHORS = 5

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@\w+")
_RT = re.compile(r"^\s*(?:rt|via)\b\s*:?", re.IGNORECASE)
_VIA = re.compile(r"\b(?:via|h/t|ht)\s*$", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # a letter or digit is never whitespace


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
    t = text[:MAX_TEXT_CHARS]
    # Each regex runs only where it can match (a third of the report's story time went
    # to searching texts without a link or a handle): under IGNORECASE only the ASCII
    # letters themselves match h, t, p and w.
    low = t.lower()
    if "http" in low or "www." in low:
        t = _URL.sub(" ", t)
    t = _RT.sub(" ", t)
    if "@" in t:
        t = _HANDLE.sub(" ", t)
    t = t.rstrip(" :-—|")
    # A trailing "via" ends where the trailing whitespace starts: search only the last
    # four characters before it (one more than the word, for its boundary).
    tail = max(0, len(t.rstrip()) - 4)
    t = t[:tail] + _VIA.sub(" ", t[tail:])
    return " ".join(_WORD.findall(t.casefold()))


def shingles(text: str) -> frozenset[str]:
    """The character ``SHINGLE``-grams of the reduced text (empty when it is too short)."""
    return _reduced_shingles(reduce_text(text))


def _reduced_shingles(r: str) -> frozenset[str]:
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


def _min_overlaps(sizes: np.ndarray, threshold: float) -> np.ndarray:
    """For each set size ``s``, the fewest shared shingles ``a`` (at least 1) with which a
    set of that size can be ``threshold`` alike with any other, by the very float test of
    ``_alike``: the Jaccard of a pair sharing ``a`` is at most ``a / s`` (the other set is
    then ``a`` shingles, all shared), and that quotient only grows with ``a``."""
    s = sizes.astype(np.float64)
    a = np.maximum(np.ceil(threshold * s), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        while (down := (a > 1) & ((a - 1) / s >= threshold)).any():
            a[down] -= 1
        while (up := (a <= s) & ~(a / s >= threshold)).any():
            a[up] += 1
    return a.astype(np.int64)


def _alike(inter: np.ndarray, size_i: np.ndarray, size_j: np.ndarray, threshold: float) -> Any:
    # Integers below 2**53 are exact in float64 and one IEEE division is correctly rounded,
    # so this is the very number ``jaccard`` computes for the pair.
    inter = inter.astype(np.float64)
    return inter / (size_i + size_j - inter) >= threshold


def _pairs(rows: np.ndarray, columns: np.ndarray, n: int, threshold: float) -> set[tuple[int, int]]:
    """The pairs of rows ``threshold`` alike, rows given as ``(row, column)`` entries of a
    binary matrix (a column is a shingle; repeated entries count once)."""
    pairs: set[tuple[int, int]] = set()
    if not len(columns):
        return pairs
    width = int(columns.max()) + 1
    # One order of the shingles, rarest first (any fixed order is correct; rare first
    # keeps the prefixes' product sparse), and each row's shingles sorted by it.
    rank = np.empty(width, dtype=np.int64)
    rank[np.argsort(np.bincount(columns, minlength=width), kind="stable")] = np.arange(width)
    keys = np.sort(rows * width + rank[columns])
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    rows, ranked = keys // width, keys % width
    sizes = np.bincount(rows, minlength=n)
    starts = np.concatenate(([0], np.cumsum(sizes)))
    need = _min_overlaps(sizes, threshold)
    live = sizes >= need
    if not live.any():
        return pairs
    # A pair alike shares a >= max(need_i, need_j) >= k shingles. A row's prefix, its
    # first s - need + k by rank, leaves out need - k <= a - k of them, so it holds at
    # least k shared ones, hence the k rarest shared ones (a prefix holds every shingle
    # of its row up to some rank): both prefixes hold those k.
    k = int(min(PREFIX_MATCHES, need[live].min()))
    prefix_len = np.where(live, sizes - need + k, 0)
    in_prefix = np.arange(len(keys)) - starts[rows] < prefix_len[rows]
    ones = np.ones(len(keys), dtype=np.int32)
    x = csr_matrix((ones, ranked, starts), shape=(n, width))
    p_rows = rows[in_prefix]
    p_starts = np.concatenate(([0], np.cumsum(np.bincount(p_rows, minlength=n))))
    p = csr_matrix((ones[in_prefix], ranked[in_prefix], p_starts), shape=(n, width))
    size = sizes.astype(np.float64)
    for first in range(0, n, BLOCK_ROWS):
        # A block against itself and the rows after it: the lower triangle is never built.
        shared = (p[first : first + BLOCK_ROWS] @ p[first:].T).tocoo()
        i = shared.row.astype(np.int64) + first
        j = shared.col.astype(np.int64) + first
        candidate = (i < j) & (shared.data >= k)
        i, j = i[candidate], j[candidate]
        for c in range(0, len(i), VERIFY_PAIRS):
            ci, cj = i[c : c + VERIFY_PAIRS], j[c : c + VERIFY_PAIRS]
            inter = np.asarray(x[ci].multiply(x[cj]).sum(axis=1)).ravel()
            alike = _alike(inter, size[ci], size[cj], threshold)
            pairs.update(zip(ci[alike].tolist(), cj[alike].tolist(), strict=True))
    return pairs


def near_duplicate_pairs(
    sets: Sequence[frozenset[str]], threshold: float = THRESHOLD
) -> set[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, whose shingle sets are at least ``threshold`` alike
    (Jaccard), all found: the same pairs as ``exact_pairs``."""
    vocabulary: dict[str, int] = {}
    columns: list[int] = []
    for s in sets:
        columns.extend(vocabulary.setdefault(g, len(vocabulary)) for g in s)
    rows = np.repeat(np.arange(len(sets), dtype=np.int64), [len(s) for s in sets])
    return _pairs(rows, np.asarray(columns, dtype=np.int64), len(sets), threshold)


def _shingle_entries(reduced: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """The shingles of every reduced text (``reduce_text``) as ``(row, column)`` entries,
    one column per distinct shingle (repeats within a text included), computed on arrays:
    each character becomes its rank among the characters present, and a shingle the
    base-``alphabet`` number of its ``SHINGLE`` ranks, which is one number per string.
    ``None`` when the alphabet is too large for that number to fit in 63 bits."""
    kept = [r if len(r) >= MIN_CHARS else "" for r in reduced]
    lengths = np.fromiter((len(r) for r in kept), dtype=np.int64, count=len(kept))
    joined = "".join(kept)
    if not joined:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # surrogatepass: a lone surrogate (valid in a JSON string) is one code point too.
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    alphabet, chars = np.unique(points, return_inverse=True)
    if len(alphabet) ** SHINGLE >= 2**63:
        return None
    chars = chars.astype(np.int64).ravel()
    last = len(chars) - SHINGLE + 1
    codes = chars[:last].copy()
    for offset in range(1, SHINGLE):
        codes *= len(alphabet)
        codes += chars[offset : offset + last]
    row_of = np.repeat(np.arange(len(kept), dtype=np.int64), lengths)[:last]
    ends = np.cumsum(lengths)
    # A shingle starting within SHINGLE - 1 characters of its text's end crosses into
    # the next text: not one of this text's.
    inside = np.arange(last) + SHINGLE <= ends[row_of]
    _, columns = np.unique(codes[inside], return_inverse=True)
    return row_of[inside], columns.astype(np.int64).ravel()


def text_pairs(texts: Sequence[str], threshold: float = THRESHOLD) -> set[tuple[int, int]]:
    """``near_duplicate_pairs`` of the texts' ``shingles``, the same pairs, without a
    Python set of strings per text."""
    return _reduced_pairs([reduce_text(t) for t in texts], threshold)


def _reduced_pairs(reduced: Sequence[str], threshold: float) -> set[tuple[int, int]]:
    entries = _shingle_entries(reduced)
    if entries is None:
        return near_duplicate_pairs([_reduced_shingles(r) for r in reduced], threshold)
    return _pairs(*entries, len(reduced), threshold)


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
    return reduced_clusters([reduce_text(t) for t in texts], threshold)


def reduced_clusters(reduced: Sequence[str], threshold: float = THRESHOLD) -> list[list[int]]:
    """``clusters`` of texts already reduced (``reduce_text``); such a text has shingles
    when it is at least ``MIN_CHARS`` long."""
    return components(len(reduced), _reduced_pairs(reduced, threshold))


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
