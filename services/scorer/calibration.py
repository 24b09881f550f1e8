"""Calibrating the router and the spot checks from the analysts' labels (``sentimon calibrate``).

The router sends a mention to the transformer when the lexicon's estimated chance of
being right (``routing.decide``'s trust) is below ``route_min_trust``. The analysts'
labels say, for real mentions of the tracked brands, which verdict was right. For each
labelled mention the lexicon's and the transformer's verdicts are both worked out again
(the text masked and capped as the scorer does), so any threshold can be replayed: the
expected accuracy (weighted by 1 / sampling probability, with its Wilson interval) and
the share routed to the transformer. ``propose`` picks the most accurate threshold whose
routed share stays within a budget.

An analyst labels a (mention, brand): the sentiment toward that brand. For a mention
naming two to ``MAX_TARGETS`` brands, the scorer's verdict toward the brand is worked out
again the way the scorer gives it (issue 16, ``services.scorer.targets``): the
clause-scoped lexicon (VADER on ``clause_text``) and the target-aware model (on
``target_text``). The scorer asks the model about every such pair whatever the router
says, so such a row (``targeted``) counts the model's verdict at every threshold and is
no part of the routed share. Any other mention keeps the whole-text path.

The same labels measure how often each automated label is wrong, and
``sampling.neyman_lifts`` turns that into the spot checks' label lifts (Neyman
allocation: more labels where the automated label is least reliable).

``--apply`` writes both to ``<data_dir>/calibration.json``, which the scorer reads at
start (``apply_calibration``, called by ``build_pipeline``). A setting given explicitly
(``SENTIMON_ROUTE_MIN_TRUST``, ``SENTIMON_SPOT_CHECK_LIFTS``) wins over the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine

from services.core.accuracy import IRRELEVANT, Estimate, proportion
from services.core.brands import BrandDefinition, BrandMatcher
from services.core.clock import SystemClock
from services.core.storage.brands import BrandStore
from services.core.storage.review import labelled_documents
from services.scorer.lexicon import VaderScorer, label_for
from services.scorer.mask import cap_text
from services.scorer.process import prepare_text
from services.scorer.protocol import Scorer
from services.scorer.routing import RoutingThresholds, route_text
from services.scorer.sampling import SamplingPolicy, StratumError
from services.scorer.settings import ScorerSettings
from services.scorer.targets import MAX_TARGETS, clause_text, target_text

CALIBRATION_FILE = "calibration.json"
# The settings calibration may set; anything else in the file is refused.
CALIBRATED_FIELDS = ("route_min_trust", "spot_check_lifts")
_BATCH = 64

S = TypeVar("S", bound=ScorerSettings)


class CalibrationError(ValueError):
    """The labels cannot support a calibration, or the calibration file is unusable."""


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    """One labelled (mention, brand): the analyst's label, both scorers' verdicts, the
    router's trust in the lexicon, and the item's sampling weight. ``targeted``: the
    verdicts are toward the brand (a mention naming several, the module's docstring),
    and the scorer gives the transformer's whatever the threshold."""

    human: str
    lexicon: str
    transformer: str
    trust: float
    abs_compound: float
    weight: float = 1.0
    targeted: bool = False


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    min_trust: float
    accuracy: Estimate
    transformer_share: float


@dataclass(frozen=True, slots=True)
class Proposal:
    current: OperatingPoint
    proposed: OperatingPoint
    curve: list[OperatingPoint]
    labels: int


def evaluate(
    rows: Sequence[CalibrationRow], min_trust: float, always_route_band: float = 0.0
) -> OperatingPoint:
    """Expected accuracy and routed share if the router had used ``min_trust``: a
    ``targeted`` row counts the transformer's verdict and is not in the share (0.0 when
    every row is targeted). Pure."""
    if not rows:
        raise CalibrationError("no labelled mentions to calibrate on")
    hits = []
    routed = 0.0
    total = 0.0
    for r in rows:
        if r.targeted:
            hits.append((r.transformer == r.human, r.weight))
            continue
        to_model = r.trust < min_trust or r.abs_compound < always_route_band
        verdict = r.transformer if to_model else r.lexicon
        hits.append((verdict == r.human, r.weight))
        routed += r.weight * to_model
        total += r.weight
    accuracy = proportion(hits)
    assert accuracy is not None  # rows is not empty and weights are positive
    return OperatingPoint(min_trust, accuracy, routed / total if total else 0.0)


def propose(
    rows: Sequence[CalibrationRow],
    current: RoutingThresholds,
    *,
    max_share: float = 1.0,
    min_labels: int = 30,
    steps: int = 100,
) -> Proposal:
    """The threshold with the best expected accuracy among those routing at most
    ``max_share`` of mentions (ties: the one routing fewer). Raises
    ``CalibrationError`` with fewer than ``min_labels`` labelled mentions."""
    if len(rows) < min_labels:
        raise CalibrationError(
            f"{len(rows)} labelled mentions: at least {min_labels} are needed to calibrate "
            "(label more on /review)"
        )
    if not 0.0 <= max_share <= 1.0:
        raise CalibrationError(f"max_share: {max_share} is not in [0, 1]")
    band = current.always_route_band
    curve = [evaluate(rows, i / steps, band) for i in range(steps + 1)]
    now = evaluate(rows, current.min_trust, band)
    allowed = [p for p in curve if p.transformer_share <= max_share + 1e-12] or [curve[0]]
    best = max(allowed, key=lambda p: (p.accuracy.value, -p.transformer_share))
    # Keep the current threshold unless the new one is really better on these labels.
    if best.accuracy.value <= now.accuracy.value and now.transformer_share <= max_share:
        best = now
    return Proposal(current=now, proposed=best, curve=curve, labels=len(rows))


def labelled_rows(
    engine: Engine,
    settings: ScorerSettings,
    transformer: Scorer,
    thresholds: RoutingThresholds,
) -> list[CalibrationRow]:
    """Every (mention, brand) an analyst gave a sentiment label (the first label of an
    item), with both verdicts worked out again as the scorer gives them: toward the brand
    for a mention naming two to ``MAX_TARGETS`` of the tracked brands, on the whole text
    (masked and capped) otherwise."""
    with engine.connect() as conn:
        labelled = labelled_documents(conn)
    brands = BrandStore(engine, SystemClock()).list()
    matcher = BrandMatcher.compile([BrandDefinition(b.name, b.query) for b in brands])
    vader = VaderScorer()
    texts, meta = [], []
    for item in labelled:
        if item.label == IRRELEVANT:
            continue
        text = json.loads(item.doc)["text"]
        match = matcher.match(text)
        targeted = 1 < len(match.brands) <= MAX_TARGETS and item.brand in match.brands
        if targeted:
            spans = match.spans_by_brand()
            lexicon_text = cap_text(clause_text(text, spans, item.brand), settings.max_score_chars)
            model_text = target_text(text, spans, item.brand)
        else:
            lexicon_text, _ = prepare_text(text, match.mask_spans, settings.max_score_chars)
            model_text = lexicon_text
        compound = vader.compound(lexicon_text)
        trust = route_text(lexicon_text, compound, thresholds).lexicon_trust
        texts.append(model_text)
        meta.append((item.label, label_for(compound), trust, abs(compound), item.weight, targeted))
    verdicts = []
    for i in range(0, len(texts), _BATCH):
        verdicts.extend(transformer.score_batch(texts[i : i + _BATCH]))
    return [
        CalibrationRow(human, lexicon, v.label, trust, abs_c, weight, targeted)
        for (human, lexicon, trust, abs_c, weight, targeted), v in zip(meta, verdicts, strict=True)
    ]


def calibration_path(settings: ScorerSettings) -> Path:
    return settings.data_dir / CALIBRATION_FILE


def read_calibration(path: Path) -> dict[str, Any]:
    """The settings in a calibration file (``{}`` when there is none): the router's
    threshold and the spot checks' lifts. Raises ``CalibrationError`` for a file that is
    not what ``write_calibration`` writes."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        values = dict(data["settings"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CalibrationError(f"{path}: not a calibration file ({e})") from e
    if unknown := set(values) - set(CALIBRATED_FIELDS):
        raise CalibrationError(f"{path}: unknown settings {sorted(unknown)}")
    out: dict[str, Any] = {}
    if "route_min_trust" in values:
        try:
            v = float(values["route_min_trust"])
        except (TypeError, ValueError) as e:
            raise CalibrationError(f"{path}: route_min_trust is not a number") from e
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise CalibrationError(f"{path}: route_min_trust = {v} is not in [0, 1]")
        out["route_min_trust"] = v
    if "spot_check_lifts" in values:
        lifts = values["spot_check_lifts"]
        try:
            if not isinstance(lifts, dict):
                raise TypeError("not an object")
            parsed = {str(k): float(f) for k, f in lifts.items()}
            if not all(math.isfinite(f) for f in parsed.values()):
                raise ValueError("a factor is not finite")
            SamplingPolicy.build(lifts=parsed)  # the sampler's own checks
        except (TypeError, ValueError) as e:
            raise CalibrationError(f"{path}: spot_check_lifts: {e}") from e
        out["spot_check_lifts"] = parsed
    return out


def write_calibration(
    path: Path,
    proposal: Proposal,
    at: datetime,
    allocation: tuple[Mapping[str, float], Sequence[StratumError]] | None = None,
) -> None:
    """Write the proposed threshold (and the spot checks' Neyman ``allocation``, if
    given), with what they were measured on, atomically."""
    settings: dict[str, Any] = {"route_min_trust": proposal.proposed.min_trust}
    measured: dict[str, Any] = {
        "labels": proposal.labels,
        "accuracy": proposal.proposed.accuracy.value,
        "ci95": list(proposal.proposed.accuracy.ci95),
        "transformer_share": proposal.proposed.transformer_share,
        "previous_min_trust": proposal.current.min_trust,
        "previous_accuracy": proposal.current.accuracy.value,
    }
    if allocation is not None:
        lifts, strata = allocation
        settings["spot_check_lifts"] = dict(lifts)
        measured["spot_check_strata"] = [
            {
                "label": s.label,
                "error_rate": s.error_rate,
                "spread": s.spread,
                "stream_share": s.stream_share,
                "labels": s.labels,
            }
            for s in strata
        ]
    body: dict[str, Any] = {
        "settings": settings,
        "measured": measured,
        "written_at": at.isoformat(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    tmp.replace(path)


def apply_calibration(settings: S) -> S:
    """``settings`` with the calibrated thresholds from ``<data_dir>/calibration.json``,
    except those set explicitly (environment or arguments). Raises ``CalibrationError``
    for a corrupt file: a scorer should not start on thresholds nobody chose."""
    values = read_calibration(calibration_path(settings))
    update = {k: v for k, v in values.items() if k not in settings.model_fields_set}
    return settings.model_copy(update=update) if update else settings
