"""Produce: what was produced, counted per method and label, and spot checks per method."""

from __future__ import annotations

import dataclasses

from services.scorer.steps.produce import tally
from services.scorer.steps.write import scored_records
from tests.scorer.steps.chunks import POLICY, scored_chunk


def test_records_are_counted_per_method_and_label() -> None:
    records = scored_records(
        scored_chunk(["Acme is wonderful", "Acme is great", "Acme is awful"]), sampling=POLICY
    )
    records[0] = dataclasses.replace(records[0], spot_check=True)
    scored, spot = tally(records)
    assert scored == {("lexicon", "positive"): 2, ("lexicon", "negative"): 1}
    assert spot == {"lexicon": 1}
