"""The seams of the scorer: a ``Scorer`` turns texts into sentiment, a ``Router`` decides
which mentions the lexicon's verdict is good enough for. Issue-level additions (the
transformer scorer, a learned router) plug in here without touching the pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from services.core.models import ScoringMethod, Sentiment

Route = Literal["lexicon", "transformer"]


class Scorer(Protocol):
    """Scores texts. Must not raise on any text within the scorer's length cap."""

    @property
    def method(self) -> ScoringMethod: ...

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]: ...


class Router(Protocol):
    """Decides, from the lexicon's verdict on a text, whether a better model must look at it."""

    def route(self, text: str, lexicon: Sentiment) -> Route: ...


class LexiconOnlyRouter:
    """Trusts the lexicon for everything (the default until a transformer is configured)."""

    def route(self, text: str, lexicon: Sentiment) -> Route:
        return "lexicon"
