"""``sentimon calibrate``: routing thresholds proposed from the analysts' labels."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import orjson
import pytest
from click.testing import CliRunner

from services.cli import main
from services.core.clock import FrozenClock
from services.core.models import Mention, Sentiment
from services.core.spotcheck import SpotCheck
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate, sqlite_url
from services.core.storage.review import Analyst, ReviewStore
from services.core.storage.writer import MentionWriter, ScoredRecord
from services.scorer import transformer as transformer_module
from services.scorer.calibration import (
    CalibrationError,
    CalibrationRow,
    apply_calibration,
    calibration_path,
    evaluate,
    labelled_rows,
    propose,
    read_calibration,
)
from services.scorer.lexicon import VaderScorer, label_for, lexicon_sentiment
from services.scorer.process import scored_document
from services.scorer.routing import RoutingThresholds
from services.scorer.settings import ScorerSettings
from services.scorer.targets import TARGET_MARK
from tests.fixtures.mentions import mention_doc

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

# Four labelled mentions (human, lexicon, transformer, router trust in the lexicon):
#   A  P  P  P  0.9      both right
#   B  N  P  N  0.3      only the transformer right
#   C  U  U  N  0.6      only the lexicon right
#   D  N  N  N  0.8      both right
ROWS = [
    CalibrationRow("positive", "positive", "positive", 0.9, 0.5),
    CalibrationRow("negative", "positive", "negative", 0.3, 0.5),
    CalibrationRow("neutral", "neutral", "negative", 0.6, 0.5),
    CalibrationRow("negative", "negative", "negative", 0.8, 0.5),
]


def test_replaying_thresholds_by_hand() -> None:
    # min_trust 0: nothing routed, lexicon everywhere: A, C, D right → 3/4, share 0
    none = evaluate(ROWS, 0.0)
    assert (none.accuracy.value, none.transformer_share) == (0.75, 0.0)
    # 0.5: B (trust 0.3) routed: all four right, share 1/4
    some = evaluate(ROWS, 0.5)
    assert (some.accuracy.value, some.transformer_share) == (1.0, 0.25)
    # 0.7: B and C routed: C now wrong → 3/4, share 2/4
    more = evaluate(ROWS, 0.7)
    assert (more.accuracy.value, more.transformer_share) == (0.75, 0.5)
    # everything routed (1.0): B, D, A right, C wrong → 3/4, share 1
    assert evaluate(ROWS, 1.0).transformer_share == 1.0
    # a weight counts the row that many times: B at weight 3 → (1 + 3 + 1 + 1) / 6 at 0.5
    weighted = [
        *ROWS[:1],
        CalibrationRow("negative", "positive", "negative", 0.3, 0.5, 3.0),
        *ROWS[2:],
    ]
    assert evaluate(weighted, 0.0).accuracy.value == pytest.approx(3 / 6)


def test_the_proposal_is_the_most_accurate_threshold_within_the_budget() -> None:
    p = propose(ROWS, RoutingThresholds(min_trust=0.0), max_share=1.0, min_labels=4)
    # the first grid point above B's trust of 0.3, routing the least for the best accuracy
    assert p.proposed.min_trust == pytest.approx(0.31)
    assert (p.proposed.accuracy.value, p.proposed.transformer_share) == (1.0, 0.25)
    assert (p.current.accuracy.value, p.current.transformer_share) == (0.75, 0.0)
    assert len(p.curve) == 101 and p.labels == 4
    # a 20 % budget cannot route B: the current threshold stays
    kept = propose(ROWS, RoutingThresholds(min_trust=0.0), max_share=0.2, min_labels=4)
    assert kept.proposed.min_trust == 0.0
    with pytest.raises(CalibrationError, match="at least 30"):
        propose(ROWS, RoutingThresholds(), max_share=1.0)


class Contrarian:
    """A stand-in transformer: always says negative."""

    method: Literal["transformer"] = "transformer"

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        return [
            Sentiment(
                label="negative",
                score=-0.9,
                confidence=0.9,
                method="transformer",
                lexicon_compound=0.0,
            )
            for _ in texts
        ]


def labelled_instance(data_dir: Path, verdicts: dict[str, str]) -> None:
    """An instance whose analysts labelled mentions of Acme ``{text: label}``."""
    labelled_pairs_instance(data_dir, {(text, "Acme"): label for text, label in verdicts.items()})


def labelled_pairs_instance(data_dir: Path, verdicts: dict[tuple[str, str], str]) -> None:
    """An instance tracking Acme and Globex whose analysts labelled (mention, brand)s
    ``{(text, brand): label}``: each text is stored naming the brands it is labelled for."""
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(sqlite_url(data_dir))
    migrate(engine)
    clock = FrozenClock(T0)
    BrandStore(engine, clock).create("Acme", '"acme"', ())
    BrandStore(engine, clock).create("Globex", '"globex"', ())
    vader = VaderScorer()
    named: dict[str, tuple[str, ...]] = {}
    for text, brand in verdicts:
        named[text] = (*named.get(text, ()), brand)
    records = []
    for i, (text, brands) in enumerate(named.items()):
        raw = orjson.dumps(mention_doc(id=f"c{i}", text=text))
        s = lexicon_sentiment(vader.compound(text))
        doc = scored_document(raw, brands, s, True, T0)
        records.append(
            ScoredRecord(
                Mention.model_validate_json(raw),
                brands,
                s,
                True,
                T0,
                doc,
                SpotCheck("random", 50.0, 1),
            )
        )
    MentionWriter(engine, clock).write(records)
    store = ReviewStore(engine, clock, lease=timedelta(minutes=5))
    ana = Analyst(1, "Ana")
    while (item := store.claim(ana)) is not None:
        store.label(ana, item.id, verdicts[(item.mention["text"], item.brand)])
    engine.dispose()


VERDICTS = {
    "Acme is wonderful, I love it": "positive",
    "Acme is awful and broken": "negative",
    "Acme released version 2": "negative",  # the lexicon says neutral
    "Acme is not bad at all": "positive",
    "Acme's new logo is here": "irrelevant",
}


def test_rows_replay_both_scorers_on_the_labelled_mentions(tmp_path: Path) -> None:
    labelled_instance(tmp_path, VERDICTS)
    settings = ScorerSettings(data_dir=tmp_path)
    engine = make_engine(sqlite_url(tmp_path))
    rows = labelled_rows(engine, settings, Contrarian(), RoutingThresholds())
    engine.dispose()
    assert len(rows) == 4  # the irrelevant one says nothing about sentiment
    assert [r.human for r in rows] == ["positive", "negative", "negative", "positive"]
    assert [r.lexicon for r in rows][:3] == ["positive", "negative", "neutral"]
    assert {r.transformer for r in rows} == {"negative"}
    assert all(0.0 <= r.trust <= 1.0 and r.weight == 50.0 for r in rows)


class FirstIsTarget:
    """A stand-in target-aware model: negative when the text starts with the target's
    mark, positive otherwise; it keeps the texts it was asked about."""

    method: Literal["transformer"] = "transformer"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        self.texts.extend(texts)
        return [
            Sentiment(
                label="negative" if t.startswith(TARGET_MARK) else "positive",
                score=0.0,
                confidence=0.9,
                method="transformer",
                lexicon_compound=0.0,
            )
            for t in texts
        ]


TWO = "Acme support is terrible, but Globex has been fantastic"
ONE = "Acme is wonderful, I love it"


def test_a_label_toward_a_brand_is_compared_with_the_verdict_toward_that_brand(
    tmp_path: Path,
) -> None:
    labelled_pairs_instance(
        tmp_path,
        {(TWO, "Acme"): "negative", (TWO, "Globex"): "positive", (ONE, "Acme"): "positive"},
    )
    # The whole text reads positive ("but" weighs what follows): it would be wrong about
    # Acme, the verdicts toward each brand are right about both.
    vader = VaderScorer()
    whole = "brand support is terrible, but brand has been fantastic"
    assert label_for(vader.compound(whole)) == "positive"
    model = FirstIsTarget()
    engine = make_engine(sqlite_url(tmp_path))
    rows = labelled_rows(engine, ScorerSettings(data_dir=tmp_path), model, RoutingThresholds())
    engine.dispose()
    assert [(r.human, r.lexicon, r.transformer, r.targeted) for r in rows] == [
        ("negative", "negative", "negative", True),  # TWO toward Acme
        ("positive", "positive", "positive", True),  # TWO toward Globex
        ("positive", "positive", "positive", False),  # ONE: one brand, today's path
    ]
    # The model read each brand's marked text, and the single-brand mention masked whole.
    assert model.texts == [
        "$T$ support is terrible, but brand has been fantastic",
        "brand support is terrible, but $T$ has been fantastic",
        "brand is wonderful, I love it",
    ]
    point = evaluate(rows, 0.0)
    assert point.accuracy.value == 1.0
    assert point.transformer_share == 0.0  # the targeted rows are not routed by the threshold


def test_a_targeted_row_counts_the_models_verdict_at_every_threshold() -> None:
    targeted = CalibrationRow("negative", "positive", "negative", 0.9, 0.5, targeted=True)
    plain = CalibrationRow("negative", "positive", "negative", 0.3, 0.5)
    # min_trust 0: nothing routed; the targeted row is still the model's (right), the
    # plain row the lexicon's (wrong); the share counts the plain row only.
    none = evaluate([targeted, plain], 0.0)
    assert (none.accuracy.value, none.transformer_share) == (0.5, 0.0)
    # 0.5: the plain row (trust 0.3) routed too: both right, the share is the plain row's.
    some = evaluate([targeted, plain], 0.5)
    assert (some.accuracy.value, some.transformer_share) == (1.0, 1.0)
    assert evaluate([targeted], 1.0).transformer_share == 0.0


def test_calibrate_proposes_then_applies_and_the_scorer_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SENTIMON_DATA_DIR", "SENTIMON_DATABASE_URL", "SENTIMON_ROUTE_MIN_TRUST"):
        monkeypatch.delenv(name, raising=False)
    labelled_instance(tmp_path, VERDICTS)
    monkeypatch.setattr(transformer_module, "load_transformer", lambda *a, **kw: Contrarian())
    runner = CliRunner()
    args = ["calibrate", "--data-dir", str(tmp_path), "--min-labels", "4", "--max-share", "1"]

    few = runner.invoke(main, ["calibrate", "--data-dir", str(tmp_path)])
    assert few.exit_code == 1 and "at least 30 are needed" in few.output

    shown = runner.invoke(main, args)
    assert shown.exit_code == 0, shown.output
    assert "4 labelled mentions" in shown.output
    assert "current" in shown.output and "proposed" in shown.output
    assert "transformer share" in shown.output and "not applied" in shown.output
    assert not calibration_path(ScorerSettings(data_dir=tmp_path)).exists()

    applied = runner.invoke(main, [*args, "--apply"])
    assert applied.exit_code == 0, applied.output
    path = calibration_path(ScorerSettings(data_dir=tmp_path))
    written = json.loads(path.read_text())
    proposed = written["settings"]["route_min_trust"]
    assert written["measured"]["labels"] == 4
    # The spot checks' allocation too: the lexicon's neutral verdict was wrong on every
    # labelled mention here, its positive and negative ones right.
    lifts = written["settings"]["spot_check_lifts"]
    assert read_calibration(path) == {"route_min_trust": proposed, "spot_check_lifts": lifts}
    assert lifts["label:neutral"] > lifts["label:positive"] and "source:rss" in lifts
    assert "automated neutral" in shown.output and "-> rate x" in shown.output
    assert apply_calibration(ScorerSettings(data_dir=tmp_path)).spot_check_lifts == lifts
    # the scorer's settings pick it up, unless the threshold is set explicitly
    assert apply_calibration(ScorerSettings(data_dir=tmp_path)).route_min_trust == proposed
    explicit = ScorerSettings(data_dir=tmp_path, route_min_trust=0.123)
    assert apply_calibration(explicit).route_min_trust == 0.123
    monkeypatch.setenv("SENTIMON_ROUTE_MIN_TRUST", "0.321")
    assert apply_calibration(ScorerSettings(data_dir=tmp_path)).route_min_trust == 0.321


def test_a_corrupt_calibration_file_stops_the_scorer_with_a_clear_error(tmp_path: Path) -> None:
    settings = ScorerSettings(data_dir=tmp_path)
    path = calibration_path(settings)
    for body in (
        "{not json",
        '{"settings": {"route_min_trust": 7}}',
        '{"settings": {"x": 0.5}}',
        '{"settings": {"spot_check_lifts": {"colour:red": 2}}}',
        '{"settings": {"spot_check_lifts": {"label:neutral": -1}}}',
        '{"settings": {"spot_check_lifts": [1, 2]}}',
    ):
        path.write_text(body)
        with pytest.raises(CalibrationError, match=re.escape(str(path))):
            apply_calibration(settings)


async def test_the_scorer_refuses_to_start_on_a_corrupt_calibration(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from services.core.bus.memory import MemoryBus
    from services.core.clock import SystemClock
    from services.core.metrics import Metrics
    from services.scorer.pipeline import build_pipeline

    settings = ScorerSettings(data_dir=tmp_path, lexicon_processes=0, scorer_mode="lexicon")
    calibration_path(settings).write_text('{"settings": {"route_min_trust": "high"}}')
    engine = make_engine(sqlite_url(tmp_path))
    migrate(engine)
    bus = MemoryBus()
    with pytest.raises(CalibrationError, match=r"calibration\.json"):
        build_pipeline(
            settings,
            bus=bus,
            producer=await bus.producer(),
            engine=engine,
            clock=SystemClock(),
            metrics=Metrics(CollectorRegistry()),
        )
    engine.dispose()
