from __future__ import annotations

import random
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.core.brands.matcher import BrandDefinition, BrandMatcher
from services.core.clock import FrozenClock
from services.core.models import MAX_TEXT_CHARS, Mention
from services.ingest.sources.demo import (
    DEMO_BRANDS,
    INCIDENT_EVERY,
    DemoBrand,
    DemoSource,
    Incident,
    generate_mentions,
    load_demo_brands,
    plan_incidents,
)
from services.ingest.sources.protocol import Source

# A Tuesday and a Wednesday, no incidents unless a test adds one.
TUESDAY = datetime(2025, 3, 11, tzinfo=UTC)
TWO_DAYS = timedelta(days=2)
RATE = 400.0

_ANALYZER = SentimentIntensityAnalyzer()


def is_negative(text: str) -> bool:
    return float(_ANALYZER.polarity_scores(text)["compound"]) <= -0.05


def generate(
    seed: int = 7,
    start: datetime = TUESDAY,
    end: datetime = TUESDAY + TWO_DAYS,
    *,
    rate: float = RATE,
    incidents: Iterable[Incident] = (),
) -> list[Mention]:
    return list(
        generate_mentions(
            random.Random(seed),
            start,
            end,
            DEMO_BRANDS,
            base_rate_per_hour=rate,
            incidents=list(incidents),
        )
    )


def brand_terms(brand: DemoBrand) -> tuple[str, ...]:
    return tuple(t.lower() for t in (brand.name, "@" + brand.handle, "#" + brand.hashtag))


def mentions_brand(mention: Mention, brand: DemoBrand) -> bool:
    text = mention.text.lower()
    return any(term in text for term in brand_terms(brand))


@pytest.fixture(scope="module")
def stream() -> list[Mention]:
    return generate()


# ------------------------------------------------------------------- the contract


def test_every_mention_satisfies_the_contract(stream: list[Mention]) -> None:
    assert len(stream) > 10_000
    for mention in stream:
        assert Mention.model_validate_json(mention.model_dump_json()) == mention
        assert mention.source == "demo"
        assert mention.lang == "en"
        assert mention.url == f"https://demo.sentimon.invalid/p/{mention.id}"
        assert 1 <= len(mention.text) <= MAX_TEXT_CHARS
        assert mention.created_at.utcoffset() == timedelta(0)
        assert mention.metrics is not None


def test_ids_are_unique_and_times_sorted_within_the_window(stream: list[Mention]) -> None:
    assert len({m.id for m in stream}) == len(stream)
    times = [m.created_at for m in stream]
    assert times == sorted(times)
    assert times[0] >= TUESDAY
    assert times[-1] < TUESDAY + TWO_DAYS


def test_the_same_seed_gives_the_same_stream() -> None:
    end = TUESDAY + timedelta(hours=5)
    assert generate(seed=11, end=end) == generate(seed=11, end=end)
    other = generate(seed=12, end=end)
    assert {m.id for m in other}.isdisjoint({m.id for m in generate(seed=11, end=end)})


def test_a_restart_regenerates_the_same_mentions_for_the_same_times() -> None:
    late_start = TUESDAY + timedelta(hours=7, minutes=23)
    end = TUESDAY + timedelta(hours=10)
    full = generate(start=TUESDAY, end=end)
    later = generate(start=late_start, end=end)
    assert later == [m for m in full if m.created_at >= late_start]


def test_rejects_naive_times_and_incidents_of_unknown_brands() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate(start=datetime(2025, 3, 11))
    stranger = Incident(
        brand="Initech",
        kind="outage",
        start=TUESDAY,
        end=TUESDAY + timedelta(hours=1),
        volume_multiplier=3.0,
    )
    with pytest.raises(ValueError, match="Initech"):
        generate(incidents=[stranger])


# ----------------------------------------------------------------------- realism


def test_every_mention_names_a_brand_by_one_of_its_query_terms(stream: list[Mention]) -> None:
    configs = {c.name: c for c in load_demo_brands()}
    included: dict[str, list[str]] = {}
    excluded: list[str] = []
    for name, config in configs.items():
        wanted, _, unwanted = config.query.partition(" AND NOT ")
        included[name] = query_terms(wanted)
        excluded += query_terms(unwanted)
    per_brand = Counter[str]()
    for mention in stream:
        text = mention.text.lower()
        named = [name for name, terms in included.items() if any(t in text for t in terms)]
        assert named, mention.text
        assert not any(t in text for t in excluded), mention.text
        per_brand.update(named)
    assert set(per_brand) == set(configs)
    # The simple check of the brief holds for all but the odd alias ("Stack Harbor").
    simple = sum(any(mentions_brand(m, b) for b in DEMO_BRANDS) for m in stream)
    assert simple / len(stream) > 0.98


def test_the_brand_matcher_finds_a_demo_brand_in_every_mention(stream: list[Mention]) -> None:
    matcher = BrandMatcher.compile([BrandDefinition(c.name, c.query) for c in load_demo_brands()])
    matched = Counter[str]()
    for mention in stream:
        brands = matcher.match(mention.text).brands
        assert brands, mention.text
        matched.update(brands)
    assert set(matched) == {b.name for b in DEMO_BRANDS}


def query_terms(query: str) -> list[str]:
    terms = re.findall(r'"([^"]+)"|([@#]?[\w.-]+)', query)
    return [
        (quoted or bare).lower()
        for quoted, bare in terms
        if (quoted or bare) not in ("AND", "OR", "NOT")
    ]


def test_brands_are_talked_about_in_different_tones(stream: list[Mention]) -> None:
    def negative_share(brand: DemoBrand) -> float:
        own = [m for m in stream if mentions_brand(m, brand)]
        return sum(is_negative(m.text) for m in own) / len(own)

    by_name = {b.name: b for b in DEMO_BRANDS}
    loved, struggling = negative_share(by_name["Halcyra"]), negative_share(by_name["Quorvia"])
    assert struggling > loved + 0.15


def test_texts_are_varied(stream: list[Mention]) -> None:
    texts = [m.text for m in stream]
    assert len(set(texts)) > len(texts) * 0.5
    assert sum("#" in t for t in texts) > len(texts) * 0.1
    assert sum(t.startswith("@") for t in texts) > len(texts) * 0.1
    emoji = re.compile("[\U0001f300-\U0001faff\u2764]")
    assert sum(bool(emoji.search(t)) for t in texts) > len(texts) * 0.05
    comparisons = [t for t in texts if sum(mentions_brand_text(t, b) for b in DEMO_BRANDS) >= 2]
    assert len(comparisons) > len(texts) * 0.05


def mentions_brand_text(text: str, brand: DemoBrand) -> bool:
    return any(term in text.lower() for term in brand_terms(brand))


def test_working_hours_are_busier_than_nights(stream: list[Mention]) -> None:
    per_hour = Counter(m.created_at.hour for m in stream)
    working = statistics.mean(per_hour[h] for h in range(9, 18))
    night = statistics.mean(per_hour[h] for h in range(0, 6))
    assert working > 3 * night


def test_weekends_are_quieter_than_weekdays() -> None:
    saturday = datetime(2025, 3, 15, tzinfo=UTC)
    weekday = len(generate(start=TUESDAY, end=TUESDAY + timedelta(days=1), rate=200.0))
    weekend = len(generate(start=saturday, end=saturday + timedelta(days=1), rate=200.0))
    assert weekend < 0.6 * weekday


def test_replies_continue_earlier_conversations_of_the_stream(stream: list[Mention]) -> None:
    by_id = {m.id: m for m in stream}
    replies = [m for m in stream if m.in_reply_to_id is not None]
    assert 0.1 < len(replies) / len(stream) < 0.35
    answered = [r for r in replies if r.in_reply_to_id in by_id]
    assert len(answered) > 0.9 * len(replies)
    for reply in answered:
        parent = by_id[str(reply.in_reply_to_id)]
        assert parent.created_at < reply.created_at
        assert reply.conversation_id == parent.conversation_id
        assert reply.text.startswith("@" + parent.author.handle)
    for root in (m for m in stream if m.in_reply_to_id is None):
        assert root.conversation_id == root.id
    deep = [r for r in answered if by_id[str(r.in_reply_to_id)].in_reply_to_id is not None]
    assert deep, "some replies answer a reply"
    official = {"@" + b.handle for b in DEMO_BRANDS}
    assert any("@" + r.author.handle in official for r in answered), "brands answer too"


def test_brands_answer_each_mention_once_and_at_their_own_pace(stream: list[Mention]) -> None:
    by_id = {m.id: m for m in stream}
    accounts = {b.handle: b for b in DEMO_BRANDS}
    answers = [m for m in stream if m.author.handle in accounts and m.in_reply_to_id in by_id]
    per_parent = Counter(m.in_reply_to_id for m in answers)
    assert max(per_parent.values()) == 1

    def median_minutes(brand: str) -> float:
        return statistics.median(
            (m.created_at - by_id[str(m.in_reply_to_id)].created_at) / timedelta(minutes=1)
            for m in answers
            if accounts[m.author.handle].name == brand
        )

    assert median_minutes("Halcyra") < 20 < 45 < median_minutes("Quorvia")


def test_authors_have_heavy_tailed_reach_and_job_titles(stream: list[Mention]) -> None:
    authors = {m.author.id: m.author for m in stream}
    assert 200 < len(authors) < 1_000
    assert len({a.handle for a in authors.values()}) == len(authors)
    followers = [a.followers for a in authors.values()]
    assert statistics.median(followers) < 2_000
    assert max(followers) > 100_000
    assert sum(f > 100_000 for f in followers) < 10
    descriptions = " ".join(a.description or "" for a in authors.values())
    for title in ("CEO", "CTO", "VP Sales", "Head of Marketing", "Director of IT", "Founder"):
        assert title in descriptions
    for title in ("PR manager", "Support engineer", "Student", "Journalist"):
        assert title in descriptions
    verified = sum(a.verified for a in authors.values())
    assert 0 < verified < len(authors) / 4


def test_engagement_grows_with_reach(stream: list[Mention]) -> None:
    def mean_engagement(mentions: Iterable[Mention]) -> float:
        return statistics.mean(m.engagement for m in mentions)

    small = mean_engagement(m for m in stream if m.reach < 500)
    large = mean_engagement(m for m in stream if m.reach >= 20_000)
    assert large > 10 * small


# --------------------------------------------------------------------- incidents


def test_an_incident_spikes_its_brands_volume_and_turns_it_negative() -> None:
    halcyra = next(b for b in DEMO_BRANDS if b.name == "Halcyra")
    outage = Incident(
        brand="Halcyra",
        kind="outage",
        start=TUESDAY + timedelta(hours=13),
        end=TUESDAY + timedelta(hours=17),
        volume_multiplier=6.0,
    )
    mentions = [m for m in generate(rate=200.0, incidents=[outage]) if mentions_brand(m, halcyra)]
    during = [m for m in mentions if outage.start <= m.created_at < outage.end]
    # The same hours a day later, when nothing is wrong.
    calm = [
        m
        for m in mentions
        if outage.start + timedelta(days=1) <= m.created_at < outage.end + timedelta(days=1)
    ]
    outside = [m for m in mentions if not outage.start <= m.created_at < outage.end]
    assert len(during) > 2.5 * len(calm)

    def negative_share(ms: list[Mention]) -> float:
        return sum(is_negative(m.text) for m in ms) / len(ms)

    assert negative_share(during) > negative_share(outside) + 0.3


def test_incidents_are_planned_often_enough_to_be_seen() -> None:
    assert timedelta(days=7) >= 3 * INCIDENT_EVERY
    rng = random.Random(5)
    for _ in range(30):
        start = TUESDAY + timedelta(minutes=rng.randrange(60 * 24 * 365))
        end = start + timedelta(days=7)
        incidents = plan_incidents(random.Random(7), start, end, DEMO_BRANDS)
        inside = [i for i in incidents if start <= i.start and i.end <= end]
        assert len(inside) >= 2
        assert all(i.start < end and i.end > start for i in incidents)
        assert {i.brand for i in incidents} <= {b.name for b in DEMO_BRANDS}
    # Deterministic, and anchored to absolute time: overlapping windows agree.
    first = plan_incidents(random.Random(7), TUESDAY, TUESDAY + timedelta(days=7), DEMO_BRANDS)
    second = plan_incidents(
        random.Random(7), TUESDAY + timedelta(days=3), TUESDAY + timedelta(days=10), DEMO_BRANDS
    )
    overlap = [i for i in first if i.end > TUESDAY + timedelta(days=3)]
    assert overlap == second[: len(overlap)]


def test_planned_incidents_show_in_the_stream() -> None:
    end = TUESDAY + timedelta(days=7)
    incidents = plan_incidents(random.Random(7), TUESDAY, end, DEMO_BRANDS)
    mentions = generate(start=TUESDAY, end=end, rate=100.0, incidents=incidents)
    for incident in incidents:
        if incident.start < TUESDAY or incident.end > end:
            continue
        brand = next(b for b in DEMO_BRANDS if b.name == incident.brand)
        own = [m for m in mentions if mentions_brand(m, brand)]
        during = sum(incident.start <= m.created_at < incident.end for m in own)
        hours = (incident.end - incident.start) / timedelta(hours=1)
        weekly_per_hour = len(own) / (7 * 24)
        assert during / hours > 1.5 * weekly_per_hour, incident


# ------------------------------------------------------------------ brands file


def test_load_demo_brands_returns_competing_brands() -> None:
    configs = load_demo_brands()
    names = [c.name for c in configs]
    assert 4 <= len(configs) <= 5
    assert names == [b.name for b in DEMO_BRANDS]
    for config, brand in zip(configs, DEMO_BRANDS, strict=True):
        assert config.competitors
        assert set(config.competitors) <= set(names) - {config.name}
        assert config.competitors == brand.competitors
        assert f"@{brand.handle}" in config.query
        assert config.owned_handles == (brand.handle,)  # its official account's
        assert f"#{brand.hashtag}" in config.query
        for competitor in config.competitors:
            rival = next(c for c in configs if c.name == competitor)
            assert config.name in rival.competitors, "competition is mutual"


# --------------------------------------------------------------------- the shell


class FakeSleep:
    """Advances the clock by what it is asked to sleep, and returns at once."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(timedelta(seconds=seconds))


async def test_demo_source_backfills_then_follows_the_clock() -> None:
    started = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)
    clock = FrozenClock(started)
    sleep = FakeSleep(clock)
    source = DemoSource(clock, seed=3, backfill=timedelta(hours=3), rate_per_s=0.1, sleep=sleep)
    assert isinstance(source, Source)
    assert source.name == "demo"

    backfill: list[Mention] = []
    live: list[Mention] = []
    async with aclosing(source.items()) as items:
        async for item in items:
            assert isinstance(item, Mention)
            if item.created_at < started:
                assert not live, "the backfill comes first"
                assert clock.now() == started, "the backfill does not wait"
                backfill.append(item)
                continue
            assert item.created_at < clock.now(), "live mentions are never from the future"
            live.append(item)
            if len(live) == 150:
                break

    assert backfill[0].created_at >= started - timedelta(hours=3)
    assert len(backfill) > 500
    assert 0 in sleep.calls, "the backfill lets other tasks run"
    times = [m.created_at for m in backfill + live]
    assert times == sorted(times)
    assert len({m.id for m in backfill + live}) == len(backfill) + len(live)
    # Paced by the injected sleep: about one wake-up per second of demo time.
    assert sum(sleep.calls) == pytest.approx((clock.now() - started).total_seconds())
    assert max(sleep.calls) <= 1.0

    expected = list(
        generate_mentions(
            random.Random(3),
            started - timedelta(hours=3),
            started,
            DEMO_BRANDS,
            base_rate_per_hour=360.0,
            incidents=plan_incidents(
                random.Random(3), started - timedelta(days=1), started, DEMO_BRANDS
            ),
        )
    )
    assert backfill == expected


async def test_a_restarted_demo_source_redelivers_the_same_ids() -> None:
    started = datetime(2025, 3, 12, 15, 0, tzinfo=UTC)
    clock = FrozenClock(started)
    first = DemoSource(clock, seed=9, backfill=timedelta(0), rate_per_s=0.2, sleep=FakeSleep(clock))
    live: list[Mention] = []
    async with aclosing(first.items()) as items:
        async for item in items:
            assert isinstance(item, Mention)
            live.append(item)
            if len(live) == 200:
                break
    stopped = clock.now()

    clock = FrozenClock(stopped)
    restarted = DemoSource(
        clock, seed=9, backfill=stopped - started, rate_per_s=0.2, sleep=FakeSleep(clock)
    )
    again: list[Mention] = []
    async with aclosing(restarted.items()) as items:
        async for item in items:
            assert isinstance(item, Mention)
            if item.created_at >= stopped:
                break
            again.append(item)
    assert [m.id for m in again[: len(live)]] == [m.id for m in live]
    assert again[: len(live)] == live


def test_demo_source_rejects_a_rate_that_is_not_positive() -> None:
    clock = FrozenClock(TUESDAY)
    with pytest.raises(ValueError, match="rate_per_s"):
        DemoSource(clock, rate_per_s=0.0)
