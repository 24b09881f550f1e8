"""Terms and themes that rose between two periods, from samples of mention texts. Pure.

A term is a word of three or more letters that is not a stop word and not part of a
tracked brand's name; a theme is a hashtag. Each period is represented by a sample of
its mentions (see ``reports.queries.text_sample``), so counts are compared as rates per
sampled mention: a term "rose" when its rate in the period exceeds its rate before.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_TEXT_CHARS = 2_000  # of each text: bounded work per sampled mention
MIN_COUNT = 2  # a term seen once in the sample is noise, not a trend

_WORD = re.compile(r"(?<![#@\w])[^\W\d_]{3,40}(?!\w)", re.UNICODE)
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
    before does doing down during few just more own then once why yes yet off got gets
    able amp via rt lol omg today tomorrow yesterday week year years people anyone someone
    something anything everything nothing thanks thank please im ive dont cant wont didnt
    doesnt isnt arent wasnt youre theyre thats whats there's it's i'm i've can't don't
    der die das und ist nicht mit den dem des ein eine einen für auf sich auch als wie
    les des une est pas pour que qui dans sur avec plus par ses aux
    los las una por con para como más pero sus del esta este
    """.split()  # noqa: SIM905 (a list of 190 words reads better as text)
)


@dataclass(frozen=True, slots=True)
class TermChange:
    term: str
    count: int  # in the period's sample
    previous_count: int  # in the previous period's sample
    rate: float  # per sampled mention
    previous_rate: float


def terms_of(text: str, exclude: frozenset[str]) -> tuple[set[str], set[str]]:
    """The distinct terms and hashtags of one text (a text counts a term once)."""
    text = _URL.sub(" ", text[:MAX_TEXT_CHARS])
    words = {
        w
        for w in (m.group(0).casefold() for m in _WORD.finditer(text))
        if w not in STOP_WORDS and w not in exclude
    }
    tags = {m.group(1).casefold() for m in _HASHTAG.finditer(text)}
    return words, {t for t in tags if t not in exclude}


def brand_words(names: Iterable[str]) -> frozenset[str]:
    """Words of brand names, casefolded: a report on Acme should not say "acme" rose."""
    out: set[str] = set()
    for n in names:
        out.update(w.casefold() for w in re.findall(r"\w+", n))
    return frozenset(out)


def count_terms(texts: Iterable[str], exclude: frozenset[str]) -> tuple[Counter[str], Counter[str]]:
    words: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    for t in texts:
        w, h = terms_of(t, exclude)
        words.update(w)
        tags.update(h)
    return words, tags


def rising(
    current: Counter[str], current_n: int, previous: Counter[str], previous_n: int, limit: int
) -> list[TermChange]:
    """Terms whose rate per sampled mention rose most (ties: more mentions first)."""
    if current_n == 0:
        return []
    out = []
    for term, n in current.items():
        if n < MIN_COUNT:
            continue
        rate = n / current_n
        prev = previous.get(term, 0)
        prev_rate = prev / previous_n if previous_n else 0.0
        if rate > prev_rate:
            out.append(TermChange(term, n, prev, rate, prev_rate))
    out.sort(key=lambda c: (-(c.rate - c.previous_rate), -c.count, c.term))
    return out[:limit]


def top_terms(counts: Counter[str], limit: int) -> list[tuple[str, int]]:
    return sorted(
        ((t, n) for t, n in counts.items() if n >= MIN_COUNT), key=lambda x: (-x[1], x[0])
    )[:limit]


def sample_texts(docs: Sequence[str]) -> list[str]:
    """Texts from stored ``scored_mention.v1`` documents (a broken one is skipped)."""
    import orjson

    out = []
    for d in docs:
        try:
            text = orjson.loads(d).get("text")
        except orjson.JSONDecodeError:
            continue
        if isinstance(text, str):
            out.append(text)
    return out
