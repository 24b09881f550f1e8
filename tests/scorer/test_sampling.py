"""Spot-check sampling: deterministic, stratified, uncertainty-aware, weighted."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import pytest

from services.core.accuracy import LabelledItem
from services.core.brands import BrandDefinition, BrandMatcher
from services.core.models import Mention, Sentiment
from services.scorer.lexicon import VaderScorer, lexicon_sentiment
from services.scorer.process import ScoringConfig, score_mentions
from services.scorer.routing import RoutingThresholds, route_text
from services.scorer.sampling import (
    SamplingPolicy,
    brand_floor_rates,
    inclusion_probability,
    is_uncertain,
    neyman_lifts,
    sampling_policy,
    spot_check,
    stratum_rate,
)
from services.scorer.settings import ScorerSettings
from tests.fixtures.mentions import mention_doc

N = 20_000


def verdict(
    label: str = "neutral", compound: float = 0.0, method: str = "lexicon", confidence: float = 0.9
) -> Sentiment:
    return Sentiment(
        label=label,
        score=compound,
        confidence=confidence,
        method=method,
        lexicon_compound=compound,
    )


CLEAR_NEUTRAL = verdict("neutral", 0.0)  # 0.05 from both cut points: not uncertain at margin 0.04
POLICY = SamplingPolicy.build(margin=0.04)


def test_the_decision_is_a_pure_function_of_the_key_and_verdict() -> None:
    a = [spot_check("x", f"m{i}", CLEAR_NEUTRAL, POLICY) for i in range(2_000)]
    b = [spot_check("x", f"m{i}", CLEAR_NEUTRAL, POLICY) for i in range(2_000)]
    assert a == b
    assert any(a) and not all(a)
    # another source with the same id is another mention
    c = [spot_check("mastodon", f"m{i}", CLEAR_NEUTRAL, POLICY) for i in range(2_000)]
    assert c != a


@pytest.mark.parametrize(
    ("source", "sentiment", "rate"),
    [
        ("x", CLEAR_NEUTRAL, 0.02),  # no lift
        ("rss", CLEAR_NEUTRAL, 0.10),  # low-volume source lifted ×5
        ("x", verdict("positive", 0.6), 0.04),  # the rarest label lifted ×2
        ("rss", verdict("positive", 0.6), 0.10),  # the largest lift wins
    ],
)
def test_each_stratum_is_sampled_at_its_rate_with_weight_one_over_it(
    source: str, sentiment: Sentiment, rate: float
) -> None:
    assert stratum_rate(POLICY, sentiment.method, sentiment.label, source) == pytest.approx(rate)
    picked = [spot_check(source, f"s{i}", sentiment, POLICY) for i in range(N)]
    sampled = [p for p in picked if p is not None]
    # binomial: 4 standard deviations
    sd = (N * rate * (1 - rate)) ** 0.5
    assert abs(len(sampled) - N * rate) < 4 * sd
    assert all(p.weight == pytest.approx(1 / rate) for p in sampled)
    assert {p.reason for p in sampled} == {"random"}


def test_a_rare_stratum_is_represented_and_weights_recover_the_stream() -> None:
    # 98 % neutral tweets from x, 1 % positive transformer verdicts, 1 % rss
    size = 100_000
    stream: list[tuple[str, Sentiment]] = []
    for i in range(size):
        if i % 100 == 0:
            stream.append(("x", verdict("positive", 0.7, "transformer")))
        elif i % 100 == 1:
            stream.append(("rss", CLEAR_NEUTRAL))
        else:
            stream.append(("x", CLEAR_NEUTRAL))
    policy = SamplingPolicy.build(margin=0.04, lifts={"method:transformer": 5, "source:rss": 5})
    sample = [
        (source, s, pick)
        for i, (source, s) in enumerate(stream)
        if (pick := spot_check(source, f"t{i}", s, policy)) is not None
    ]
    strata = Counter((source, s.method) for source, s, _ in sample)
    # 1,000 of each rare stratum at 10 % → ~100 each (a plain 2 % sample would give ~20)
    assert strata[("rss", "lexicon")] >= 70 and strata[("x", "transformer")] >= 70
    # Horvitz–Thompson: the weights add up to the stream's size, per stratum too
    total = sum(p.weight for _, _, p in sample)
    assert abs(total - size) / size < 0.05
    rare = sum(p.weight for source, _, p in sample if source == "rss")
    assert abs(rare - size / 100) / (size / 100) < 0.3


def test_mentions_near_a_threshold_are_sampled_more_often() -> None:
    near = verdict("positive", 0.06)  # 0.01 above VADER's positive cut point
    assert is_uncertain(POLICY, near) and not is_uncertain(POLICY, CLEAR_NEUTRAL)
    assert inclusion_probability(POLICY, near, "x") == pytest.approx(0.10)
    picked = [p for i in range(N) if (p := spot_check("x", f"u{i}", near, POLICY)) is not None]
    assert abs(len(picked) - N * 0.10) < 4 * (N * 0.1 * 0.9) ** 0.5
    reasons = Counter(p.reason for p in picked)
    # u < 0.04 (positive's stratum rate) is "random", 0.04 ≤ u < 0.10 "uncertainty"
    assert reasons["random"] / len(picked) == pytest.approx(0.4, abs=0.05)
    assert all(p.weight == pytest.approx(10.0) for p in picked)


def test_a_hesitant_transformer_and_a_borderline_router_count_as_uncertain() -> None:
    assert is_uncertain(POLICY, verdict("negative", -0.8, "transformer", confidence=0.45))
    assert not is_uncertain(POLICY, verdict("negative", -0.8, "transformer", confidence=0.95))
    # The router's trust in the lexicon for this text, whatever its fitted weights: a
    # threshold 0.02 away puts the text near the line, one 0.4 away far from it.
    text = "the acme release is out today"
    trust = route_text(text, 0.5, RoutingThresholds()).lexicon_trust
    near_t = trust + 0.02 if trust < 0.5 else trust - 0.02
    far_t = trust + 0.4 if trust < 0.5 else trust - 0.4
    near = SamplingPolicy.build(margin=0.04, routing=RoutingThresholds(min_trust=near_t))
    far = SamplingPolicy.build(margin=0.04, routing=RoutingThresholds(min_trust=far_t))
    assert is_uncertain(near, verdict("positive", 0.5), text)
    assert not is_uncertain(far, verdict("positive", 0.5), text)
    assert not is_uncertain(near, verdict("positive", 0.5))  # no text, no router check


def test_a_share_of_the_sample_goes_to_two_analysts() -> None:
    picked = [
        p for i in range(N) if (p := spot_check("rss", f"d{i}", CLEAR_NEUTRAL, POLICY)) is not None
    ]
    doubles = sum(p.reviews_required == 2 for p in picked)
    assert {p.reviews_required for p in picked} == {1, 2}
    assert doubles / len(picked) == pytest.approx(0.10, abs=0.03)


def test_bad_policies_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="rate"):
        SamplingPolicy.build(rate=1.5)
    with pytest.raises(ValueError, match="lifts"):
        SamplingPolicy.build(lifts={"colour:red": 2})
    with pytest.raises(ValueError, match="lifts"):
        SamplingPolicy.build(lifts={"source:rss": -1})


def test_settings_build_the_policy() -> None:
    settings = ScorerSettings(
        spot_check_rate=0.05,
        spot_check_lifts={"source:web": 3},
        spot_check_uncertain_rate=0.2,
        spot_check_double_share=0.5,
    )
    policy = sampling_policy(settings)
    assert stratum_rate(policy, "lexicon", "neutral", "web") == pytest.approx(0.15)
    assert stratum_rate(policy, "lexicon", "neutral", "rss") == pytest.approx(0.05)
    assert policy.uncertain_rate == 0.2 and policy.double_share == 0.5
    assert policy == sampling_policy(settings)  # equal settings, equal policies


class EveryText:
    def route(self, text: str, lexicon: Sentiment) -> str:
        return "transformer"


class Confident:
    method = "transformer"

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        return [verdict("negative", -0.9, "transformer", 0.99) for _ in texts]


def test_a_routed_mention_is_sampled_on_the_transformers_verdict_and_its_document_agrees() -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    items = []
    for i in range(2_000):
        raw = orjson.dumps(mention_doc(id=f"p{i}", text=f"Acme is great number {i}"))
        items.append((Mention.model_validate_json(raw), raw))
    policy = SamplingPolicy.build(lifts={"label:negative": 10})
    _, records = score_mentions(
        items,
        matcher=BrandMatcher.compile([BrandDefinition("Acme", '"acme"')]),
        compound=VaderScorer().compound,
        router=EveryText(),  # type: ignore[arg-type]
        transformer=Confident(),  # type: ignore[arg-type]
        config=ScoringConfig(sampling=policy),
        now=now,
    )
    flagged = [r for r in records if r.spot_check]
    # negative verdicts are sampled at 20 %: the transformer's stratum, not the lexicon's
    assert abs(len(flagged) / len(records) - 0.2) < 0.03
    for r in records:
        assert orjson.loads(r.doc)["spot_check"] is r.spot_check
        assert (r.spot is not None) is r.spot_check
        if r.spot is not None:
            assert r.spot.weight == pytest.approx(5.0)


def test_neyman_lifts_put_the_labels_where_the_automated_label_says_least() -> None:
    """Neutral verdicts hiding 40 negatives and 20 positives in 100; positive ones wrong
    10 % of the time, negative ones 5 %: each label's rate is ∝ the spread of the true
    sentiment (+1/0/−1) behind it (computed here by hand), the stream's mean rate is
    unchanged, the source lifts stay, and an irrelevant label counts nowhere."""

    def items(label: str, truths: dict[str, int], weight: float) -> list[LabelledItem]:
        return [
            LabelledItem("Acme", "x", "lexicon", label, weight, (truth,))
            for truth, n in truths.items()
            for _ in range(n)
        ]

    labelled = (
        items("neutral", {"neutral": 40, "negative": 40, "positive": 20}, 10.0)
        + items("positive", {"positive": 90, "neutral": 10}, 50.0)
        + items("negative", {"negative": 95, "neutral": 5}, 50.0)
        + [LabelledItem("Acme", "x", "lexicon", "neutral", 10.0, ("irrelevant",))] * 50
    )
    lifts, strata = neyman_lifts(labelled, {"source:rss": 5.0, "label:positive": 2.0})
    by_label = {st.label: st for st in strata}

    def spread(plus: int, minus: int) -> float:  # 100 labels and the pseudo-labels ±1
        mean = (plus - minus) / 102
        return math.sqrt((plus + minus + 2) / 102 - mean * mean)

    spreads = {"neutral": spread(20, 40), "positive": spread(90, 0), "negative": spread(0, 95)}
    shares = {"neutral": 1000 / 11000, "positive": 5000 / 11000, "negative": 5000 / 11000}
    mean = sum(shares[k] * spreads[k] for k in shares)
    for label in shares:
        assert by_label[label].spread == pytest.approx(spreads[label])
        assert by_label[label].stream_share == pytest.approx(shares[label])
        assert lifts[f"label:{label}"] == pytest.approx(spreads[label] / mean, abs=1e-3)
    assert by_label["neutral"].error_rate == pytest.approx(0.6)
    assert sum(shares[k] * lifts[f"label:{k}"] for k in shares) == pytest.approx(1.0, abs=1e-3)
    assert lifts["label:neutral"] > 2 * lifts["label:positive"]
    assert lifts["source:rss"] == 5.0 and by_label["neutral"].labels == 100
    SamplingPolicy.build(lifts=lifts)  # the sampler takes them as they are
    # Without labels there is nothing to allocate by: the label lifts are dropped.
    assert neyman_lifts([], {"source:rss": 5.0, "label:positive": 2.0}) == ({"source:rss": 5.0}, [])


def test_a_small_brand_gets_its_floor_of_labels_with_the_weight_to_match() -> None:
    """Floors from last week's volumes: 70 labels a week for a brand of 350 mentions is a
    rate of 0.2; one of 140 is capped at 0.25; one of 7,000 needs nothing beyond the base
    rate; one with no mention yet gets no floor (a backfill must not flood the queue). A
    mention naming the small brand is sampled at its rate (counted over 4,000 ids) with
    weight 1/rate; one naming only the big brand, at the base rate."""
    rates = brand_floor_rates(
        {"Small": 350, "Tiny": 140, "Big": 7_000, "New": 0}, floor=70, base_rate=0.02
    )
    assert rates == (("Small", 0.2), ("Tiny", 0.25))
    assert brand_floor_rates({"Tiny": 140}, floor=0, base_rate=0.02) == ()
    policy = SamplingPolicy.build(lifts={}, uncertain_rate=0.0)
    policy = dataclasses.replace(policy, brand_rates=rates)
    verdict = lexicon_sentiment(0.6)
    small = [spot_check("x", f"t{i}", verdict, policy, "", ("Small", "Big")) for i in range(4000)]
    big = [spot_check("x", f"t{i}", verdict, policy, "", ("Big",)) for i in range(4000)]
    taken = [s for s in small if s is not None]
    assert 0.18 < len(taken) / 4000 < 0.22
    assert {s.weight for s in taken} == {5.0}
    assert 0.01 < sum(s is not None for s in big) / 4000 < 0.03
    assert inclusion_probability(policy, verdict, "x", "", ("Tiny",)) == 0.25
    with pytest.raises(ValueError, match="brand_rates"):
        dataclasses.replace(policy, brand_rates=(("Tiny", 1.5),))
