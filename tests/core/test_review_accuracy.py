"""The accuracy statistics against values computed by hand on small fixed sets."""

from __future__ import annotations

import pytest

from services.core.accuracy import (
    LabelledItem,
    Pair,
    agreement,
    effective_n,
    proportion,
    review_stats,
    wilson,
)

# z for a 95 % interval, z² = 3.8414588
CLASSES = ("positive", "neutral", "negative")
P, U, N = CLASSES

# Ten items, automated (a) vs analyst (b):
#   1 P P   2 P P   3 P U   4 U U   5 U U   6 U N   7 N N   8 N N   9 N P   10 U P
TEN = [
    Pair(P, P),
    Pair(P, P),
    Pair(P, U),
    Pair(U, U),
    Pair(U, U),
    Pair(U, N),
    Pair(N, N),
    Pair(N, N),
    Pair(N, P),
    Pair(U, P),
]


def close(got: float, want: float) -> bool:
    return abs(got - want) < 5e-6


def test_wilson_interval_by_hand() -> None:
    # p = 0.6, n = 10:
    #   centre = p + z²/2n = 0.6 + 0.1920729 = 0.7920729
    #   half   = z·√(p(1−p)/n + z²/4n²) = 1.959964·√(0.024 + 0.0096036) = 0.3592868
    #   denom  = 1 + z²/n = 1.3841459
    #   → ((0.7920729 − 0.3592868) / 1.3841459, (0.7920729 + 0.3592868) / 1.3841459)
    #   = (0.312674, 0.831820)
    lo, hi = wilson(0.6, 10)
    assert close(lo, 0.312674) and close(hi, 0.831820)
    # p = 0 on one item: centre = z²/2 = 1.920729, half = z·√(z²/4) = z²/2 → lower bound 0
    assert wilson(0.0, 1)[0] == 0.0
    with pytest.raises(ValueError, match="n:"):
        wilson(0.5, 0)


def test_accuracy_precision_recall_and_kappa_by_hand() -> None:
    a = agreement(TEN, CLASSES)
    assert a.n == 10
    # agreements: items 1, 2, 4, 5, 7, 8 → 6 / 10
    assert a.accuracy is not None
    assert a.accuracy.value == pytest.approx(0.6)
    assert close(a.accuracy.ci95[0], 0.312674) and close(a.accuracy.ci95[1], 0.831820)
    assert a.accuracy.n == 10
    # precision: of the items a calls c, the share b calls c
    #   P: items 1, 2, 3 → 2/3     U: 4, 5, 6, 10 → 2/4     N: 7, 8, 9 → 2/3
    # recall: of the items b calls c, the share a calls c
    #   P: items 1, 2, 9, 10 → 2/4     U: 3, 4, 5 → 2/3     N: 6, 7, 8 → 2/3
    expected_precision = {P: (2, 3), U: (2, 4), N: (2, 3)}
    expected_recall = {P: (2, 4), U: (2, 3), N: (2, 3)}
    for c in CLASSES:
        prec, rec = a.precision[c], a.recall[c]
        assert prec is not None and rec is not None
        hits, n = expected_precision[c]
        assert close(prec.value, hits / n) and prec.n == n
        hits, n = expected_recall[c]
        assert close(rec.value, hits / n) and rec.n == n
    # Wilson of 2/3 on 3 items = (0.207660, 0.938508); of 2/4 on 4 = (0.150039, 0.849961)
    p_prec, u_prec = a.precision[P], a.precision[U]
    assert p_prec is not None and close(p_prec.ci95[0], 0.207660)
    assert close(p_prec.ci95[1], 0.938508)
    assert u_prec is not None and close(u_prec.ci95[1], 0.849961)
    # kappa: marginals a: P 3, U 4, N 3; b: P 4, U 3, N 3
    #   p_e = (3·4 + 4·3 + 3·3) / 100 = 0.33
    #   κ = (0.6 − 0.33) / (1 − 0.33) = 0.27 / 0.67 = 0.402985
    #   interval: the accuracy's Wilson bounds mapped the same way:
    #   ((0.312674 − 0.33) / 0.67, (0.831820 − 0.33) / 0.67) = (−0.025860, 0.748985)
    assert a.kappa is not None
    assert close(a.kappa.value, 0.402985)
    assert close(a.kappa.ci95[0], -0.025860) and close(a.kappa.ci95[1], 0.748985)


def test_weights_give_the_weighted_share_and_the_effective_n() -> None:
    # (P,P) w 1, (P,N) w 1, (N,N) w 2: accuracy = (1 + 2) / 4 = 0.75
    # n_eff = (1+1+2)² / (1+1+4) = 16/6 = 2.6667; Wilson(0.75, 2.6667) = (0.238502, 0.966370)
    pairs = [Pair(P, P, 1.0), Pair(P, N, 1.0), Pair(N, N, 2.0)]
    assert effective_n([1.0, 1.0, 2.0]) == pytest.approx(16 / 6)
    a = agreement(pairs, CLASSES)
    assert a.accuracy is not None
    assert a.accuracy.value == pytest.approx(0.75)
    assert close(a.accuracy.ci95[0], 0.238502) and close(a.accuracy.ci95[1], 0.966370)
    assert a.accuracy.n == 3


def test_nothing_to_measure_gives_none() -> None:
    empty = agreement([], CLASSES)
    assert empty.accuracy is None and empty.kappa is None and empty.n == 0
    assert proportion([]) is None
    # every item one class on both sides: p_e = 1, kappa undefined
    same = agreement([Pair(P, P), Pair(P, P)], CLASSES)
    assert same.kappa is None and same.accuracy is not None and same.accuracy.value == 1.0
    assert same.precision[N] is None and same.recall[U] is None


def test_review_stats_by_hand() -> None:
    def item(brand: str, source: str, method: str, auto: str, *labels: str) -> LabelledItem:
        return LabelledItem(brand, source, method, auto, 1.0, labels)

    items = [
        item("Acme", "x", "lexicon", P, P),
        item("Acme", "x", "lexicon", P, N, N),  # double-labelled, analysts agree
        item("Acme", "rss", "transformer", N, N, P),  # double-labelled, analysts disagree
        item("Globex", "x", "transformer", U, "irrelevant"),
        item("Globex", "x", "lexicon", U, U, "irrelevant"),  # double: disagree
    ]
    s = review_stats(items)
    assert s.labelled_items == 5
    # sentiment pairs (first label counts, irrelevant left out): P/P, P/N, N/N, U/U → 3/4
    assert s.overall.accuracy is not None and s.overall.accuracy.value == pytest.approx(0.75)
    assert s.overall.n == 4
    # by method: lexicon P/P, P/N, U/U → 2/3; transformer N/N → 1/1 (its other item irrelevant)
    lexicon = s.by_method["lexicon"].accuracy
    transformer = s.by_method["transformer"].accuracy
    assert lexicon is not None and lexicon.value == pytest.approx(2 / 3) and lexicon.n == 3
    assert transformer is not None and transformer.value == 1.0 and transformer.n == 1
    # by source: x → P/P, P/N, U/U = 2/3; rss → 1/1
    x = s.by_source["x"].accuracy
    assert x is not None and x.value == pytest.approx(2 / 3)
    # by brand: Acme 2/3, Globex U/U = 1/1
    acme, globex = s.by_brand["Acme"].accuracy, s.by_brand["Globex"].accuracy
    assert acme is not None and acme.value == pytest.approx(2 / 3)
    assert globex is not None and globex.value == 1.0 and globex.n == 1
    # human–human on the three double-labelled items: N/N agree, N/P and U/irrelevant not → 1/3
    h = s.human_agreement.accuracy
    assert h is not None and h.value == pytest.approx(1 / 3) and h.n == 3
    # brand-match precision: first labels not "irrelevant": 4 of 5 = 0.8
    bmp = s.brand_match_precision
    assert bmp is not None and bmp.value == pytest.approx(0.8) and bmp.n == 5
