"""Adjusted figures through the API: a deliberately biased scorer, corrected by the
analysts' spot checks.

The scorer here calls 70 % of the negative mentions neutral (and a few positive). Its
mentions are stored with the real sampler's spot-check decisions and weights; analysts
then work the whole review queue through ``/api/v1/review`` with the true labels. The
truth is counted from the generator, independently of the estimator: the adjusted net
sentiment must be within ± 0.07 of it and inside its own interval, while the raw figure
stays off by at least 0.2.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.api.routes import review as review_routes
from services.api.routes.analytics import (
    BrandShare,
    Bucket,
    ShareOfVoice,
    is_partial,
    iso,
    resolve_range,
)
from services.api.routes.review import measured_accuracy_out
from services.core.adjusted import Adjusted, LabelSet
from services.core.reports.model import corrected
from services.core.storage.analytics import HOUR, Counts, brand_buckets
from services.core.storage.review import adjustment_labels
from services.embedded import Embedded
from tests.api.test_review_api import claim, label
from tests.fixtures.app import Keys
from tests.fixtures.biased_stream import TRUE_MIX, net, store_biased_stream


async def figures(
    client: httpx.AsyncClient, keys: Keys, brand: str, span: dict[str, str]
) -> dict[str, Any]:
    r = await client.get("/api/v1/share-of-voice", params=span, headers=keys.header("viewer"))
    assert r.status_code == 200, r.text
    [row] = [b for b in r.json()["brands"] if b["brand"] == brand]
    return dict(row)


def share_of_voice_by_models(embedded: Embedded, span: dict[str, str]) -> bytes:
    """/share-of-voice as it was computed before: every figure a model, each bucket's
    adjusted figures from a scan of every label, written by the models' serialiser."""
    names = [b.name for b in embedded.brands.list()]
    start, end = resolve_range(
        datetime.fromisoformat(span["from"]),
        datetime.fromisoformat(span["to"]),
        HOUR,
        embedded.clock.now(),
    )
    with embedded.engine.connect() as conn:
        data = brand_buckets(conn, names, start, end, HOUR, with_score=False)
        accuracy = measured_accuracy_out(
            conn, names, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        )
        labels = adjustment_labels(conn, start, end)
    mine = {n: LabelSet(labels.local(n, (start, end)), labels.pool) for n in names}

    def share(brand: str, c: Counts, total: int, adjusted: Adjusted | str) -> BrandShare:
        return BrandShare(
            **corrected(adjusted),
            brand=brand,
            mentions=c.mentions,
            share=None if total == 0 else c.mentions / total,
            net_sentiment=c.net_sentiment,
            positive=c.positive,
            neutral=c.neutral,
            negative=c.negative,
            reach=c.reach,
        )

    total = sum(c.mentions for c in data.totals.values())
    buckets = []
    for i, s in enumerate(data.bucket_starts):
        b_total = sum(data.buckets[n][i].mentions for n in names)
        figures = [mine[n].figure(n, data.buckets[n][i], (s, s + HOUR)) for n in names]
        buckets.append(
            Bucket(
                start=iso(s),
                partial=is_partial(s, start, end, HOUR),
                total=b_total,
                brands=[
                    share(n, data.buckets[n][i], b_total, f)
                    for n, f in zip(names, figures, strict=True)
                ],
            )
        )
    return (
        ShareOfVoice(
            from_=iso(start),
            to=iso(end),
            interval_seconds=HOUR,
            total=total,
            brands=[
                share(n, data.totals[n], total, mine[n].figure(n, data.totals[n], (start, end)))
                for n in names
            ],
            buckets=buckets,
            accuracy=accuracy,
        )
        .model_dump_json(by_alias=True)
        .encode()
    )


async def test_analysts_labels_correct_a_biased_scorer_within_its_interval(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    truth_of, counts = store_biased_stream(embedded.engine, embedded.clock)
    now = embedded.clock.now()
    # One fixed range for every question (the clock runs on while analysts work).
    span = {
        "from": (now - timedelta(days=7)).isoformat(),
        "to": (now + timedelta(minutes=1)).isoformat(),
    }

    before = await figures(client, keys, "Acme", span)
    assert before["adjusted"] is None
    assert "analyst labels" in before["adjusted_reason"]

    labelled = 0
    while (item := (await claim(client, keys))["item"]) is not None:
        r = await label(client, keys, item["id"], truth_of[item["url"].rsplit("/", 1)[1]])
        assert r.status_code == 200, r.text
        labelled += 1
    assert 150 < labelled < 600  # the sampler's ~6 % of 4,500 mentions

    for brand in TRUE_MIX:
        row = await figures(client, keys, brand, span)
        truth = net(counts[brand])
        adjusted = row["adjusted"]
        assert adjusted is not None, row["adjusted_reason"]
        value = adjusted["net_sentiment"]["value"]
        lo, hi = adjusted["net_sentiment"]["ci95"]
        assert abs(value - truth) <= 0.07, (brand, value, truth)
        assert lo <= truth <= hi, (brand, lo, truth, hi)
        relevant = sum(counts[brand].values())
        m_lo, m_hi = adjusted["mentions"]["ci95"]
        assert m_lo <= relevant <= m_hi
        for name, n in counts[brand].items():
            s_lo, s_hi = adjusted["shares"][name]["ci95"]
            assert s_lo <= n / relevant <= s_hi, (brand, name)
    # The whole answer, hourly buckets cut at both ends included, is byte for byte what
    # the share of voice was before it was written without models.
    r = await client.get(
        "/api/v1/share-of-voice", params={**span, "interval": "1h"}, headers=keys.header("viewer")
    )
    assert r.content == share_of_voice_by_models(embedded, span)
    assert any(b["adjusted"] for bucket in r.json()["buckets"] for b in bucket["brands"])
    # The raw figure (rollups, with the labelled mentions already corrected) stays wrong.
    acme = await figures(client, keys, "Acme", span)
    assert abs(acme["net_sentiment"] - net(counts["Acme"])) >= 0.2

    r = await client.get(
        "/api/v1/sentiment", params={"brand": "Acme", **span}, headers=keys.header("viewer")
    )
    assert r.status_code == 200, r.text
    total = r.json()["total"]
    assert total["adjusted"]["net_sentiment"] == acme["adjusted"]["net_sentiment"]

    # The executive report carries the same correction, beside its raw figures.
    r = await client.get(
        "/api/v1/reports/executive",
        params={"brand": "Acme", **span},
        headers=keys.header("viewer"),
    )
    assert r.status_code == 200, r.text
    report = r.json()
    adjusted_net = report["net_sentiment"]["adjusted"]["net_sentiment"]
    assert abs(adjusted_net["value"] - net(counts["Acme"])) <= 0.07
    assert adjusted_net["ci95"][0] <= net(counts["Acme"]) <= adjusted_net["ci95"][1]
    assert abs(report["net_sentiment"]["value"] - net(counts["Acme"])) >= 0.2
    [globex] = [b for b in report["share_of_voice"]["brands"] if b["brand"] == "Globex"]
    g = globex["adjusted"]["net_sentiment"]
    assert g["ci95"][0] <= net(counts["Globex"]) <= g["ci95"][1]
    # No author here is a decision maker: nothing to correct, and it says so.
    assert report["decision_makers"]["adjusted"] is None
    assert report["decision_makers"]["adjusted_reason"] == "no mentions in this period"


async def test_the_queue_serves_the_brand_whose_figure_needs_labels_most(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acme's labels come first while it has no corrected figure; once it has one and
    Globex has none, Globex's do. /review/brands says how sure each figure is and about
    how many more labels would bring it to ± 0.05 (checked against its own interval)."""
    truth_of, counts = store_biased_stream(embedded.engine, embedded.clock)
    # The order is worked out again for every claim here (it is cached for 30 s).
    monkeypatch.setattr(review_routes, "REVIEW_ORDER_TTL_S", 0.0)

    first = await claim(client, keys)
    r = await client.get("/api/v1/review/brands", headers=keys.header("analyst"))
    assert r.status_code == 200, r.text
    progress = r.json()
    assert progress["target"] == 0.05
    names = [b["brand"] for b in progress["brands"]]
    # No figure anywhere yet: the brand with the most mentions first.
    assert names[:2] == ["Acme", "Globex"] and first["item"]["brand"] == "Acme"
    assert all(b["net_sentiment"] is None and b["reason"] for b in progress["brands"])
    assert (
        await client.get("/api/v1/review/brands", headers=keys.header("viewer"))
    ).status_code == 403

    # Label what the queue serves while it is Acme's: once Acme has a corrected figure
    # (10 labels), Globex, still without one, comes first.
    item = first["item"]
    while item is not None and item["brand"] == "Acme":
        r = await label(client, keys, item["id"], truth_of[item["url"].rsplit("/", 1)[1]])
        assert r.status_code == 200, r.text
        item = (await claim(client, keys))["item"]
    assert item is not None and item["brand"] == "Globex"

    r = await client.get("/api/v1/review/brands", headers=keys.header("analyst"))
    by_brand = {b["brand"]: b for b in r.json()["brands"]}
    acme = by_brand["Acme"]
    assert r.json()["brands"][0]["brand"] == "Globex"  # no figure yet: first
    lo, hi = acme["net_sentiment"]["ci95"]
    assert lo <= net(counts["Acme"]) <= hi
    half = (hi - lo) / 2
    assert acme["half_width"] == pytest.approx(half)
    expected = math.ceil(acme["labels"] * ((half / 0.05) ** 2 - 1))
    assert acme["labels_to_target"] == expected > 0
