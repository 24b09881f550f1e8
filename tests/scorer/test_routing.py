"""Routing decisions on crafted examples: the router reads more than the compound band."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from services.scorer.lexicon import VaderScorer, lexicon_sentiment
from services.scorer.routing import (
    FEATURE_NAMES,
    HASH_DIM,
    SIGNALS_FILE,
    FeatureRouter,
    RoutingModel,
    RoutingThresholds,
    TextRoutingModel,
    decide,
    default_router_dir,
    hashed_terms,
    route_text,
    routing_features,
    routing_thresholds,
    shipped_signals_model,
    shipped_text_model,
)
from services.scorer.settings import ScorerSettings
from services.scorer.training.router_train import design_matrix, fit

VADER = VaderScorer()
HALF = RoutingThresholds(min_trust=0.5)
DEFAULT_MODEL = shipped_signals_model()


def decision(text: str, thresholds: RoutingThresholds = HALF) -> tuple[str, float]:
    d = route_text(text, VADER.compound(text), thresholds)
    return d.route, d.lexicon_trust


@pytest.mark.parametrize(
    "text",
    [
        "I love this phone, it is amazing!",
        "worst service ever, I hate it",
        "so happy with brand :)",
    ],
)
def test_clear_cut_sentiment_stays_with_the_lexicon(text: str) -> None:
    route, trust = decision(text)
    assert route == "lexicon"
    assert trust > 0.75


@pytest.mark.parametrize(
    "text",
    [
        "not bad at all",  # negation flips a negative word
        "Great, my flight got cancelled again. Just what I needed",  # sarcasm
        "check out the new brand thing https://t.co/abc",  # a link and nothing to go on
    ],
)
def test_ambiguous_texts_go_to_the_transformer(text: str) -> None:
    route, trust = decision(text)
    assert route == "transformer"
    assert trust < 0.5


def test_the_router_is_not_the_compound_band() -> None:
    # Same compound band, different verdicts: the text's signals decide.
    sarcastic = "Great, my flight got cancelled again. Just what I needed"
    plain = "brand released version 2 today, good"
    assert abs(VADER.compound(sarcastic) - VADER.compound(plain)) < 0.1
    assert decision(sarcastic)[0] == "transformer"
    assert decision(plain)[1] > decision(sarcastic)[1]


def test_each_ambiguity_signal_lowers_trust() -> None:
    base = routing_features("the battery is good", 0.44)
    for text, signal in [
        ("the battery is not good", "negation"),
        ("the battery is good? really", "question"),
        ("the battery is good https://t.co/x", "link"),
        ("the battery is good and the screen is awful", "mixed"),
    ]:
        f = routing_features(text, 0.44)
        assert getattr(f, signal) == 1.0, text
        assert DEFAULT_MODEL.trust(f) < DEFAULT_MODEL.trust(base), text


def test_features_count_words_and_markers() -> None:
    f = routing_features("I love it but the support is terrible, yeah right 😡 #fail", -0.3)
    assert f.positive_words >= 1 and f.negative_words >= 1 and f.mixed == 1.0
    assert f.contrast == f.sarcasm == f.emoji == f.hashtag == 1.0
    assert f.lexicon_negative == 1.0 and f.negative_strength == pytest.approx(0.3)
    assert f.no_sentiment_words == 0.0
    assert 0.0 < f.coverage < 1.0
    empty = routing_features("", 0.0)
    assert empty.coverage == 0.0 and empty.no_sentiment_words == 1.0


def test_margin_says_which_side_and_how_far() -> None:
    features = routing_features("the battery is not good", 0.3)
    trust = DEFAULT_MODEL.trust(features)
    below = decide(features, RoutingThresholds(min_trust=trust + 0.01))
    above = decide(features, RoutingThresholds(min_trust=trust - 0.01))
    assert below.route == "transformer" and below.margin == pytest.approx(-0.01, abs=1e-6)
    assert above.route == "lexicon" and above.margin == pytest.approx(0.01, abs=1e-6)
    assert decide(features, RoutingThresholds(min_trust=0.0)).route == "lexicon"
    assert decide(features, RoutingThresholds(min_trust=1.0)).route == "transformer"


def test_always_route_band_routes_weak_compounds_whatever_the_trust() -> None:
    text = "I love this phone, it is amazing!"
    c = VADER.compound(text)
    assert route_text(text, c, RoutingThresholds(min_trust=0.0)).route == "lexicon"
    banded = RoutingThresholds(min_trust=0.0, always_route_band=abs(c) + 0.01)
    assert route_text(text, c, banded).route == "transformer"


def test_thresholds_come_from_settings_and_are_validated() -> None:
    t = routing_thresholds(ScorerSettings(route_min_trust=0.7, route_always_band=0.1))
    assert (t.min_trust, t.always_route_band) == (0.7, 0.1)
    with pytest.raises(ValueError, match="min_trust"):
        RoutingThresholds(min_trust=1.5)
    with pytest.raises(ValueError, match="weights"):
        RoutingModel(bias=0.0, weights=(1.0,))
    assert len(DEFAULT_MODEL.weights) == len(FEATURE_NAMES)


def test_the_signals_model_is_loaded_once_from_models() -> None:
    assert DEFAULT_MODEL is shipped_signals_model() is RoutingThresholds().model
    card = json.loads((default_router_dir() / SIGNALS_FILE).read_text(encoding="utf-8"))
    assert DEFAULT_MODEL.bias == card["bias"]
    assert DEFAULT_MODEL.weights == tuple(card["weights"][name] for name in FEATURE_NAMES)


def test_a_corrupt_signals_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / SIGNALS_FILE
    for text in ["not json", '{"bias": 0.1}', '{"bias": 0.1, "weights": {"abs_compound": 1}}']:
        bad.write_text(text)
        with pytest.raises(ValueError, match=r"signals\.json"):
            RoutingModel.load(bad)
    weights = dict.fromkeys(FEATURE_NAMES, 0.5) | {"link": "high"}
    bad.write_text(json.dumps({"bias": 0.1, "weights": weights}))
    with pytest.raises(ValueError, match="numbers"):
        RoutingModel.load(bad)


def test_feature_router_plugs_into_the_router_seam() -> None:
    router = FeatureRouter(HALF)
    text = "not bad at all"
    assert router.route(text, lexicon_sentiment(VADER.compound(text))) == "transformer"
    assert router.route("worst service ever, I hate it", lexicon_sentiment(-0.83)) == "lexicon"


def test_routing_is_deterministic_and_total_on_hostile_text() -> None:
    for text in ["", " ", "\x00" * 50, "a" * 10_000, "😡" * 500, "http://" * 100]:
        first = route_text(text, 0.0, HALF)
        assert first == route_text(text, 0.0, HALF)
        assert 0.0 <= first.lexicon_trust <= 1.0


# --- the text router (hashed words/bigrams + signals), the default from settings ---

SHIPPED = routing_thresholds(ScorerSettings())


def text_decision(text: str) -> tuple[str, float]:
    d = route_text(text, VADER.compound(text), SHIPPED)
    return d.route, d.lexicon_trust


def test_settings_default_to_the_shipped_text_router() -> None:
    assert SHIPPED.text_model is shipped_text_model()
    assert routing_thresholds(ScorerSettings(route_model="signals")).text_model is None


@pytest.mark.parametrize(
    "text",
    [
        "I love this phone, it is amazing!",
        "worst service ever, I hate it",
        "so happy with my new brand laptop :)",
    ],
)
def test_text_router_keeps_clear_cut_sentiment(text: str) -> None:
    route, trust = text_decision(text)
    assert route == "lexicon", trust


@pytest.mark.parametrize(
    "text",
    [
        "not bad at all",  # VADER reads "bad"
        "the update broke my phone again, thanks brand",  # VADER reads "thanks"
        "no power since this morning, thanks a lot brand",
    ],
)
def test_text_router_sends_what_vader_misreads_to_the_transformer(text: str) -> None:
    route, trust = text_decision(text)
    assert route == "transformer", trust


def test_text_router_trust_is_the_probability_of_vaders_label() -> None:
    model = shipped_text_model()
    text = "the battery is good"
    features = routing_features(text, VADER.compound(text))
    p = model.probabilities(text, features)
    assert p.sum() == pytest.approx(1.0) and features.lexicon_positive == 1.0
    assert model.trust(text, features) == pytest.approx(float(p[2]))
    # decide() without text uses the signals model; route_text uses the text model.
    assert route_text(text, features.abs_compound, SHIPPED).lexicon_trust == round(float(p[2]), 4)


def test_hashed_terms_are_bounded_deterministic_and_normalise_users_and_links() -> None:
    a = hashed_terms("@alice loves it https://t.co/abc")
    assert a == hashed_terms("@bob loves it http://x.y/z")
    assert all(0 <= i < HASH_DIM for i in a) and a == sorted(set(a))
    assert hashed_terms("") == []
    assert len(hashed_terms("\ud800 \x00 " * 10)) > 0  # lone surrogates do not raise


def test_a_corrupt_router_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "router.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"router\.npz"):
        TextRoutingModel.load(bad)
    np.savez(bad, terms=np.zeros((4, 3)), signals=np.zeros((19, 3)), bias=np.zeros(3))
    with pytest.raises(ValueError, match="shapes"):
        TextRoutingModel.load(bad)


def test_router_training_learns_words_from_labels() -> None:
    texts = ["meh thing"] * 20 + ["zorp thing"] * 20 + ["flib thing"] * 20
    y = np.array([0] * 20 + [1] * 20 + [2] * 20)
    x = design_matrix(texts, [0.0] * len(texts))
    w, c = fit(x, y, l2=1e-3, iterations=10)
    n = len(FEATURE_NAMES)
    model = TextRoutingModel(w[:HASH_DIM].astype(np.float32), w[HASH_DIM:].reshape(n, 3), c)
    for text, label in [("meh thing", 0), ("zorp thing", 1), ("flib thing", 2)]:
        assert int(model.probabilities(text, routing_features(text, 0.0)).argmax()) == label
