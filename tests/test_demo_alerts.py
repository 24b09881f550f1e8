"""The demo ships alert rules and an opening incident (issue 17 §5): a new instance shows
an alert, and what explains it, within its first minutes.

The instance runs on a frozen clock that the demo's sleeps advance, so minutes of demo
time pass without waiting; the evaluator is driven at the moment it would run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.alerts.evaluator import AlertEvaluator
from services.alerts.settings import AlertSettings
from services.api.settings import ApiSettings
from services.core.alerting import AlertKind, RuleParams
from services.core.brands.matcher import BrandDefinition, BrandMatcher
from services.core.clock import FrozenClock
from services.core.metrics import Metrics
from services.core.models import Mention
from services.core.storage.alerts import AlertRuleStore, list_alerts
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.embedded import Embedded
from services.ingest.seed import DEMO_RULE_KINDS, seed_brands, seed_demo_rules
from services.ingest.settings import IngestSettings
from services.ingest.sources.demo import (
    DEMO_BRANDS,
    OPENING_DELAY,
    OPENING_LENGTH,
    DemoSource,
    load_demo_brands,
)
from services.ingest.sources.protocol import SourceItem
from services.scorer.settings import ScorerSettings

# A Wednesday at 14:20 UTC, the busiest hour of the demo's week (the hardest for a spike
# to stand out), and a Sunday night, the quietest.
BUSY = datetime(2026, 3, 11, 14, 20, tzinfo=UTC)
QUIET = datetime(2026, 3, 15, 2, 5, tzinfo=UTC)
RATE = IngestSettings().demo_rate_per_s  # what `sentimon run` streams


class FakeSleep:
    """Advances the clock by what it is asked to sleep, and returns at once."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))


class DemoUntil:
    """The demo source, ended once its clock reaches ``until``."""

    name = "demo"

    def __init__(self, demo: DemoSource, clock: FrozenClock, until: datetime) -> None:
        self._demo, self._clock, self._until = demo, clock, until

    async def items(self) -> AsyncIterator[SourceItem]:
        async with aclosing(self._demo.items()) as items:
            async for item in items:
                yield item
                if self._clock.now() >= self._until:
                    return


async def live_minutes(
    start: datetime, until: datetime, opening: timedelta | None = None
) -> list[Mention]:
    clock = FrozenClock(start)
    source = DemoSource(
        clock, backfill=timedelta(0), rate_per_s=RATE, sleep=FakeSleep(clock), opening=opening
    )
    out: list[Mention] = []
    async for item in DemoUntil(source, clock, until).items():
        assert isinstance(item, Mention)
        out.append(item)
    return out


@pytest.mark.parametrize("start", [BUSY, QUIET])
async def test_the_opening_incident_is_a_burst_about_one_brand_after_the_delay(
    start: datetime,
) -> None:
    until = start + OPENING_DELAY + OPENING_LENGTH + timedelta(minutes=1)
    with_opening = await live_minutes(start, until, opening=OPENING_DELAY)
    usual = await live_minutes(start, until)

    usual_ids = {m.id for m in usual}
    extra = [m for m in with_opening if m.id not in usual_ids]
    assert [m for m in with_opening if m.id in usual_ids] == usual, "the usual stream is kept"
    assert len({m.id for m in with_opening}) == len(with_opening)
    times = [m.created_at for m in with_opening]
    assert times == sorted(times), "merged in time order"
    burst_start = start + OPENING_DELAY
    assert all(burst_start <= m.created_at < burst_start + OPENING_LENGTH for m in extra)

    matcher = BrandMatcher.compile([BrandDefinition(b.name, b.query) for b in load_demo_brands()])
    first = DEMO_BRANDS[0].name
    assert all(first in matcher.match(m.text).brands for m in extra)
    usual_first = sum(first in matcher.match(m.text).brands for m in usual)
    assert len(extra) >= 60
    assert len(extra) >= 3 * usual_first, "several times the brand's usual volume"
    # One news post reposted many times: the story the alert's explanation finds.
    reposts = [m.text for m in extra if m.text.startswith("RT @")]
    assert len(reposts) >= len(extra) // 5
    assert len(set(reposts)) == 1


def test_demo_rules_are_created_once_for_the_tracked_demo_brands(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    migrate(engine)
    clock = FrozenClock(BUSY)
    brands, rules = BrandStore(engine, clock), AlertRuleStore(engine, clock)
    seed_brands(brands, (), demo=True)
    names = [b.name for b in load_demo_brands()]

    assert seed_demo_rules(rules, brands) == len(names) * len(DEMO_RULE_KINDS)
    assert seed_demo_rules(rules, brands) == 0, "a restart adds none"
    stored = rules.list()
    assert sorted((r.brand, r.params.kind) for r in stored) == sorted(
        (n, k) for n in names for k in DEMO_RULE_KINDS
    )
    assert all(r.params == RuleParams(kind=r.params.kind) and r.enabled for r in stored)
    assert {AlertKind.NEGATIVE_SPIKE, AlertKind.VOLUME_SPIKE} <= set(DEMO_RULE_KINDS)
    engine.dispose()


def test_an_instance_with_rules_of_its_own_gets_no_demo_rules(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    migrate(engine)
    clock = FrozenClock(BUSY)
    brands, rules = BrandStore(engine, clock), AlertRuleStore(engine, clock)
    seed_brands(brands, (), demo=True)
    own = rules.create(DEMO_BRANDS[1].name, RuleParams(kind=AlertKind.NEGATIVE_SHARE))
    assert seed_demo_rules(rules, brands) == 0
    assert rules.list() == [own]
    engine.dispose()


@pytest.mark.parametrize("start", [BUSY, QUIET])
async def test_a_new_demo_instance_raises_an_alert_that_explains_itself_within_minutes(
    tmp_path: Path, start: datetime
) -> None:
    """The week of backfill, then the live stream until four minutes after the start:
    the evaluator, run then, raises the demo rules' alert for the first brand."""
    data_dir = tmp_path / "data"
    clock = FrozenClock(start)
    emb = Embedded(
        ingest=IngestSettings(data_dir=data_dir, demo=False, journal=False),
        scorer=ScorerSettings(data_dir=data_dir, scorer_mode="lexicon", spot_check_rate=0.0),
        api=ApiSettings(data_dir=data_dir),
        alerts=AlertSettings(alerts_enabled=False),
        clock=clock,
    )
    seen_at = start + timedelta(minutes=4)
    async with emb:
        seed_brands(emb.brands, (), demo=True)
        seed_demo_rules(AlertRuleStore(emb.engine, clock), emb.brands)
        await emb.refresh_brands()
        demo = DemoSource(
            clock,
            backfill=timedelta(days=7),
            rate_per_s=RATE,
            sleep=FakeSleep(clock),
            opening=OPENING_DELAY,
        )
        emb.add_source(DemoUntil(demo, clock, seen_at))
        await emb.drain(timeout_s=600)
        # The source ends at its first mention past seen_at (seconds later at night).
        assert clock.now() - seen_at < timedelta(seconds=30)
        clock.advance(seen_at - clock.now())
        evaluator = AlertEvaluator(emb.engine, emb.alerts, clock, Metrics(CollectorRegistry()))
        evaluator.evaluate_once()
        with emb.engine.connect() as conn:
            alerts = list_alerts(conn)

    first = DEMO_BRANDS[0].name
    assert alerts, "the demo raised no alert in its first four minutes"
    assert {a.brand for a in alerts} == {first}
    kinds = {a.kind for a in alerts}
    assert AlertKind.NEGATIVE_SPIKE.value in kinds
    for a in alerts:
        assert a.window_start <= start + OPENING_DELAY < a.window_end
        assert a.doc["severity"] in ("medium", "high", "critical")
        assert a.doc["top_mentions"], "it quotes the window's mentions"
        assert first in a.doc["summary"]
        story = a.doc["story"]
        assert story is not None and story["size"] >= 10
