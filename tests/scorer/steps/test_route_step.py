"""Route: the router's picks go to the transformer, the rest keep the lexicon's verdict."""

from __future__ import annotations

from services.core.models import Sentiment
from services.scorer.protocol import Route
from services.scorer.steps.route import route
from tests.scorer.steps.chunks import scored_chunk


class RouteNeutral:
    def route(self, text: str, lexicon: Sentiment) -> Route:
        return "transformer" if lexicon.label == "neutral" else "lexicon"


def test_the_router_splits_a_chunk_keeping_each_part_in_order() -> None:
    scored = scored_chunk(["Acme v2", "Acme is wonderful", "Acme v3", "Acme is awful"])
    routed = route(scored, RouteNeutral())
    assert [r.position for r in routed.lexicon] == [1, 3]
    assert [r.position for r in routed.transformer] == [0, 2]
    assert routed.chunk is scored.chunk


def test_without_a_router_every_mention_keeps_the_lexicon_verdict() -> None:
    scored = scored_chunk(["Acme v2", "Acme is wonderful"])
    routed = route(scored, None)
    assert list(routed.lexicon) == list(scored.results)
    assert not routed.transformer
