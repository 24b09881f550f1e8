"""Classification metrics for three-class sentiment: macro-recall (TweetEval's official
metric), macro-F1 and accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scores:
    macro_recall: float
    macro_f1: float
    accuracy: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {
            "macro_recall": round(self.macro_recall, 4),
            "macro_f1": round(self.macro_f1, 4),
            "accuracy": round(self.accuracy, 4),
            "n": self.n,
        }


def evaluate(gold: Sequence[int], predicted: Sequence[int], classes: int = 3) -> Scores:
    """Scores of ``predicted`` against ``gold`` (class ids ``0..classes-1``)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("nothing to evaluate")
    recalls: list[float] = []
    f1s: list[float] = []
    for c in range(classes):
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == c and p == c)
        support = sum(1 for g in gold if g == c)
        chosen = sum(1 for p in predicted if p == c)
        recall = tp / support if support else 0.0
        precision = tp / chosen if chosen else 0.0
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    correct = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p)
    return Scores(
        macro_recall=sum(recalls) / classes,
        macro_f1=sum(f1s) / classes,
        accuracy=correct / len(gold),
        n=len(gold),
    )
