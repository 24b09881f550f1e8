"""Who is saying it: an author's role from their bio or title, and their influence.

Both are pure functions. ``author_role`` runs when a mention is stored (its result is a
column of ``mentions`` and a key of the per-role rollups), so it is bounded: it reads at
most ``MAX_BIO_CHARS`` of the name and of the bio, with patterns that cannot backtrack.

Roles
    ``decision_maker``: C-level, VP, director, head of, founder, owner, managing director,
    general manager, board member, president, and their common equivalents in German,
    French, Spanish, Italian, Portuguese, Dutch, Japanese and Chinese. Seniority wins: a
    "VP Marketing" or a CMO is a decision maker, since they hold the budget.
    ``marketing_pr``: marketing, PR and communications people below that level (marketer,
    brand or community manager, social media, content, growth, press, spokesperson…).
    ``other``: everyone else, and bios that say nothing. A title preceded by "former",
    "ex-", "retired", "aspiring" (and the same in the other languages) does not count.

Influence (0–100), over the mentions of an author in a report's period::

    influence = 100 × (0.5 × reach + 0.3 × engagement + 0.2 × conversation)
    reach        = min(1, log10(1 + followers) / 8)                # 1 at 100 M followers
    engagement   = min(1, log10(1 + engagement per mention) / 5)    # 1 at 100 k a mention
    conversation = min(1, log10(1 + replies per mention) / 3)       # 1 at 1,000 a mention

``followers`` is the author's largest follower count seen in the period; engagement is
likes + reposts + replies as the platform reported them, and replies is the platform's
reply count (how often others answer this author). Logarithms, because reach spans eight
orders of magnitude and one celebrity must not flatten every other voice to zero.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from functools import lru_cache


class AuthorRole(StrEnum):
    DECISION_MAKER = "decision_maker"
    MARKETING_PR = "marketing_pr"
    OTHER = "other"


ROLES: tuple[AuthorRole, ...] = tuple(AuthorRole)
MAX_BIO_CHARS = 2_000

# Latin-script titles, matched case-insensitively on word boundaries. Each alternative is
# a plain word or phrase (no nested quantifiers), so matching is linear in the text.
_DECISION_WORDS = (
    # English
    r"c[etfoimrpd]o",
    r"ciso",
    r"chief(?:\s+\w+){0,3}\s+officer",
    r"chief\s+executive",
    r"(?:s|e|a)?vp",
    r"vice[\s-]+president",
    r"president",
    r"(?:managing\s+|executive\s+|marketing\s+)?director",
    r"head\s+of",
    r"(?:co-?)?founder",
    r"(?:co-?)?owner",
    r"general\s+manager",
    r"board\s+member",
    r"chair(?:man|woman|person)?",
    r"managing\s+partner",
    # German
    r"gesch[äa]ftsf[üu]hrer(?:in)?",
    r"(?:mit)?gr[üu]nder(?:in)?",
    r"inhaber(?:in)?",
    r"vorstand(?:svorsitzende[rn]?)?",
    r"(?:bereichs|abteilungs|team)?leiter(?:in)?",
    r"direktor(?:in)?",
    # French
    r"(?:co-?)?fondat(?:eur|rice)",
    r"pdg",
    r"directeur",
    r"directrice",
    r"g[ée]rante?",
    r"pr[ée]sidente?",
    # Spanish, Portuguese, Italian
    r"(?:co-?)?fundador(?:a)?",
    r"director(?:a)?",
    r"diretor(?:a)?",
    r"gerente\s+general",
    r"propietari[oa]",
    r"propriet[áa]ri[oa]",
    r"due[ñn][oa]",
    r"jef[ea]\s+de",
    r"presidente",
    r"consejer[oa]\s+delegad[oa]",
    r"fondatore",
    r"fondatrice",
    r"amministratore\s+delegato",
    r"direttore",
    r"direttrice",
    r"titolare",
    r"s[óo]ci[oa]",
    # Dutch
    r"oprichter",
    r"eigenaar",
)
_MARKETING_WORDS = (
    r"marketing",
    r"marketer",
    r"public\s+relations",
    r"communications?",
    r"comms",
    r"brand\s+(?:manager|strategist|lead)",
    r"social\s+media",
    r"community\s+manager",
    r"content\s+(?:strategist|marketer|manager|lead)",
    r"growth\s+(?:hacker|manager|lead)",
    r"demand\s+gen(?:eration)?",
    r"seo",
    r"copywriter",
    r"press\s+officer",
    r"spokes(?:person|woman|man)",
    r"evangelist",
    r"advertising",
    # German, French, Spanish, Italian, Portuguese
    r"pressesprecher(?:in)?",
    r"[öo]ffentlichkeitsarbeit",
    r"kommunikation",
    r"communication",
    r"relations\s+presse",
    r"attach[ée]e?\s+de\s+presse",
    r"comunicaci[óo]n",
    r"comunica[çc][ãa]o",
    r"comunicazione",
    r"mercadotecnia",
    r"relaciones\s+p[úu]blicas",
    r"rela[çc][õo]es\s+p[úu]blicas",
    r"ufficio\s+stampa",
    r"prensa",
)
# Scripts without spaces between words: plain substrings.
_DECISION_CJK = (
    "代表取締役",
    "社長",
    "取締役",
    "創業者",
    "執行役員",
    "部長",
    "创始人",
    "首席",
    "总经理",
    "总裁",
    "董事长",
    "总监",
)
_MARKETING_CJK = ("広報", "マーケティング", "市场营销", "营销", "市场部", "公关")

_NEGATORS = (
    r"former",
    r"ex",
    r"retired",
    r"aspiring",
    r"future",
    r"wannabe",
    r"ehemalige[rn]?",
    r"ancien(?:ne)?",
    r"antiguo",
    r"antigua",
    r"ex-",
)
_NOT_A_TITLE = (
    r"product\s+owner",
    r"process\s+owner",
    r"(?:dog|cat|pet|home|horse)\s+owner",
    r"art\s+director",
    r"creative\s+director",
)

_FLAGS = re.IGNORECASE | re.UNICODE
_DECISION = re.compile(r"(?<!\w)(?:" + "|".join(_DECISION_WORDS) + r")(?!\w)", _FLAGS)
_MARKETING = re.compile(r"(?<!\w)(?:" + "|".join(_MARKETING_WORDS) + r")(?!\w)", _FLAGS)
# "PR" only in capitals: lower-case "pr" is too often something else (pull requests).
_PR = re.compile(r"(?<![\w-])PR(?![\w-])")
_NEGATED = re.compile(r"(?<!\w)(?:" + "|".join(_NEGATORS) + r")[\s-]+$", _FLAGS)
_EXCLUDED = re.compile(r"(?<!\w)(?:" + "|".join(_NOT_A_TITLE) + r")(?!\w)", _FLAGS)


def _has(pattern: re.Pattern[str], text: str) -> bool:
    """A match that is not negated by the words right before it."""
    for m in pattern.finditer(text):
        before = text[max(0, m.start() - 16) : m.start()]
        if not _NEGATED.search(before):
            return True
    return False


def classify_bio(text: str) -> AuthorRole:
    """The role a bio or title states; ``other`` when it states none. Pure and bounded."""
    text = _EXCLUDED.sub(" ", text[: 2 * MAX_BIO_CHARS])
    if _has(_DECISION, text) or any(w in text for w in _DECISION_CJK):
        return AuthorRole.DECISION_MAKER
    if _has(_MARKETING, text) or _has(_PR, text) or any(w in text for w in _MARKETING_CJK):
        return AuthorRole.MARKETING_PR
    return AuthorRole.OTHER


@lru_cache(maxsize=16_384)
def author_role(name: str | None, description: str | None) -> AuthorRole:
    """The role of an author from their display name and bio (both may carry a title).

    Cached: the same authors write again and again, and this runs for every stored mention.
    """
    text = f"{(name or '')[:MAX_BIO_CHARS]}\n{(description or '')[:MAX_BIO_CHARS]}"
    return classify_bio(text)


def influence(followers: int, mentions: int, engagement: int, replies: int) -> float:
    """The documented influence score (0–100) of an author over ``mentions`` mentions."""
    if mentions <= 0:
        return 0.0
    reach = min(1.0, math.log10(1 + max(0, followers)) / 8)
    eng = min(1.0, math.log10(1 + max(0, engagement) / mentions) / 5)
    conv = min(1.0, math.log10(1 + max(0, replies) / mentions) / 3)
    return round(100 * (0.5 * reach + 0.3 * eng + 0.2 * conv), 1)


def influence_ceiling(
    followers: int, engagement_per_mention: float, replies_per_mention: float
) -> float:
    """An upper bound, unrounded, on ``influence`` of any author with at most these
    followers, engagement per mention and replies per mention (it grows with each)."""
    reach = min(1.0, math.log10(1 + max(0, followers)) / 8)
    eng = min(1.0, math.log10(1 + max(0.0, engagement_per_mention)) / 5)
    conv = min(1.0, math.log10(1 + max(0.0, replies_per_mention)) / 3)
    return 100 * (0.5 * reach + 0.3 * eng + 0.2 * conv)


def in_conversation(
    mention_id: str, in_reply_to_id: str | None, conversation_id: str | None, replies: int
) -> bool:
    """A reply, part of a thread someone else started, or answered by others: not a
    broadcast. Pure."""
    return (
        in_reply_to_id is not None
        or (conversation_id is not None and conversation_id != mention_id)
        or replies > 0
    )
