"""The demo source: a realistic, endless stream of mentions of five fictional help-desk
vendors competing for the same B2B buyers, so that ``sentimon run`` shows a working
product before any real source is connected.

The core is pure: :func:`generate_mentions` turns a seeded ``random.Random`` and a time
window into mentions, and :func:`plan_incidents` decides when a brand has a bad day.
:class:`DemoSource` is the thin async shell: a fast backfill of recent history, then
live mentions paced by an injected clock and ``sleep``. What the mentions say is data,
read once from ``demo_data/``: the brands' personalities (``brands.yaml``), the templates
(``texts.yaml``), the words that fill them (``words.yaml``) and the people who write them
(``authors.yaml``).

Time is cut into UTC hours and each hour is generated from its own seed, derived from
the caller's seed and the hour. So the same seed always yields the same mentions, with
the same ids, at the same times, whatever window was asked for: a restarted demo
regenerates exactly what it already delivered, and the ingest worker's dedupe drops it.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import itertools
import math
import random
import string
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Generic, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from services.core.clock import Clock
from services.core.models import Author, Engagement, Mention
from services.ingest.sources.protocol import SourceItem

__all__ = [
    "DEMO_BRANDS",
    "INCIDENT_EVERY",
    "OPENING_DELAY",
    "OPENING_LENGTH",
    "DemoBrand",
    "DemoBrandConfig",
    "DemoSource",
    "Incident",
    "IncidentKind",
    "ToneMix",
    "demo_brands",
    "generate_mentions",
    "load_demo_brands",
    "plan_incidents",
]

Tone = Literal["positive", "neutral", "negative"]
_TONES: tuple[Tone, ...] = ("positive", "neutral", "negative")
_T = TypeVar("_T")
IncidentKind = Literal["outage", "price_hike", "data_breach"]

INCIDENT_EVERY = timedelta(hours=48)
"""One incident starts in every such period (counted from the Unix epoch), so any
seven-day window holds at least two of them and a live demo sees one within two days."""

OPENING_DELAY = timedelta(seconds=90)
"""When the live demo's opening incident starts, after the backfill: soon enough that a
new instance shows an alert (and what it says) in its first minutes."""
OPENING_LENGTH = timedelta(minutes=4)
# Its size: this many times the brand's usual mentions in 15 minutes at that hour, and at
# least OPENING_MIN, so the default alert rules hear it whatever the hour; this share of
# it reposts one news story (which the alert's explanation finds as the story).
_OPENING_FACTOR = 3.0
_OPENING_MIN = 60
_OPENING_REPOSTS = 0.35

_PACKAGE = "services.ingest.sources"
_BRANDS_FILE = "demo_brands.yaml"
# The generator's data: brand personalities, templates and word lists.
_DATA_DIR = "demo_data"
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_HOUR_MS = 3_600_000
# Ids are snowflake-shaped (milliseconds since this epoch, then 22 bits), like X's.
_SNOWFLAKE_EPOCH_MS = 1_288_834_974_657
_SEQUENCE_BITS = 22
# Ids of generated mentions use the lower half of the sequence bits, answers the upper.
_SEQUENCE_MASK = (1 << (_SEQUENCE_BITS - 1)) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_URL_PREFIX = "https://demo.sentimon.invalid/p/"
# Share of all mentions that are replies, and how far back a reply looks for a parent.
_REPLY_SHARE = 0.22
_RANDOM_REPLIES_PER_ROOT = 0.2
_REPLY_LOOKBACK_HOURS = 3
_MAX_INCIDENT = timedelta(hours=20)
# A brand answers within two hours and the customer within one, so a whole exchange
# stays inside the reply lookback.
_MAX_ANSWER_MS = 115 * 60_000
_MAX_ACK_MS = 60 * 60_000
# The live shell wakes at least this often (seconds), whatever the rate.
_MIN_TICK_S = 0.05
_MAX_TICK_S = 1.0
# During the backfill, hand control back to the event loop this often (mentions).
_BACKFILL_YIELD_EVERY = 256


# --------------------------------------------------------------------------- brands


class DemoBrandConfig(BaseModel):
    """One brand as ``demo_brands.yaml`` declares it: what ``sentimon run`` tracks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    query: str = Field(min_length=1, max_length=4096)
    competitors: tuple[str, ...] = ()
    owned_handles: tuple[str, ...] = ()  # the brand's official account


_CONFIGS = TypeAdapter(list[DemoBrandConfig])


def load_demo_brands() -> list[DemoBrandConfig]:
    """The demo brands packaged next to this module, in file order.

    Raises ``ValueError`` naming the file and the field if the file is malformed, or if
    a brand lists a competitor that is not a demo brand (or itself).
    """
    text = resources.files(_PACKAGE).joinpath(_BRANDS_FILE).read_text(encoding="utf-8")
    try:
        configs = _CONFIGS.validate_python(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"{_BRANDS_FILE}: {exc}") from exc
    names = {c.name for c in configs}
    for config in configs:
        for competitor in config.competitors:
            if competitor not in names or competitor == config.name:
                raise ValueError(
                    f"{_BRANDS_FILE}: brand {config.name!r}: competitors: "
                    f"{competitor!r} is not another demo brand"
                )
    return configs


@dataclass(frozen=True, slots=True)
class ToneMix:
    """How people usually talk about a brand: relative weights of each tone."""

    positive: float
    neutral: float
    negative: float

    __pydantic_config__ = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class DemoBrand:
    """A fictional brand's personality, which the generator writes mentions from.

    ``share`` is its relative share of voice, ``care`` the chance that its support
    account answers a complaint, ``incident_weight`` how likely it is to be the one
    having the incident; its support answers after about ``response_minutes``.
    """

    name: str
    handle: str
    hashtag: str
    competitors: tuple[str, ...]
    share: float
    tone: ToneMix
    strengths: tuple[str, ...]
    pains: tuple[str, ...]
    care: float
    response_minutes: float
    incident_weight: float
    followers: int
    aliases: tuple[str, ...] = ()

    __pydantic_config__ = ConfigDict(extra="forbid")

    def __post_init__(self) -> None:
        if not 1.0 <= self.response_minutes <= _MAX_ANSWER_MS / 60_000 * 0.9:
            raise ValueError(f"DemoBrand {self.name!r}: response_minutes out of range")
        if not 0.0 <= self.care <= 1.0:
            raise ValueError(f"DemoBrand {self.name!r}: care must be within [0, 1]")
        if self.tone.positive + self.tone.negative <= 0.0:
            raise ValueError(f"DemoBrand {self.name!r}: needs some positive or negative tone")


_PERSONALITIES_FILE = "brands.yaml"
_BRAND = TypeAdapter(DemoBrand)


@functools.cache
def demo_brands() -> tuple[DemoBrand, ...]:
    """The demo brands' personalities (``demo_data/brands.yaml``), in the order and with
    the competitors of :func:`load_demo_brands`.

    Raises ``ValueError`` naming the file if it is malformed, or if it lacks a demo brand
    or describes one that is not.
    """
    traits = _read_data(_PERSONALITIES_FILE)
    if not isinstance(traits, dict):
        raise ValueError(f"{_PERSONALITIES_FILE}: expected a mapping of brand names")
    brands: list[DemoBrand] = []
    for config in load_demo_brands():
        described = traits.get(config.name)
        if not isinstance(described, dict):
            raise ValueError(f"{_PERSONALITIES_FILE}: no personality for {config.name!r}")
        data = {**described, "name": config.name, "competitors": config.competitors}
        try:
            brands.append(_BRAND.validate_python(data))
        except ValidationError as exc:
            raise ValueError(f"{_PERSONALITIES_FILE}: {exc}") from exc
    unknown = sorted(set(traits) - {b.name for b in brands})
    if unknown:
        raise ValueError(f"{_PERSONALITIES_FILE}: {unknown} are not demo brands")
    return tuple(brands)


def _read_data(name: str) -> object:
    """One YAML file of ``demo_data/``, parsed; ``ValueError`` naming it if it is not YAML."""
    path = resources.files(_PACKAGE).joinpath(_DATA_DIR, name)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{name}: {exc}") from exc


DEMO_BRANDS: tuple[DemoBrand, ...] = demo_brands()


# ------------------------------------------------------------------------ incidents


@dataclass(frozen=True, slots=True)
class Incident:
    """A bad episode for one brand: for its duration the brand's volume is multiplied by
    up to ``volume_multiplier`` (peaking early, then fading) and most of what is said
    about it is about the incident, and negative."""

    brand: str
    kind: IncidentKind
    start: datetime
    end: datetime
    volume_multiplier: float

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Incident: start and end must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("Incident: end must be after start")
        if self.end - self.start > _MAX_INCIDENT:
            raise ValueError(f"Incident: may last at most {_MAX_INCIDENT}")
        if self.volume_multiplier < 1.0:
            raise ValueError("Incident: volume_multiplier must be at least 1")


_INCIDENT_KINDS: tuple[IncidentKind, ...] = ("outage", "price_hike", "data_breach")
_INCIDENT_KIND_WEIGHTS = (0.6, 0.25, 0.15)
# (shortest, longest duration in hours, lowest, highest volume multiplier)
_INCIDENT_SHAPES: dict[IncidentKind, tuple[float, float, float, float]] = {
    "outage": (1.5, 6.0, 4.0, 8.0),
    "price_hike": (6.0, 14.0, 3.0, 4.5),
    "data_breach": (8.0, 18.0, 5.0, 9.0),
}


def plan_incidents(
    rng: random.Random, start: datetime, end: datetime, brands: Sequence[DemoBrand]
) -> list[Incident]:
    """The incidents that overlap ``[start, end)``, in start order.

    Exactly one incident starts in each :data:`INCIDENT_EVERY` period, on a weekday or
    weekend alike, between 06:00 and 20:00 UTC. Like
    :func:`generate_mentions`, this takes one draw from ``rng`` and derives everything
    else from it and the absolute period, so a fresh ``random.Random(seed)`` always plans
    the same incident for the same period. Raises ``ValueError`` for naive datetimes or
    no brands.
    """
    _require_aware(start, end)
    if not brands:
        raise ValueError("plan_incidents needs at least one brand")
    base = rng.getrandbits(64)
    period_ms = INCIDENT_EVERY // _ONE_MS
    first = (_to_ms(start - _MAX_INCIDENT)) // period_ms
    last = (_to_ms(end) - 1) // period_ms
    weights = [b.incident_weight for b in brands]
    planned: list[Incident] = []
    for period in range(first, last + 1):
        prng = random.Random(f"{base}:incident:{period}")
        brand = prng.choices(brands, weights)[0]
        kind = prng.choices(_INCIDENT_KINDS, _INCIDENT_KIND_WEIGHTS)[0]
        shortest, longest, low, high = _INCIDENT_SHAPES[kind]
        day = prng.randrange(period_ms // (24 * _HOUR_MS))
        begin_ms = (
            period * period_ms
            + day * 24 * _HOUR_MS
            + prng.randint(6, 19) * _HOUR_MS
            + prng.randrange(_HOUR_MS)
        )
        length_ms = int(prng.uniform(shortest, longest) * _HOUR_MS)
        incident = Incident(
            brand=brand.name,
            kind=kind,
            start=_from_ms(begin_ms),
            end=_from_ms(begin_ms + length_ms),
            volume_multiplier=round(prng.uniform(low, high), 2),
        )
        if incident.start < end and incident.end > start:
            planned.append(incident)
    return planned


# --------------------------------------------------------------------------- texts


class _Weighted(Generic[_T]):
    """A weighted choice, cheaper than ``random.choices`` when drawn from many times."""

    def __init__(self, pairs: Sequence[tuple[_T, float]]) -> None:
        self._items = [item for item, _ in pairs]
        self._cumulative = list(itertools.accumulate(weight for _, weight in pairs))

    def pick(self, rng: random.Random) -> _T:
        x = rng.random() * self._cumulative[-1]
        return self._items[min(bisect.bisect_right(self._cumulative, x), len(self._items) - 1)]


_FILE_MODEL = ConfigDict(frozen=True, extra="forbid")
# The slots a template may use; _Slots._draw fills them.
_SLOTS = frozenset(
    {"b", "h", "t", "c", "f", "i", "n", "m", "q", "pct", "team", "days", "quick", "hours"}
    | {"city", "role", "amount", "series", "company", "pa"}
)
# A word list: never empty, since the generator draws from it.
_Words = Annotated[tuple[str, ...], Field(min_length=1)]


class _Kind(BaseModel):
    """A kind of mention: its tone, who writes it and the templates it is written from.

    ``voice`` is ``people`` (anyone), ``media`` (journalists, analysts, newsletters),
    ``official`` (the brand's own account) or ``hiring`` (recruiters and managers).
    """

    model_config = _FILE_MODEL

    name: str
    tone: Tone
    voice: Literal["people", "media", "official", "hiring"]
    templates: _Words
    question: bool = False

    @field_validator("templates")
    @classmethod
    def _known_slots(cls, templates: tuple[str, ...]) -> tuple[str, ...]:
        for template in templates:
            for _, slot, _, _ in string.Formatter().parse(template):
                if slot is not None and slot not in _SLOTS:
                    raise ValueError(f"unknown slot {{{slot}}} in {template!r}")
        return templates


class _WeightedKind(_Kind):
    """A kind drawn among others: ``weight`` is its relative frequency."""

    weight: float = Field(gt=0.0)


class _Replies(BaseModel):
    """The kinds of reply, by name (which answers what is decided in ``_reply_draft``)."""

    model_config = _FILE_MODEL

    agree_negative: _Kind
    defend: _Kind
    apology: _Kind
    agree_positive: _Kind
    follow_up: _Kind
    thanks: _Kind
    answer_positive: _Kind
    answer_negative: _Kind
    official_answer: _Kind
    comment_positive: _Kind
    comment_negative: _Kind
    comment_neutral: _Kind
    ack_positive: _Kind
    ack_negative: _Kind
    ack_thanks: _Kind
    incident_reply: _Kind

    @model_validator(mode="before")
    @classmethod
    def _named_by_key(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        return {k: {"name": k, **v} if isinstance(v, dict) else v for k, v in data.items()}


class _TextsFile(BaseModel):
    """``texts.yaml``."""

    model_config = _FILE_MODEL

    mentions: dict[Tone, tuple[_WeightedKind, ...]]
    incidents: dict[IncidentKind, tuple[_WeightedKind, ...]]
    replies: _Replies

    @model_validator(mode="after")
    def _complete(self) -> _TextsFile:
        for tone in _TONES:
            if not self.mentions.get(tone):
                raise ValueError(f"mentions: no {tone} kinds")
            if any(kind.tone != tone for kind in self.mentions[tone]):
                raise ValueError(f"mentions: {tone}: a kind of another tone")
        for incident_kind in _INCIDENT_KINDS:
            if not self.incidents.get(incident_kind):
                raise ValueError(f"incidents: no kinds for {incident_kind}")
        return self


class _WordsFile(BaseModel):
    """``words.yaml``: what fills the templates' slots and decorates mentions."""

    model_config = _FILE_MODEL

    features: _Words
    integrations: _Words
    quickly: _Words
    hours: _Words
    cities: _Words
    job_roles: _Words
    amounts: _Words
    series: _Words
    emojis: dict[Tone, _Words]
    text_emojis: _Words
    topic_tags: _Words

    @model_validator(mode="after")
    def _every_tone(self) -> _WordsFile:
        missing = [tone for tone in _TONES if not self.emojis.get(tone)]
        if missing:
            raise ValueError(f"emojis: none for {missing}")
        return self


@dataclass(frozen=True, slots=True)
class _Texts:
    by_tone: Mapping[Tone, _Weighted[_Kind]]
    by_incident: Mapping[IncidentKind, _Weighted[_Kind]]
    # What the press writes about each kind of incident (the story others repost).
    incident_news: Mapping[IncidentKind, tuple[_Kind, ...]]
    replies: _Replies
    words: _WordsFile


_FileModel = TypeVar("_FileModel", bound=BaseModel)


def _load(name: str, model: type[_FileModel]) -> _FileModel:
    try:
        return model.model_validate(_read_data(name))
    except ValidationError as exc:
        raise ValueError(f"{name}: {exc}") from exc


@functools.cache
def _texts() -> _Texts:
    """The templates and word lists (``demo_data/texts.yaml``, ``words.yaml``), read once.
    Raises ``ValueError`` naming the file if one is malformed."""
    texts = _load("texts.yaml", _TextsFile)

    def weighted(kinds: Sequence[_WeightedKind]) -> _Weighted[_Kind]:
        return _Weighted([(kind, kind.weight) for kind in kinds])

    return _Texts(
        by_tone={tone: weighted(kinds) for tone, kinds in texts.mentions.items()},
        by_incident={kind: weighted(kinds) for kind, kinds in texts.incidents.items()},
        incident_news={
            kind: tuple(k for k in kinds if k.voice == "media")
            for kind, kinds in texts.incidents.items()
        },
        replies=texts.replies,
        words=_load("words.yaml", _WordsFile),
    )


_EMOJI_CHANCE: dict[Tone, float] = {"positive": 0.3, "neutral": 0.07, "negative": 0.28}


class _Slots(dict[str, str]):
    """Template slot values, drawn from ``rng`` the first time a template asks for them,
    so a slot used twice reads the same both times."""

    def __init__(
        self,
        rng: random.Random,
        words: _WordsFile,
        brand: DemoBrand,
        tone: Tone,
        company: str,
        parent_handle: str | None,
    ) -> None:
        super().__init__()
        self._rng = rng
        self._words = words
        self._brand = brand
        self._tone = tone
        self._company = company
        self._parent_handle = parent_handle

    def __missing__(self, key: str) -> str:
        value = self._draw(key)
        self[key] = value
        return value

    def _draw(self, key: str) -> str:
        rng, brand, words = self._rng, self._brand, self._words
        match key:
            case "b":
                roll = rng.random()
                if brand.aliases and roll < 0.08:
                    return rng.choice(brand.aliases)
                return brand.name.lower() if roll > 0.88 else brand.name
            case "h":
                return "@" + brand.handle
            case "t":
                return "#" + brand.hashtag
            case "c":
                return rng.choice(brand.competitors) if brand.competitors else "our old helpdesk"
            case "f":
                return self._feature()
            case "i":
                return rng.choice(words.integrations)
            case "n" | "m":
                return str(rng.randint(2, 9))
            case "q":
                return str(rng.randint(1, 4))
            case "pct":
                return str(rng.choice((15, 20, 25, 30, 40, 50, 60)))
            case "team":
                return str(rng.choice((5, 8, 12, 15, 20, 30, 40, 60, 120, 250)))
            case "days":
                return str(rng.randint(2, 14))
            case "quick":
                return rng.choice(words.quickly)
            case "hours":
                return rng.choice(words.hours)
            case "city":
                return rng.choice(words.cities)
            case "role":
                return rng.choice(words.job_roles)
            case "amount":
                return rng.choice(words.amounts)
            case "series":
                return rng.choice(words.series)
            case "company":
                return self._company
            case "pa":
                return self._parent_handle or brand.handle
        raise KeyError(key)

    def _feature(self) -> str:
        rng, brand = self._rng, self._brand
        if self._tone == "positive" and brand.strengths and rng.random() < 0.7:
            return rng.choice(brand.strengths)
        if self._tone == "negative" and brand.pains and rng.random() < 0.7:
            return rng.choice(brand.pains)
        return rng.choice(self._words.features)


def _add_typo(rng: random.Random, text: str, protected: frozenset[str]) -> str:
    words = text.split(" ")
    candidates = [
        i
        for i, word in enumerate(words)
        if len(word) >= 5 and word.isalpha() and not any(p in word.lower() for p in protected)
    ]
    if not candidates:
        return text
    i = rng.choice(candidates)
    word = words[i]
    j = rng.randrange(1, len(word) - 2)
    roll = rng.random()
    if roll < 0.5:
        word = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    elif roll < 0.8:
        word = word[:j] + word[j + 1 :]
    else:
        word = word[:j] + word[j] + word[j:]
    words[i] = word
    return " ".join(words)


# -------------------------------------------------------------------------- authors


class _Outlet(BaseModel):
    model_config = _FILE_MODEL

    name: str
    handle: str


class _BigAccount(BaseModel):
    model_config = _FILE_MODEL

    name: str
    handle: str
    group: str
    followers: int = Field(ge=0)
    bio: str


class _AuthorsFile(BaseModel):
    """``authors.yaml``: the names, employers and bios that the author pool is drawn from."""

    model_config = _FILE_MODEL

    first_names: _Words
    last_names: _Words
    handle_suffixes: _Words
    company_stems: _Words
    company_types: _Words
    roles: dict[str, _Words]
    campuses: _Words
    bio_extras: _Words
    outlets: tuple[_Outlet, ...]
    big_accounts: tuple[_BigAccount, ...]

    @model_validator(mode="after")
    def _known_groups(self) -> _AuthorsFile:
        if any(not self.roles.get(group) for group in _GROUPS) or set(self.roles) - set(_GROUPS):
            raise ValueError(f"roles: needs roles for exactly the groups {list(_GROUPS)}")
        for account in self.big_accounts:
            if account.group not in _GROUPS:
                raise ValueError(f"big_accounts: {account.handle}: unknown group")
        return self


@functools.cache
def _author_words() -> _AuthorsFile:
    """``demo_data/authors.yaml``, read once; ``ValueError`` naming it if malformed."""
    return _load("authors.yaml", _AuthorsFile)


# (share of the pool, median followers, spread of the log-normal)
_GROUPS: dict[str, tuple[float, float, float]] = {
    "practitioner": (0.46, 180.0, 1.2),
    "leader": (0.24, 750.0, 1.4),
    "other": (0.17, 100.0, 1.2),
    "hiring": (0.06, 1_000.0, 0.9),
    "media": (0.07, 6_500.0, 1.3),
}
# Who writes each voice's mentions, by author group.
_VOICE_GROUPS: dict[str, _Weighted[str]] = {
    "people": _Weighted([("practitioner", 0.55), ("leader", 0.3), ("other", 0.1), ("media", 0.05)]),
    "media": _Weighted([("media", 1.0)]),
    "hiring": _Weighted([("hiring", 0.6), ("leader", 0.4)]),
}
_POOL_SIZE = 420


@dataclass(frozen=True, slots=True)
class _Person:
    author: Author
    company: str


@dataclass(slots=True)
class _Group:
    people: list[_Person] = field(default_factory=list)
    cumulative: list[float] = field(default_factory=list)

    def add(self, person: _Person, activity: float) -> None:
        self.people.append(person)
        self.cumulative.append((self.cumulative[-1] if self.cumulative else 0.0) + activity)

    def pick(self, rng: random.Random) -> _Person:
        x = rng.random() * self.cumulative[-1]
        return self.people[min(bisect.bisect_right(self.cumulative, x), len(self.people) - 1)]


class _Authors:
    """A few hundred people who talk about the market, with heavy-tailed reach and
    activity: most have a few hundred followers, a handful more than a hundred thousand."""

    def __init__(self, rng: random.Random, reserved: Iterable[str]) -> None:
        words = _author_words()
        self._groups: dict[str, _Group] = {name: _Group() for name in _GROUPS}
        taken = {
            *reserved,
            *(a.handle for a in words.big_accounts),
            *(o.handle for o in words.outlets),
        }
        names = list(_GROUPS)
        shares = [share for share, _, _ in _GROUPS.values()]
        for i in range(_POOL_SIZE):
            group = rng.choices(names, shares)[0] if i >= len(_GROUPS) else names[i]
            self._add(rng, group, self._person(rng, words, group, taken))
        for account in words.big_accounts:
            author = Author(
                id=_author_id(rng),
                handle=account.handle,
                name=account.name,
                followers=account.followers,
                description=account.bio,
                verified=True,
            )
            self._groups[account.group].add(_Person(author, account.name), 3.0)
        for outlet in words.outlets:
            author = Author(
                id=_author_id(rng),
                handle=outlet.handle,
                name=outlet.name,
                followers=int(rng.lognormvariate(math.log(15_000), 0.8)),
                description="News about the software that runs customer support.",
                verified=rng.random() < 0.7,
            )
            self._groups["media"].add(_Person(author, outlet.name), 4.0)

    def _add(self, rng: random.Random, group: str, person: _Person) -> None:
        self._groups[group].add(person, min(rng.paretovariate(1.3), 40.0))

    @staticmethod
    def _person(rng: random.Random, words: _AuthorsFile, group: str, taken: set[str]) -> _Person:
        first, last = rng.choice(words.first_names), rng.choice(words.last_names)
        style = rng.randrange(5)
        if style == 0:
            handle = f"{first}{last}"
        elif style == 1:
            handle = f"{first[0]}{last}"
        elif style == 2:
            handle = f"{first}_{last}"
        elif style == 3:
            handle = f"{first}{last}{rng.randint(1, 99)}"
        else:
            handle = f"{first}{rng.choice(words.handle_suffixes)}"
        handle = handle.lower()
        while handle in taken:
            handle = f"{handle}{rng.randint(0, 9)}"
        taken.add(handle)
        _, median, spread = _GROUPS[group]
        followers = min(int(rng.lognormvariate(math.log(median), spread)), 5_000_000)
        company = f"{rng.choice(words.company_stems)} {rng.choice(words.company_types)}"
        role = rng.choice(words.roles[group])
        if group in ("leader", "practitioner", "hiring"):
            bio = f"{role} at {company}."
        elif group == "media":
            bio = f"{role}."
        else:
            bio = f"{role}." if role != "Student" else f"Student at {rng.choice(words.campuses)}."
        extra = rng.choice(words.bio_extras)
        verified = rng.random() < (0.5 if group == "media" or followers > 20_000 else 0.03)
        author = Author(
            id=_author_id(rng),
            handle=handle,
            name=f"{first} {last}",
            followers=followers,
            description=f"{bio} {extra}".strip(),
            verified=verified,
        )
        return _Person(author, company)

    def pick(self, rng: random.Random, voice: str, *, avoid: Author | None = None) -> _Person:
        groups = _VOICE_GROUPS[voice]
        for _ in range(3):
            person = self._groups[groups.pick(rng)].pick(rng)
            if person.author is not avoid:
                return person
        return person


def _author_id(rng: random.Random) -> str:
    return str(rng.getrandbits(52) + 10**15)


def _brand_account(brand: DemoBrand) -> _Person:
    author = Author(
        id=f"brand-{brand.handle}",
        handle=brand.handle,
        name=brand.name,
        followers=brand.followers,
        description=f"The official {brand.name} account. Need help? DM us.",
        verified=True,
    )
    return _Person(author, brand.name)


# ------------------------------------------------------------------------ generator

# Relative volume per UTC hour on a weekday: European and American working hours overlap
# from 13:00 to 17:00 UTC, nights are quiet. Weekends carry a fraction of a weekday.
_WEEKDAY_PROFILE = (
    0.30, 0.24, 0.20, 0.18, 0.20, 0.28, 0.45, 0.75, 1.15, 1.45, 1.60, 1.65,
    1.60, 1.65, 1.75, 1.75, 1.65, 1.50, 1.25, 1.05, 0.85, 0.65, 0.50, 0.38,
)  # fmt: skip
_WEEKEND_FACTOR = 0.4
# Normalised so that the average hour of a week weighs 1.0.
_PROFILE_NORM = sum(_WEEKDAY_PROFILE) * (5 + 2 * _WEEKEND_FACTOR) / (7 * 24)


def _volume_weight(hour: int) -> float:
    weekday = (hour // 24 + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    weight = _WEEKDAY_PROFILE[hour % 24] / _PROFILE_NORM
    return weight * _WEEKEND_FACTOR if weekday >= 5 else weight


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0.0:
        return 0
    if lam > 40.0:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _incident_intensity(incident_start: int, incident_end: int, ms: int) -> float:
    """Attention over an incident's life: a fast rise, then a long fade (0..1]."""
    progress = (ms - incident_start) / (incident_end - incident_start)
    if progress < 0.15:
        return 0.3 + 0.7 * progress / 0.15
    return 1.0 - 0.75 * (progress - 0.15) / 0.85


@dataclass(frozen=True, slots=True)
class _Post:
    ms: int
    mention: Mention
    brand: int
    tone: Tone
    kind: _Kind
    incident: bool
    person: _Person

    @property
    def conversation_id(self) -> str:
        return self.mention.conversation_id or self.mention.id


@dataclass(frozen=True, slots=True)
class _Draft:
    ms: int
    brand: int
    kind: _Kind
    text: str
    person: _Person
    metrics: Engagement
    incident: bool


@dataclass(frozen=True, slots=True)
class _BrandIncident:
    start_ms: int
    end_ms: int
    incident: Incident


class _Timeline:
    """Mentions hour by hour; each hour is a pure function of the base seed, the hour,
    the brands, the rate and the incidents touching it (and the three hours before it,
    whose posts its replies answer). Keeps the few most recent hours cached."""

    def __init__(
        self,
        base: int,
        brands: Sequence[DemoBrand],
        base_rate_per_hour: float,
        incidents: Sequence[Incident],
    ) -> None:
        if not brands:
            raise ValueError("the demo needs at least one brand")
        if len({b.name for b in brands}) != len(brands):
            raise ValueError("demo brand names must be unique")
        if not base_rate_per_hour >= 0.0 or math.isinf(base_rate_per_hour):
            raise ValueError("base_rate_per_hour must be a finite number >= 0")
        self._base = base
        self._brands = tuple(brands)
        total = sum(b.share for b in brands)
        if total <= 0.0:
            raise ValueError("demo brands need a positive total share")
        self._rates = [base_rate_per_hour * b.share / total for b in brands]
        index = {b.name: i for i, b in enumerate(brands)}
        self._incidents: list[list[_BrandIncident]] = [[] for _ in brands]
        for incident in incidents:
            if incident.brand not in index:
                raise ValueError(f"incident for {incident.brand!r}, which is not a demo brand")
            self._incidents[index[incident.brand]].append(
                _BrandIncident(_to_ms(incident.start), _to_ms(incident.end), incident)
            )
        self._texts = _texts()
        self._authors = _Authors(random.Random(f"{base}:authors"), (b.handle for b in brands))
        self._accounts = [_brand_account(b) for b in brands]
        self._tones = [
            _Weighted(
                list(zip(_TONES, (b.tone.positive, b.tone.neutral, b.tone.negative), strict=True))
            )
            for b in brands
        ]
        self._protected = frozenset(
            word.lower()
            for b in brands
            for term in (b.name, b.handle, b.hashtag, *b.aliases)
            for word in (term, *term.split())
        )
        self._salt = base & _SEQUENCE_MASK
        self._roots: dict[int, list[_Post]] = {}
        self._answers: dict[int, list[_Post]] = {}
        self._hours: dict[int, tuple[list[int], list[Mention]]] = {}

    def between(self, start_ms: int, end_ms: int) -> Iterator[Mention]:
        hour = start_ms // _HOUR_MS
        while hour * _HOUR_MS < end_ms:
            times, mentions = self._hour(hour)
            lo = bisect.bisect_left(times, start_ms)
            hi = bisect.bisect_left(times, end_ms)
            yield from mentions[lo:hi]
            hour += 1

    # -- one hour

    def _hour(self, hour: int) -> tuple[list[int], list[Mention]]:
        cached = self._hours.get(hour)
        if cached is not None:
            return cached
        roots = self._roots_of(hour)
        start, end = hour * _HOUR_MS, (hour + 1) * _HOUR_MS
        answers = [
            post
            for h in range(hour - _REPLY_LOOKBACK_HOURS, hour + 1)
            for post in self._follow_ups_of(h)
            if start <= post.ms < end
        ]
        posts = sorted([*roots, *self._replies(hour, len(roots)), *answers], key=lambda p: p.ms)
        result = ([p.ms for p in posts], [p.mention for p in posts])
        self._hours = {h: v for h, v in self._hours.items() if h >= hour - 1}
        self._hours[hour] = result
        return result

    def _roots_of(self, hour: int) -> list[_Post]:
        cached = self._roots.get(hour)
        if cached is not None:
            return cached
        rng = random.Random(f"{self._base}:roots:{hour}")
        start = hour * _HOUR_MS
        weight = _volume_weight(hour)
        drafts: list[_Draft] = []
        for b in range(len(self._brands)):
            for _ in range(_poisson(rng, self._rates[b] * weight * (1.0 - _REPLY_SHARE))):
                ms = start + rng.randrange(_HOUR_MS)
                active = self._incident_at(b, ms)
                if active is not None and rng.random() < 0.6:
                    drafts.append(self._incident_draft(rng, ms, b, active.incident))
                else:
                    drafts.append(self._draft(rng, ms, b))
            for active in self._incidents[b]:
                drafts.extend(self._incident_surge(rng, hour, b, active))
        drafts.sort(key=lambda d: d.ms)
        posts = [
            self._post(draft, self._id(draft.ms, i), parent=None) for i, draft in enumerate(drafts)
        ]
        self._roots = {h: v for h, v in self._roots.items() if h >= hour - _REPLY_LOOKBACK_HOURS}
        self._roots[hour] = posts
        return posts

    def _follow_ups_of(self, hour: int) -> list[_Post]:
        cached = self._answers.get(hour)
        if cached is not None:
            return cached
        posts = [post for root in self._roots_of(hour) for post in self._follow_ups(root)]
        keep = hour - _REPLY_LOOKBACK_HOURS
        self._answers = {h: v for h, v in self._answers.items() if h >= keep}
        self._answers[hour] = posts
        return posts

    def _incident_at(self, b: int, ms: int) -> _BrandIncident | None:
        for active in self._incidents[b]:
            if active.start_ms <= ms < active.end_ms:
                return active
        return None

    def _incident_surge(
        self, rng: random.Random, hour: int, b: int, active: _BrandIncident
    ) -> Iterator[_Draft]:
        lo = max(active.start_ms, hour * _HOUR_MS)
        hi = min(active.end_ms, (hour + 1) * _HOUR_MS)
        if lo >= hi:
            return
        # News travels at night and on weekends too: the surge is at least the average.
        weight = max(_volume_weight(hour), 1.0)
        samples = [lo + (hi - lo) * (k + 0.5) / 8 for k in range(8)]
        mean_intensity = sum(
            _incident_intensity(active.start_ms, active.end_ms, int(s)) for s in samples
        ) / len(samples)
        lam = (
            (active.incident.volume_multiplier - 1.0)
            * self._rates[b]
            * weight
            * (1.0 - _REPLY_SHARE)
            * (hi - lo)
            / _HOUR_MS
            * mean_intensity
        )
        for _ in range(_poisson(rng, lam)):
            while True:  # rejection sampling against the intensity curve
                ms = rng.randrange(lo, hi)
                if rng.random() <= _incident_intensity(active.start_ms, active.end_ms, ms):
                    break
            yield self._incident_draft(rng, ms, b, active.incident)

    def _replies(self, hour: int, first_index: int) -> list[_Post]:
        rng = random.Random(f"{self._base}:replies:{hour}")
        window = [
            post
            for h in range(hour - _REPLY_LOOKBACK_HOURS, hour + 1)
            for post in self._roots_of(h)
        ]
        window_times = [p.ms for p in window]
        own_roots = len(self._roots_of(hour))
        # The brands' answers (see _follow_ups) make up the rest of the reply share.
        count = _poisson(rng, own_roots * _RANDOM_REPLIES_PER_ROOT)
        start = hour * _HOUR_MS
        reply_times = sorted(start + rng.randrange(_HOUR_MS) for _ in range(count))
        replies: list[_Post] = []
        replied_times: list[int] = []
        for j, ms in enumerate(reply_times):
            parent = self._pick_parent(rng, ms, (window, window_times), (replies, replied_times))
            if parent is None:
                continue
            draft = self._reply_draft(rng, ms, parent)
            replies.append(self._post(draft, self._id(ms, first_index + j), parent=parent))
            replied_times.append(ms)
        return replies

    def _pick_parent(
        self,
        rng: random.Random,
        ms: int,
        roots: tuple[list[_Post], list[int]],
        replies: tuple[list[_Post], list[int]],
    ) -> _Post | None:
        lag = min(max(rng.expovariate(1.0 / (20 * 60_000)), 20_000.0), 2.5 * _HOUR_MS)
        target = ms - int(lag)
        pools = [replies, roots] if replies[0] and rng.random() < 0.3 else [roots]
        for posts, times in pools:
            k = bisect.bisect_left(times, target) - 1
            if k < 0:
                continue
            candidates = posts[max(0, k - 5) : k + 1]
            weights = [
                math.sqrt(p.mention.author.followers + 25)
                * (2.5 if p.tone == "negative" or p.kind.question else 1.0)
                for p in candidates
            ]
            return rng.choices(candidates, weights)[0]
        return None

    # -- the opening incident

    def opening_incident(self, b: int, start_ms: int, length_ms: int) -> list[Mention]:
        """A scripted outage of brand ``b`` from ``start_ms``: complaints and questions, a
        news post about it and reposts of that post, in time order. Sized from the brand's
        rate at that hour (see ``_OPENING_FACTOR``); a pure function of the base seed, the
        brand and ``start_ms``. Its ids use their own part of the id space, so they meet
        no mention of the timeline."""
        rng = random.Random(f"{self._base}:opening:{b}:{start_ms}")
        usual = self._rates[b] * _volume_weight(start_ms // _HOUR_MS) / 4
        count = max(_OPENING_MIN, round(_OPENING_FACTOR * usual))
        incident = Incident(
            brand=self._brands[b].name,
            kind="outage",
            start=_from_ms(start_ms),
            end=_from_ms(start_ms + length_ms),
            volume_multiplier=_OPENING_FACTOR,
        )
        times = sorted(start_ms + rng.randrange(length_ms) for _ in range(count))
        news = self._texts.incident_news[incident.kind]
        story = None
        if news:
            story = self._write(rng, times[0], b, rng.choice(news), parent=None, incident=True)
        drafts = [] if story is None else [story]
        for ms in times[len(drafts) :]:
            draft = self._incident_draft(rng, ms, b, incident)
            if story is not None and rng.random() < _OPENING_REPOSTS:
                handle = story.person.author.handle
                draft = replace(draft, text=f"RT @{handle}: {story.text}")
            drafts.append(draft)
        return [
            self._post(draft, self._opening_id(draft.ms, start_ms, i), parent=None).mention
            for i, draft in enumerate(drafts)
        ]

    @staticmethod
    def _opening_id(ms: int, start_ms: int, index: int) -> str:
        # The upper half of the sequence space, like the follow-ups', mixed from the
        # incident's start so that one incident's ids never repeat.
        mixed = ((start_ms * _GOLDEN) >> 20) + index * 0x2545F491
        return _snowflake(ms, (1 << (_SEQUENCE_BITS - 1)) | (mixed & _SEQUENCE_MASK))

    # -- one mention

    def _draft(self, rng: random.Random, ms: int, b: int) -> _Draft:
        tone = self._tones[b].pick(rng)
        kind = self._texts.by_tone[tone].pick(rng)
        return self._write(rng, ms, b, kind, parent=None, incident=False)

    def _incident_draft(self, rng: random.Random, ms: int, b: int, incident: Incident) -> _Draft:
        kind = self._texts.by_incident[incident.kind].pick(rng)
        return self._write(rng, ms, b, kind, parent=None, incident=True)

    def _reply_draft(self, rng: random.Random, ms: int, parent: _Post) -> _Draft:
        brand = self._brands[parent.brand]
        liked = brand.tone.positive / (brand.tone.positive + brand.tone.negative)
        r = self._texts.replies
        kind: _Kind
        if parent.incident and rng.random() < 0.6:
            kind = r.incident_reply
        elif parent.tone == "negative":
            kind = _pick(rng, (r.agree_negative, 0.6), (r.defend, 0.25), (r.comment_neutral, 0.15))
        elif parent.tone == "positive":
            kind = _pick(
                rng, (r.agree_positive, 0.5), (r.follow_up, 0.35), (r.answer_negative, 0.15)
            )
        elif parent.kind.question:
            kind = _pick(
                rng,
                (r.answer_positive, 0.7 * liked),
                (r.answer_negative, 0.7 * (1.0 - liked)),
                (r.comment_neutral, 0.3),
            )
        else:
            kind = _pick(
                rng,
                (r.comment_positive, 0.5 * liked),
                (r.comment_negative, 0.5 * (1.0 - liked)),
                (r.comment_neutral, 0.5),
            )
        return self._write(rng, ms, parent.brand, kind, parent=parent, incident=parent.incident)

    def _follow_ups(self, root: _Post) -> list[_Post]:
        """The brand's answer to a root, and the author's answer to that, if any.

        Drawn from the root alone, so each root is answered at most once, whichever
        hour the answer falls in.
        """
        brand = self._brands[root.brand]
        r = self._texts.replies
        if root.kind.voice == "official":
            return []
        if root.tone == "negative":
            answer, chance = r.apology, brand.care * (0.2 if root.incident else 0.6)
        elif root.kind.question:
            answer, chance = r.official_answer, brand.care * 0.4
        elif root.tone == "positive":
            answer, chance = r.thanks, brand.care * 0.15
        else:
            return []
        if _unit(int(root.mention.id)) >= chance:
            return []
        rng = random.Random(f"{self._base}:care:{root.mention.id}")
        lag = _MAX_ANSWER_MS + 1.0
        while not 60_000.0 <= lag <= _MAX_ANSWER_MS:
            lag = rng.lognormvariate(math.log(brand.response_minutes * 60_000), 0.5)
        ms = root.ms + int(lag)
        draft = self._write(rng, ms, root.brand, answer, parent=root, incident=root.incident)
        reply = self._post(draft, self._follow_up_id(ms, root, 1), parent=root)
        ack: _Kind | None = None
        if answer is r.apology and rng.random() < 0.6:
            liked = brand.tone.positive / (brand.tone.positive + brand.tone.negative)
            ack = r.ack_positive if rng.random() < liked else r.ack_negative
        elif answer is r.official_answer and rng.random() < 0.4:
            ack = r.ack_thanks
        if ack is None:
            return [reply]
        lag = rng.lognormvariate(math.log(8 * 60_000), 0.8)
        ms += int(min(max(lag, 30_000.0), _MAX_ACK_MS))
        draft = self._write(
            rng, ms, root.brand, ack, parent=reply, incident=root.incident, person=root.person
        )
        return [reply, self._post(draft, self._follow_up_id(ms, root, 2), parent=reply)]

    def _write(
        self,
        rng: random.Random,
        ms: int,
        b: int,
        kind: _Kind,
        *,
        parent: _Post | None,
        incident: bool,
        person: _Person | None = None,
    ) -> _Draft:
        brand = self._brands[b]
        if person is None and kind.voice == "official":
            person = self._accounts[b]
        elif person is None:
            person = self._authors.pick(
                rng, kind.voice, avoid=None if parent is None else parent.mention.author
            )
        parent_handle = None if parent is None else parent.mention.author.handle
        slots = _Slots(rng, self._texts.words, brand, kind.tone, person.company, parent_handle)
        text = rng.choice(kind.templates).format_map(slots)
        text = self._decorate(rng, text, brand, kind, incident=incident)
        return _Draft(
            ms=ms,
            brand=b,
            kind=kind,
            text=text,
            person=person,
            metrics=_metrics(
                rng, person.author.followers, kind, incident=incident, reply=parent is not None
            ),
            incident=incident,
        )

    def _decorate(
        self, rng: random.Random, text: str, brand: DemoBrand, kind: _Kind, *, incident: bool
    ) -> str:
        casual = kind.voice in ("people", "hiring")
        if casual and rng.random() < 0.07:
            text = _add_typo(rng, text, self._protected)
        words = self._texts.words
        emoji = kind.voice != "media" and not any(e in text for e in words.text_emojis)
        if emoji and rng.random() < _EMOJI_CHANCE[kind.tone]:
            text = f"{text} {rng.choice(words.emojis[kind.tone])}"
        if casual and rng.random() < 0.16 and "#" + brand.hashtag not in text.lower():
            text = f"{text} #{brand.hashtag}"
        if casual and rng.random() < 0.14:
            tag = f"#{brand.hashtag}down" if incident and rng.random() < 0.5 else None
            text = f"{text} {tag or rng.choice(words.topic_tags)}"
        cc = kind.tone == "negative" and "@" + brand.handle not in text
        if cc and casual and rng.random() < 0.08:
            text = f"{text} cc @{brand.handle}"
        if casual and rng.random() < 0.06:
            text = text.lower()
        return text

    def _id(self, ms: int, index: int) -> str:
        """Unique within the hour: the index is the mention's place in its hour."""
        return _snowflake(ms, (index + self._salt) & _SEQUENCE_MASK)

    @staticmethod
    def _follow_up_id(ms: int, root: _Post, step: int) -> str:
        # The upper half of the sequence space, so it never meets an indexed id.
        mixed = (int(root.mention.id) * _GOLDEN) >> 24
        return _snowflake(ms, (1 << (_SEQUENCE_BITS - 1)) | ((mixed + step) & _SEQUENCE_MASK))

    def _post(self, draft: _Draft, mention_id: str, *, parent: _Post | None) -> _Post:
        mention = Mention(
            id=mention_id,
            source="demo",
            url=_URL_PREFIX + mention_id,
            text=draft.text,
            lang="en",
            created_at=_from_ms(draft.ms),
            author=draft.person.author,
            in_reply_to_id=None if parent is None else parent.mention.id,
            conversation_id=mention_id if parent is None else parent.conversation_id,
            metrics=draft.metrics,
        )
        return _Post(
            ms=draft.ms,
            mention=mention,
            brand=draft.brand,
            tone=draft.kind.tone,
            kind=draft.kind,
            incident=draft.incident,
            person=draft.person,
        )


def _metrics(
    rng: random.Random, followers: int, kind: _Kind, *, incident: bool, reply: bool
) -> Engagement:
    rate = rng.lognormvariate(math.log(0.006), 0.9)
    if incident and kind.tone == "negative":
        rate *= 2.5  # outrage travels
    if kind.voice == "media":
        rate *= 1.5
    if reply:
        rate *= 0.3
    likes = int(followers * min(rate, 0.5) + rng.random() * 3.0)
    reposts = int(likes * rng.uniform(0.03, 0.25) + (1 if rng.random() < 0.05 else 0))
    replies = int(likes * rng.uniform(0.02, 0.15) + rng.random() * 1.5)
    return Engagement(likes=likes, reposts=reposts, replies=replies)


def generate_mentions(
    rng: random.Random,
    start: datetime,
    end: datetime,
    brands: Sequence[DemoBrand],
    *,
    base_rate_per_hour: float,
    incidents: Sequence[Incident],
) -> Iterator[Mention]:
    """Demo mentions created in ``[start, end)``, in ``created_at`` order.

    ``base_rate_per_hour`` is the average over a week (working hours get more, nights
    and weekends less); each incident adds its surge on top for its brand. About a
    quarter of the mentions reply to an earlier one, at most three hours older (among
    them the brands' own support accounts answering, and the customer answering back),
    with ``conversation_id`` set to the id of the thread's first mention (which is its
    own ``conversation_id``). A reply near ``start`` may answer a mention from before it.

    One draw from ``rng`` seeds everything; each UTC hour is then generated from that
    draw and the hour alone, so with a fresh ``random.Random(seed)`` the same instant
    always carries the same mentions and ids, whatever window is asked for (given the
    same brands, rate and incidents). Raises ``ValueError`` for naive datetimes, times
    before 2010-11-05, no or duplicate brands, a negative rate, or an incident for a
    brand not in ``brands``.
    """
    _require_aware(start, end)
    if _to_ms(start) < _SNOWFLAKE_EPOCH_MS:
        raise ValueError("demo mentions start on 2010-11-05 at the earliest")
    timeline = _Timeline(rng.getrandbits(64), brands, base_rate_per_hour, incidents)
    return timeline.between(_to_ms(start), _to_ms(end))


# ------------------------------------------------------------------------ the shell


class DemoSource:
    """The demo as a :class:`~services.ingest.sources.protocol.Source`.

    ``items`` first yields the mentions of the last ``backfill`` before ``clock.now()``
    as fast as they are consumed, then, forever, the mentions that fall due as the clock
    moves on, waking every ``1 / rate_per_s`` seconds (between 0.05 s and 1 s) by
    awaiting ``sleep``. ``rate_per_s`` is the weekly average; working hours run above it,
    nights and weekends below. The same ``seed`` gives the same mentions and ids for the
    same times, so a restart re-delivers its backfill as duplicates, not new mentions.

    With ``opening`` set, the live stream adds an opening incident: from ``opening``
    after the backfill, for ``OPENING_LENGTH``, an outage of the first brand (a burst of
    complaints and reposts of one news post; ``_Timeline.opening_incident``), so that
    the demo's alert rules fire in a new instance's first minutes. Each start has its
    own (a restart's backfill does not regenerate the last one: it stays stored once).
    """

    name: str = "demo"

    def __init__(
        self,
        clock: Clock,
        *,
        seed: int = 7,
        backfill: timedelta = timedelta(days=7),
        rate_per_s: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        brands: Sequence[DemoBrand] = DEMO_BRANDS,
        opening: timedelta | None = None,
    ) -> None:
        if not rate_per_s > 0.0 or math.isinf(rate_per_s):
            raise ValueError("DemoSource: rate_per_s must be a positive finite number")
        if backfill < timedelta(0):
            raise ValueError("DemoSource: backfill must not be negative")
        if not brands:
            raise ValueError("DemoSource: needs at least one brand")
        self._clock = clock
        self._seed = seed
        self._backfill = backfill
        self._rate_per_hour = rate_per_s * 3600.0
        self._tick_s = min(max(1.0 / rate_per_s, _MIN_TICK_S), _MAX_TICK_S)
        self._sleep = sleep
        self._brands = tuple(brands)
        self._opening = opening

    def _timeline(self, around_ms: int) -> tuple[_Timeline, int]:
        """A timeline with incidents planned from a day before the backfill that ends at
        ``around_ms`` to eight days after it, and the time until which it may be used."""
        start = _from_ms(around_ms) - self._backfill - timedelta(days=1)
        end = _from_ms(around_ms) + timedelta(days=8)
        incidents = plan_incidents(random.Random(self._seed), start, end, self._brands)
        base = random.Random(self._seed).getrandbits(64)
        timeline = _Timeline(base, self._brands, self._rate_per_hour, incidents)
        return timeline, _to_ms(end - timedelta(days=1))

    async def items(self) -> AsyncGenerator[SourceItem, None]:
        now_ms = _to_ms(self._clock.now())
        timeline, usable_until = self._timeline(now_ms)
        backfill_ms = self._backfill // _ONE_MS
        for n, mention in enumerate(timeline.between(now_ms - backfill_ms, now_ms), start=1):
            yield mention
            if n % _BACKFILL_YIELD_EVERY == 0:
                await self._sleep(0)
        cursor = now_ms
        opening: list[Mention] = []
        if self._opening is not None:
            opening = timeline.opening_incident(
                0, now_ms + self._opening // _ONE_MS, OPENING_LENGTH // _ONE_MS
            )
        while True:
            await self._sleep(self._tick_s)
            now_ms = _to_ms(self._clock.now())
            if now_ms <= cursor:
                continue
            if now_ms > usable_until:
                timeline, usable_until = self._timeline(cursor)
            due = list(timeline.between(cursor, now_ms))
            if opening and _to_ms(opening[0].created_at) < now_ms:
                n = bisect.bisect_left([_to_ms(m.created_at) for m in opening], now_ms)
                due = sorted([*due, *opening[:n]], key=lambda m: m.created_at)
                del opening[:n]
            for mention in due:
                yield mention
            cursor = now_ms


# -------------------------------------------------------------------------- helpers


def _snowflake(ms: int, sequence: int) -> str:
    return str(((ms - _SNOWFLAKE_EPOCH_MS) << _SEQUENCE_BITS) | sequence)


def _unit(key: int) -> float:
    """A uniform number in [0, 1) that depends on ``key`` alone."""
    return (((key * _GOLDEN) & 0xFFFFFFFFFFFFFFFF) >> 11) / float(1 << 53)


def _pick(rng: random.Random, *choices: tuple[_T, float]) -> _T:
    return _Weighted(choices).pick(rng)


def _to_ms(moment: datetime) -> int:
    return (moment - _UNIX_EPOCH) // _ONE_MS


def _from_ms(ms: int) -> datetime:
    return _UNIX_EPOCH + timedelta(milliseconds=ms)


def _require_aware(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None:
            raise ValueError(f"{moment.isoformat()} is not timezone-aware")
