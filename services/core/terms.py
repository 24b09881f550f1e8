"""Terms and themes that rose between two sets of mention texts. Pure.

One module for every feature that names rising terms (an alert's ``top_terms``, an
executive report's rising terms and themes), so that for the same texts they name the
same terms.

A term is a word of three to forty letters (an inner apostrophe allowed, a possessive
"'s" dropped) that is not a stop word and not a word of an excluded name (the brand: a
report on Acme should not say "acme" rose); URLs, @handles and numbers are not terms. A
theme is a hashtag. A text counts each term once, so counts are of texts, and a period
is compared with the one before as a rate per text.

A term "rose" when it is in at least ``MIN_COUNT`` texts of the period and its rate rose
at least ``MIN_RATIO``-fold against the previous period's, with a weak prior (half a text
in five) that keeps a thin reference from making every word look new and a word never
seen before from dividing by zero. The strongest come first: count × log ratio.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

MAX_TEXT_CHARS = 2_000  # of each text: bounded work per mention
MIN_COUNT = 2  # a term in one text is noise, not a trend
MIN_RATIO = 2.0

_WORD = re.compile(r"(?<![#@\w])[^\W\d_]+(?:['’][^\W\d_]+)*(?!\w)", re.UNICODE)
_HASHTAG = re.compile(r"(?<![\w#])#(\w{2,60})", re.UNICODE)
_URL = re.compile(r"https?://\S+")

STOP_WORDS = frozenset(
    """
    the and for are but not you all any can had her was one our out day get has him his how
    man new now old see two way who boy did its let put say she too use that with have this
    will your from they know want been good much some time very when come here just like
    long make many more only over such take than them well were what about after again also
    back being both could each even first into most other same should still their there
    these thing think those through under until where which while would really because
    before does doing done down during few more own then once why yes yet off got gets
    able amp via rt lol omg today tomorrow yesterday week year years people anyone someone
    something anything everything nothing thanks thank please im ive dont cant wont didnt
    doesnt isnt arent wasnt youre theyre thats whats
    i'm i've i'll i'd you're you've you'll you'd we're we've we'll we'd they're they've
    they'll they'd can't don't won't isn't aren't wasn't weren't hasn't haven't hadn't
    doesn't didn't couldn't shouldn't wouldn't
    http https www com
    der die das und ist nicht mit den dem des ein eine einen für auf sich auch als wie
    les des une est pas pour que qui dans sur avec plus par ses aux
    los las una por con para como más pero sus del esta este
    """.split()  # noqa: SIM905 (a list of 238 words reads better as text)
)


@dataclass(frozen=True, slots=True)
class RisingTerm:
    term: str
    count: int  # texts of the period containing it
    previous_count: int  # texts of the previous period containing it
    rate: float  # per text of the period
    previous_rate: float  # per text of the previous period (0 when it has none)
    ratio: float  # rate against the previous rate, with the prior; 2 decimals


def _word(token: str) -> str:
    w = token.casefold().replace("’", "'")
    return w[:-2] if w.endswith("'s") else w


def terms_of(text: str, exclude: frozenset[str]) -> tuple[set[str], set[str]]:
    """The distinct terms and hashtags of one text, casefolded, without ``exclude``."""
    text = _URL.sub(" ", text[:MAX_TEXT_CHARS])
    words = {
        w
        for w in (_word(m.group(0)) for m in _WORD.finditer(text))
        if 3 <= len(w) <= 40 and w not in STOP_WORDS and w not in exclude
    }
    tags = {m.group(1).casefold() for m in _HASHTAG.finditer(text)}
    return words, {t for t in tags if t not in exclude}


def brand_words(names: Iterable[str]) -> frozenset[str]:
    """The words of brand names, casefolded: what ``terms_of`` should exclude."""
    out: set[str] = set()
    for n in names:
        out.update(w.casefold() for w in re.findall(r"\w+", n))
    return frozenset(out)


def count_terms(texts: Iterable[str], exclude: frozenset[str]) -> tuple[Counter[str], Counter[str]]:
    """How many of ``texts`` contain each term, and each hashtag."""
    words: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    for t in texts:
        w, h = terms_of(t, exclude)
        words.update(w)
        tags.update(h)
    return words, tags


def rising(
    current: Counter[str], current_n: int, previous: Counter[str], previous_n: int, limit: int
) -> list[RisingTerm]:
    """The at most ``limit`` terms of ``current`` (counts over ``current_n`` texts) that
    rose against ``previous`` (over ``previous_n``), strongest first."""
    if current_n == 0:
        return []
    out = []
    for term, n in current.items():
        if n < MIN_COUNT:
            continue
        prev = previous.get(term, 0)
        ratio = (n / current_n) / ((prev + 0.5) / (previous_n + 5))
        if ratio >= MIN_RATIO:
            prev_rate = prev / previous_n if previous_n else 0.0
            out.append(RisingTerm(term, n, prev, n / current_n, prev_rate, round(ratio, 2)))
    out.sort(key=lambda t: (-t.count * math.log(t.ratio), t.term))
    return out[:limit]


def rising_terms(
    texts: Sequence[str], previous_texts: Sequence[str], exclude: frozenset[str], limit: int
) -> list[RisingTerm]:
    """The terms (not hashtags) of ``texts`` that rose against ``previous_texts``."""
    words, _ = count_terms(texts, exclude)
    before, _ = count_terms(previous_texts, exclude)
    return rising(words, len(texts), before, len(previous_texts), limit)


def top_terms(counts: Counter[str], limit: int) -> list[tuple[str, int]]:
    """The most frequent terms (in at least ``MIN_COUNT`` texts), with their counts."""
    return sorted(
        ((t, n) for t, n in counts.items() if n >= MIN_COUNT), key=lambda x: (-x[1], x[0])
    )[:limit]


def document_texts(docs: Sequence[str]) -> list[str]:
    """The texts of stored ``scored_mention.v1`` documents (a broken one is skipped)."""
    out = []
    for d in docs:
        try:
            text = orjson.loads(d).get("text")
        except orjson.JSONDecodeError:
            continue
        if isinstance(text, str):
            out.append(text)
    return out
