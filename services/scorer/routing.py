"""Routing: which mentions the lexicon's verdict is good enough for, and which go to the
transformer for a second opinion.

VADER's compound band alone is a poor judge of ambiguity (a tweet with no lexicon word
at all gets compound 0 and is routed, a sarcastic "great, just great" gets 0.8 and is
kept). The router reads the compound *and* cheap signals from the text — positive and
negative words both present, negation, contrast ("but"), sarcasm markers, how much of
the text the lexicon covers, emoji, questions — and combines them into ``lexicon_trust``,
an estimate of the probability that the lexicon's label is right (a logistic model fitted
on TweetEval **val**, weighted so each true class counts equally, as macro-recall does).

The contract (pure, deterministic, no I/O; microseconds per text)::

    features = routing_features(text, compound)            # RoutingFeatures
    decision = decide(features, thresholds)                # RoutingDecision
    decision = route_text(text, compound, thresholds)      # both in one call

    RoutingDecision.route          "lexicon" | "transformer"
    RoutingDecision.lexicon_trust  estimated P(lexicon label right), in [0, 1]
    RoutingDecision.margin         lexicon_trust - thresholds.min_trust: < 0 means routed;
                                   |margin| small means "near the routing threshold"
                                   (what uncertainty sampling looks for)

Two trust models. ``RoutingModel`` (``shipped_signals_model()``, weights in
``models/sentimon-router/signals.json``): the logistic model over the 19 signals.
``TextRoutingModel`` (the default from settings, ``route_model="text"``): a
softmax regression over a hashed bag of words/bigrams plus the same signals, trained on
47.5k SemEval tweets (TweetEval val held out; weights in ``models/sentimon-router/``),
whose trust is the probability it gives the lexicon's own label — it has learnt which
words VADER misreads on tweets. ``route_text`` uses the text model when
``thresholds.text_model`` is set; ``decide`` (no text) uses the signals model or a
given trust. Either way the kept mention's verdict stays VADER's.

``RoutingThresholds`` comes from ``ScorerSettings`` (``routing_thresholds(settings)``):
``min_trust`` (route when the trust is below it) and ``always_route_band`` (route any
text with |compound| below it whatever the trust, 0 disables). Raising ``min_trust``
routes more mentions: the trade-off curve (share routed → macro-recall) is in
``docs/benchmarks.md``. ``FeatureRouter`` adapts this to the pipeline's ``Router`` seam.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field, fields
from pathlib import Path

import numpy as np

from services.core.models import Sentiment
from services.scorer.lexicon import NEGATIVE_THRESHOLD, POSITIVE_THRESHOLD
from services.scorer.protocol import Route
from services.scorer.settings import ScorerSettings

CONTRAST_WORDS = frozenset(
    {"but", "however", "though", "although", "yet", "except", "despite", "nevertheless"}
)
# Cheap sarcasm and irony cues on tweets (matched in the lower-cased text); each one is
# weak, together they tell.
SARCASM_MARKERS: tuple[str, ...] = (
    "#sarcasm",
    "#not ",
    "yeah right",
    "yeah, right",
    "oh great",
    "oh, great",
    "oh joy",
    "thanks a lot",
    "just what i needed",
    "as if ",
    "love how",
    "love it when",
    " /s",
)
_TOKEN = re.compile(r"[\w']+|[^\w\s]{2,4}")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff]")


@functools.cache
def _lexicon() -> tuple[Mapping[str, float], frozenset[str]]:
    from vaderSentiment.vaderSentiment import NEGATE, SentimentIntensityAnalyzer

    negations = frozenset(w.replace("'", "") for w in NEGATE) | frozenset(NEGATE)
    return SentimentIntensityAnalyzer().lexicon, negations


@dataclass(frozen=True, slots=True)
class RoutingFeatures:
    """What the router knows about a text. All cheap: one tokenisation, dict look-ups."""

    abs_compound: float
    lexicon_positive: float  # 1.0 if the lexicon's label is positive
    lexicon_negative: float
    positive_strength: float  # |compound| if the label is positive, else 0
    negative_strength: float
    positive_words: float  # counts, capped at 3
    negative_words: float
    mixed: float  # both positive and negative words
    negation: float
    contrast: float
    sarcasm: float
    no_sentiment_words: float
    coverage: float  # share of word tokens in the lexicon
    emoji: float
    question: float
    exclamation: float
    long_text: float  # more than 20 tokens
    hashtag: float
    link: float

    def vector(self) -> tuple[float, ...]:
        return astuple(self)


FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(RoutingFeatures))


def routing_features(text: str, compound: float) -> RoutingFeatures:
    """The features of ``text`` (as the lexicon scored it) and its compound score."""
    lexicon, negations = _lexicon()
    lowered = text.lower()
    tokens = _TOKEN.findall(lowered)
    words = [t for t in tokens if t[0].isalnum() or t[0] == "'"]
    positive = negative = covered = 0
    negation = contrast = False
    for t in tokens:
        valence = lexicon.get(t)
        if valence is not None:
            covered += 1
            if valence > 0:
                positive += 1
            elif valence < 0:
                negative += 1
        if t in negations or t.endswith("n't"):
            negation = True
        elif t in CONTRAST_WORDS:
            contrast = True
    return RoutingFeatures(
        abs_compound=abs(compound),
        lexicon_positive=float(compound >= POSITIVE_THRESHOLD),
        lexicon_negative=float(compound <= NEGATIVE_THRESHOLD),
        positive_strength=compound if compound >= POSITIVE_THRESHOLD else 0.0,
        negative_strength=-compound if compound <= NEGATIVE_THRESHOLD else 0.0,
        positive_words=float(min(positive, 3)),
        negative_words=float(min(negative, 3)),
        mixed=float(positive > 0 and negative > 0),
        negation=float(negation),
        contrast=float(contrast),
        sarcasm=float(any(m in lowered for m in SARCASM_MARKERS)),
        no_sentiment_words=float(positive + negative == 0),
        coverage=covered / len(words) if words else 0.0,
        emoji=float(_EMOJI.search(text) is not None),
        question=float("?" in text),
        exclamation=float("!" in text),
        long_text=float(len(tokens) > 20),
        hashtag=float("#" in text),
        link=float("http" in lowered),
    )


@dataclass(frozen=True, slots=True)
class RoutingModel:
    """Logistic weights over ``FEATURE_NAMES``: ``trust = sigmoid(bias + w · features)``."""

    bias: float
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURE_NAMES):
            raise ValueError(f"{len(self.weights)} weights for {len(FEATURE_NAMES)} features")

    def trust(self, features: RoutingFeatures) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, features.vector(), strict=True))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    @classmethod
    def load(cls, path: Path) -> RoutingModel:
        """The weights that ``python -m services.scorer.training.routing_fit`` writes: a
        JSON object with a ``bias`` and ``weights``, one per name of ``FEATURE_NAMES``.

        Raises ``ValueError`` naming the file if it is unreadable, or if its features are
        not exactly ``FEATURE_NAMES``.
        """
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
            bias, weights = card["bias"], card["weights"]
            if set(weights) != set(FEATURE_NAMES):
                unexpected = sorted(set(weights) ^ set(FEATURE_NAMES))
                raise ValueError(f"features {unexpected} missing or not in FEATURE_NAMES")
            values = (bias, *(weights[name] for name in FEATURE_NAMES))
            if not all(isinstance(v, float | int) and not isinstance(v, bool) for v in values):
                raise ValueError("bias and weights must be numbers")
        except (OSError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"router signals {path}: unreadable ({e})") from e
        return cls(bias=float(bias), weights=tuple(float(w) for w in values[1:]))


# The signals model's weights are fitted on TweetEval val by ``python -m
# services.scorer.training.routing_fit`` (class-balanced logistic regression of "the
# lexicon's label is right") and shipped beside the text router's. Read as: a strong
# compound earns trust, more so when positive; a weak positive one loses it; text the
# lexicon covers well, or with no sentiment word at all (VADER says neutral), is trusted
# more; negation, questions and links less. (Emoji never occur in val.)
ROUTER_MODEL_NAME = "sentimon-router"
SIGNALS_FILE = "signals.json"


def default_router_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "models" / ROUTER_MODEL_NAME


@functools.cache
def shipped_signals_model() -> RoutingModel:
    """The signals model's weights shipped under ``models/`` (loaded once)."""
    return RoutingModel.load(default_router_dir() / SIGNALS_FILE)


# --- the text router: hashed words and bigrams + the signals above, linear ---------
# A 3-class softmax over a hashed bag of words/bigrams (L2-normalised) and the 19
# signals, trained on 47.5k SemEval tweets (TweetEval val held out) by
# ``python -m services.scorer.training.router_train``. Its trust in the lexicon is the
# probability it gives VADER's label: it has read which words VADER misjudges on tweets.
HASH_DIM = 1 << 18
_HASH_TOKEN = re.compile(r"[\w']+|[^\w\s]{1,3}")
_URL = re.compile(r"https?://\S+")
_USER = re.compile(r"@\w+")


def hashed_terms(text: str) -> list[int]:
    """Distinct hashed unigrams and bigrams of ``text`` (lower-cased, links and user
    names normalised), as column indices in ``[0, HASH_DIM)``."""
    lowered = _USER.sub("@user", _URL.sub(" URL ", text.lower()))
    words = _HASH_TOKEN.findall(lowered)
    terms = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    return sorted({zlib.crc32(t.encode("utf-8", "surrogatepass")) & (HASH_DIM - 1) for t in terms})


def default_router_path() -> Path:
    return default_router_dir() / "router.npz"


@dataclass(frozen=True, eq=False)
class TextRoutingModel:
    """``P(class | text) = softmax(terms[hashed] / sqrt(n) + signals · features + bias)``;
    trust = the probability of the lexicon's own label."""

    terms: np.ndarray  # (HASH_DIM, 3)
    signals: np.ndarray  # (len(FEATURE_NAMES), 3)
    bias: np.ndarray  # (3,)

    def __post_init__(self) -> None:
        if self.terms.shape != (HASH_DIM, 3) or self.signals.shape != (len(FEATURE_NAMES), 3):
            raise ValueError(
                f"router weights have shapes {self.terms.shape}, {self.signals.shape}; "
                f"expected {(HASH_DIM, 3)}, {(len(FEATURE_NAMES), 3)}"
            )

    @classmethod
    def load(cls, path: Path) -> TextRoutingModel:
        try:
            with np.load(path) as z:
                terms, signals, bias = z["terms"], z["signals"], z["bias"]
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"router model {path}: unreadable ({e})") from e
        return cls(terms.astype(np.float32), signals.astype(np.float64), bias.astype(np.float64))

    def probabilities(self, text: str, features: RoutingFeatures) -> np.ndarray:
        """(negative, neutral, positive) probabilities."""
        idx = hashed_terms(text)
        z = self.bias + np.asarray(features.vector()) @ self.signals
        if idx:
            z = z + self.terms[idx].sum(axis=0, dtype=np.float64) / math.sqrt(len(idx))
        e = np.exp(z - z.max())
        return np.asarray(e / e.sum())

    def trust(self, text: str, features: RoutingFeatures) -> float:
        p = self.probabilities(text, features)
        label = 2 if features.lexicon_positive else 0 if features.lexicon_negative else 1
        return float(p[label])


@functools.cache
def shipped_text_model() -> TextRoutingModel:
    """The router weights shipped under ``models/`` (loaded once)."""
    return TextRoutingModel.load(default_router_path())


@dataclass(frozen=True, slots=True)
class RoutingThresholds:
    min_trust: float = 0.5
    always_route_band: float = 0.0
    model: RoutingModel = field(default_factory=shipped_signals_model)
    # When set, ``route_text`` asks it for the trust instead of ``model`` (``decide``,
    # which sees no text, always uses ``model``).
    text_model: TextRoutingModel | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_trust <= 1.0:
            raise ValueError(f"min_trust: {self.min_trust} is not in [0, 1]")
        if not 0.0 <= self.always_route_band <= 1.0:
            raise ValueError(f"always_route_band: {self.always_route_band} is not in [0, 1]")


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    route: Route
    lexicon_trust: float
    margin: float


def routing_thresholds(settings: ScorerSettings) -> RoutingThresholds:
    """The settings' thresholds; ``route_model="text"`` (the default) uses the shipped
    text router, ``"signals"`` the 19-signal logistic model alone."""
    text_model = shipped_text_model() if settings.route_model == "text" else None
    return RoutingThresholds(
        min_trust=settings.route_min_trust,
        always_route_band=settings.route_always_band,
        text_model=text_model,
    )


def decide(
    features: RoutingFeatures, thresholds: RoutingThresholds, trust: float | None = None
) -> RoutingDecision:
    """Route to the transformer when the lexicon is not trusted enough (or the compound
    is inside the always-route band). ``trust`` defaults to ``thresholds.model``'s."""
    if trust is None:
        trust = thresholds.model.trust(features)
    margin = trust - thresholds.min_trust
    routed = margin < 0 or features.abs_compound < thresholds.always_route_band
    return RoutingDecision("transformer" if routed else "lexicon", round(trust, 4), margin)


def route_text(text: str, compound: float, thresholds: RoutingThresholds) -> RoutingDecision:
    features = routing_features(text, compound)
    if thresholds.text_model is None:
        return decide(features, thresholds)
    return decide(features, thresholds, thresholds.text_model.trust(text, features))


class FeatureRouter:
    """The pipeline's ``Router``: ``route_text`` with fixed thresholds."""

    def __init__(self, thresholds: RoutingThresholds) -> None:
        self.thresholds = thresholds

    def route(self, text: str, lexicon: Sentiment) -> Route:
        return route_text(text, lexicon.lexicon_compound, self.thresholds).route
