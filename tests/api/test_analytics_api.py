"""/api/v1/share-of-voice and /api/v1/sentiment on a hand-made set of mentions whose
labels are known; and the open routes /healthz, /readyz and /metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.api.app import create_app
from services.core.storage.db import make_engine, sqlite_url
from services.embedded import Embedded
from tests.fixtures.app import Keys
from tests.fixtures.mentions import mention_doc

SOV = "/api/v1/share-of-voice"
SENTIMENT = "/api/v1/sentiment"
HOUR = {"from": "2026-03-02T10:00:00Z", "to": "2026-03-02T11:00:00Z"}

POSITIVE = "Acme is wonderful, I love it"
NEGATIVE = "Acme is awful and broken"
NEUTRAL = "Acme released version 2"

# (id, created_at, text, followers, brands, label)
SET: list[tuple[str, str, str, int, list[str], str]] = [
    ("early", "2026-03-02T09:59:59Z", NEGATIVE, 1, ["Acme"], "negative"),
    ("a-pos-1", "2026-03-02T10:02:00Z", POSITIVE, 100, ["Acme"], "positive"),
    ("a-neg", "2026-03-02T10:07:00Z", NEGATIVE, 20, ["Acme"], "negative"),
    ("a-neu", "2026-03-02T10:07:30Z", NEUTRAL, 3, ["Acme"], "neutral"),
    ("g-neu", "2026-03-02T10:12:00Z", "Globex released version 2", 4000, ["Globex"], "neutral"),
    ("a-pos-2", "2026-03-02T10:31:00Z", POSITIVE, 500, ["Acme"], "positive"),
    (
        "both",
        "2026-03-02T10:40:00Z",
        "Acme and Globex are both wonderful",
        10_000,
        ["Acme", "Globex"],
        "positive",
    ),
    ("late", "2026-03-02T11:00:00Z", NEGATIVE, 1, ["Acme"], "negative"),
]


async def push(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded, docs: list[dict[str, Any]]
) -> None:
    r = await client.post("/api/v1/mentions", json=docs, headers=keys.header("ingest"))
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == len(docs)
    await embedded.drain()


@pytest.fixture
async def scores(client: httpx.AsyncClient, keys: Keys, embedded: Embedded) -> dict[str, float]:
    """Store the set; check every mention got the brands and label it was written for.
    Returns each mention's score."""
    docs = [
        mention_doc(
            id=mid,
            text=text,
            created_at=created_at,
            author={"id": f"u-{mid}", "handle": mid, "followers": followers},
        )
        for mid, created_at, text, followers, _, _ in SET
    ]
    await push(client, keys, embedded, docs)
    r = await client.get("/api/v1/mentions", headers=keys.header("viewer"))
    got = {m["id"]: (m["brands"], m["sentiment"]["label"]) for m in r.json()["items"]}
    assert got == {mid: (brands, label) for mid, _, _, _, brands, label in SET}
    return {m["id"]: m["sentiment"]["score"] for m in r.json()["items"]}


async def get(client: httpx.AsyncClient, keys: Keys, path: str, **params: str) -> dict[str, Any]:
    r = await client.get(path, params=params, headers=keys.header("viewer"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def by_brand(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["brand"]: row for row in rows}


def counts(row: dict[str, Any]) -> tuple[int, int, int, int]:
    return row["mentions"], row["positive"], row["neutral"], row["negative"]


async def test_share_of_voice_over_a_range(
    client: httpx.AsyncClient, keys: Keys, scores: dict[str, float]
) -> None:
    body = await get(client, keys, SOV, **HOUR, interval="1h")
    assert (body["from"], body["to"], body["interval_seconds"]) == (
        "2026-03-02T10:00:00Z",
        "2026-03-02T11:00:00Z",
        3600,
    )
    # "early" and "late" fall outside [from, to).
    assert body["total"] == 7
    brands = by_brand(body["brands"])
    assert list(brands) == ["Acme", "Globex", "United"]
    assert counts(brands["Acme"]) == (5, 3, 1, 1)
    assert brands["Acme"]["share"] == pytest.approx(5 / 7)
    assert brands["Acme"]["net_sentiment"] == pytest.approx((3 - 1) / (3 + 1))
    assert brands["Acme"]["reach"] == 100 + 20 + 3 + 500 + 10_000
    assert counts(brands["Globex"]) == (2, 1, 1, 0)
    assert brands["Globex"]["share"] == pytest.approx(2 / 7)
    assert brands["Globex"]["net_sentiment"] == 1.0
    assert counts(brands["United"]) == (0, 0, 0, 0)
    assert brands["United"]["share"] == 0.0
    assert brands["United"]["net_sentiment"] is None


async def test_buckets_are_aligned_to_the_interval_and_zero_filled(
    client: httpx.AsyncClient, keys: Keys, scores: dict[str, float]
) -> None:
    body = await get(client, keys, SOV, **HOUR, interval="15m")
    starts = [b["start"] for b in body["buckets"]]
    assert starts == [f"2026-03-02T10:{m}:00Z" for m in ("00", "15", "30", "45")]
    first, empty, third, last = body["buckets"]

    assert first["total"] == 4
    assert counts(by_brand(first["brands"])["Acme"]) == (3, 1, 1, 1)
    assert by_brand(first["brands"])["Acme"]["share"] == pytest.approx(3 / 4)
    assert by_brand(first["brands"])["Acme"]["net_sentiment"] == 0.0
    # Only a neutral mention: no opinion, so no net sentiment.
    assert counts(by_brand(first["brands"])["Globex"]) == (1, 0, 1, 0)
    assert by_brand(first["brands"])["Globex"]["net_sentiment"] is None

    for bucket in (empty, last):
        assert bucket["total"] == 0
        assert [counts(b) for b in bucket["brands"]] == [(0, 0, 0, 0)] * 3
        assert all(b["share"] is None and b["net_sentiment"] is None for b in bucket["brands"])

    assert third["total"] == 3
    assert counts(by_brand(third["brands"])["Acme"]) == (2, 2, 0, 0)
    assert counts(by_brand(third["brands"])["Globex"]) == (1, 1, 0, 0)
    assert sum(b["total"] for b in body["buckets"]) == body["total"]

    # A range that starts inside a bucket: the bucket still starts on the interval,
    # and holds only what is inside the range (resolved to the minute).
    body = await get(
        client,
        keys,
        SOV,
        **{"from": "2026-03-02T10:07:45Z", "to": "2026-03-02T11:30:00+01:00"},
        interval="15m",
    )
    assert (body["from"], body["to"]) == ("2026-03-02T10:07:00Z", "2026-03-02T10:30:00Z")
    assert [b["start"] for b in body["buckets"]] == ["2026-03-02T10:00:00Z", "2026-03-02T10:15:00Z"]
    assert counts(by_brand(body["buckets"][0]["brands"])["Acme"]) == (2, 0, 1, 1)


async def test_a_mention_naming_two_brands_counts_for_both(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    text = "Acme and Globex are both wonderful"
    await push(client, keys, embedded, [mention_doc(id="two", text=text)])
    body = await get(
        client,
        keys,
        SOV,
        **{"from": "2026-03-02T10:00:00Z", "to": "2026-03-02T11:00:00Z"},
        brands="Acme,Globex",
    )
    brands = by_brand(body["brands"])
    assert body["total"] == 2
    assert counts(brands["Acme"]) == counts(brands["Globex"]) == (1, 1, 0, 0)
    assert brands["Acme"]["share"] == brands["Globex"]["share"] == 0.5
    for brand in ("Acme", "Globex"):
        series = await get(client, keys, SENTIMENT, **HOUR, brand=brand)
        assert series["total"]["mentions"] == 1


async def test_brands_default_to_all_tracked_and_can_be_chosen(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded, scores: dict[str, float]
) -> None:
    body = await get(client, keys, SOV, **HOUR)
    assert [b["brand"] for b in body["brands"]] == ["Acme", "Globex", "United"]
    r = await client.post(
        "/api/v1/brands", json={"name": "Initech", "query": "initech"}, headers=keys.header("admin")
    )
    assert r.status_code == 201
    body = await get(client, keys, SOV, **HOUR)
    assert [b["brand"] for b in body["brands"]] == ["Acme", "Globex", "Initech", "United"]

    # Chosen brands keep their order, lose repeats and blanks; shares are of this set.
    body = await get(client, keys, SOV, **HOUR, brands=" Globex , Acme,Acme,,")
    assert [b["brand"] for b in body["brands"]] == ["Globex", "Acme"]
    body = await get(client, keys, SOV, **HOUR, brands="Globex")
    assert [(b["brand"], b["mentions"], b["share"]) for b in body["brands"]] == [("Globex", 2, 1.0)]
    assert [b["brand"] for b in body["buckets"][0]["brands"]] == ["Globex"]


async def test_sentiment_of_one_brand_over_time(
    client: httpx.AsyncClient, keys: Keys, scores: dict[str, float]
) -> None:
    body = await get(client, keys, SENTIMENT, **HOUR, brand="Acme", interval="30m")
    assert (body["brand"], body["from"], body["to"], body["interval_seconds"]) == (
        "Acme",
        "2026-03-02T10:00:00Z",
        "2026-03-02T11:00:00Z",
        1800,
    )
    total = body["total"]
    assert counts(total) == (5, 3, 1, 1)
    assert total["net_sentiment"] == pytest.approx(0.5)
    acme = ("a-pos-1", "a-neg", "a-neu", "a-pos-2", "both")
    # The score toward Acme ("both" names Globex too: issue 16 scores it per brand).
    listed = await get(client, keys, "/api/v1/mentions", brand="Acme")
    toward = {m["id"]: m["sentiment"]["score"] for m in listed["items"]}
    assert total["mean_score"] == pytest.approx(sum(toward[m] for m in acme) / 5)

    first, second = body["series"]
    assert (first["start"], second["start"]) == ("2026-03-02T10:00:00Z", "2026-03-02T10:30:00Z")
    assert counts(first) == (3, 1, 1, 1)
    assert first["net_sentiment"] == 0.0
    assert first["mean_score"] == pytest.approx(
        (scores["a-pos-1"] + scores["a-neg"] + scores["a-neu"]) / 3
    )
    assert counts(second) == (2, 2, 0, 0)
    assert second["net_sentiment"] == 1.0

    body = await get(client, keys, SENTIMENT, **HOUR, brand="United", interval="30m")
    for point in (body["total"], *body["series"]):
        assert counts(point) == (0, 0, 0, 0)
        assert point["net_sentiment"] is None
        assert point["mean_score"] is None


async def test_brands_naming_no_brand_mean_every_tracked_brand(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    for brands in ("", " , ,"):
        r = await client.get(SOV, params={**HOUR, "brands": brands}, headers=keys.header("viewer"))
        assert r.status_code == 200, r.text
        assert [b["brand"] for b in r.json()["brands"]] == ["Acme", "Globex", "United"]


async def test_bad_parameters_are_422_naming_the_field(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    week = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-08T00:00:00Z"}
    both = [
        ({**HOUR, "interval": "0m"}, "interval"),
        ({**HOUR, "interval": "5x"}, "interval"),
        ({**HOUR, "interval": "abc"}, "interval"),
        ({**HOUR, "interval": "-5m"}, "interval"),
        ({**week, "interval": "1m"}, "interval"),
        ({"from": HOUR["to"], "to": HOUR["from"]}, "from"),
        ({"from": HOUR["from"], "to": HOUR["from"]}, "from"),
        ({"from": "2026-03-02T10:00:00", "to": HOUR["to"]}, "query.from"),
        ({"from": HOUR["from"], "to": "2026-03-02T11:00:00"}, "query.to"),
        ({"from": "last tuesday"}, "query.from"),
        # Numbers are not read as Unix times (issue 14 §4).
        ({"from": HOUR["from"], "to": "0.5"}, "query.to"),
        ({"from": "1772445600", "to": HOUR["to"]}, "query.from"),
    ]
    cases: list[tuple[str, dict[str, str], str]] = [
        *((SOV, params, field) for params, field in both),
        *((SENTIMENT, {**params, "brand": "Acme"}, field) for params, field in both),
        (SOV, {**HOUR, "brands": ",".join(f"B{i}" for i in range(51))}, "brands"),
        (SENTIMENT, dict(HOUR), "query.brand"),
        (SENTIMENT, {**HOUR, "brand": ""}, "query.brand"),
    ]
    for path, params, field in cases:
        r = await client.get(path, params=params, headers=keys.header("viewer"))
        assert r.status_code == 422, (path, params, r.text)
        body = r.json()
        assert body["errors"][0]["field"] == field, (path, params, body)
        assert body["detail"].startswith(f"{field}: "), (path, params, body)
    naive = await client.get(
        SOV, params={"from": "2026-03-02T10:00:00"}, headers=keys.header("viewer")
    )
    assert "naive datetime" in naive.json()["errors"][0]["message"]
    many = await client.get(SOV, params={**week, "interval": "1m"}, headers=keys.header("viewer"))
    assert "2000 buckets" in many.json()["detail"]
    fifty = ",".join(f"B{i}" for i in range(50))
    assert (
        await client.get(SOV, params={**HOUR, "brands": fifty}, headers=keys.header("viewer"))
    ).status_code == 200


async def test_at_most_2000_buckets(client: httpx.AsyncClient, keys: Keys) -> None:
    start = "2026-03-01T00:00:00Z"
    r = await client.get(
        SOV,
        params={"from": start, "to": "2026-03-02T09:20:00Z", "interval": "1m", "brands": "Acme"},
        headers=keys.header("viewer"),
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["buckets"]) == 2000
    r = await client.get(
        SOV,
        params={"from": start, "to": "2026-03-02T09:21:00Z", "interval": "1m", "brands": "Acme"},
        headers=keys.header("viewer"),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "interval"


async def test_analytics_need_a_reading_key(client: httpx.AsyncClient, keys: Keys) -> None:
    for path, params in ((SOV, HOUR), (SENTIMENT, {**HOUR, "brand": "Acme"})):
        assert (await client.get(path, params=params)).status_code == 401
        r = await client.get(path, params=params, headers=keys.header("ingest"))
        assert r.status_code == 403
        for role in ("viewer", "analyst", "admin"):
            r = await client.get(path, params=params, headers=keys.header(role))
            assert r.status_code == 200, (path, role)


async def test_a_mention_before_1970_is_counted_in_its_own_bucket(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    await push(
        client,
        keys,
        embedded,
        [mention_doc(id="old", text=POSITIVE, created_at="1969-12-31T23:30:00Z")],
    )
    body = await get(
        client,
        keys,
        SOV,
        **{"from": "1969-12-31T23:00:00Z", "to": "1970-01-01T01:00:00Z"},
        brands="Acme",
    )
    assert [b["total"] for b in body["buckets"]] == [1, 0]


async def test_a_range_from_year_one_is_answered(client: httpx.AsyncClient, keys: Keys) -> None:
    r = await client.get(
        SOV,
        params={"from": "0001-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "interval": "9999d"},
        headers=keys.header("viewer"),
    )
    assert r.status_code in (200, 422), r.text


# --- open routes -------------------------------------------------------------------------


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = await client.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ready"})


async def test_not_ready_when_a_check_fails(embedded: Embedded, tmp_path: Path) -> None:
    state = embedded.app_state()
    state.readiness.append(lambda: "pipeline: consumer group scorer halted: test")
    empty = make_engine(sqlite_url(tmp_path))  # never migrated
    state.engine = empty
    transport = httpx.ASGITransport(app=create_app(state))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.get("/readyz")
            healthz = await c.get("/healthz")
    finally:
        empty.dispose()
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    database, pipeline = body["problems"]
    assert database.startswith("database: MigrationRequiredError")
    assert "sentimon migrate" in database
    assert pipeline == "pipeline: consumer group scorer halted: test"
    assert healthz.status_code == 200  # alive, just not ready


def stored_total(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "sentimon_mentions_stored_total":
                return sample.value
    raise AssertionError("sentimon_mentions_stored_total is not exported")


async def test_metrics_count_stored_mentions(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "# TYPE sentimon_mentions_stored_total counter" in r.text
    assert stored_total(r.text) == 0.0
    await push(
        client,
        keys,
        embedded,
        [
            mention_doc(id="m1", text=POSITIVE),
            mention_doc(id="m2", text=NEGATIVE),
            mention_doc(id="nobody", text="nothing about a tracked brand"),
        ],
    )
    r = await client.get("/metrics")
    assert stored_total(r.text) == 2.0
    assert 'sentimon_mentions_accepted_total{source="x"} 3.0' in r.text
    assert "sentimon_mentions_unmatched_total 1.0" in r.text


async def test_buckets_cut_by_the_range_are_marked_partial(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    params = {"from": "2026-03-02T10:30:00Z", "to": "2026-03-02T12:30:00Z", "interval": "1h"}
    sov = await get(client, keys, SOV, brands="Acme", **params)
    assert [(b["start"], b["partial"]) for b in sov["buckets"]] == [
        ("2026-03-02T10:00:00Z", True),
        ("2026-03-02T11:00:00Z", False),
        ("2026-03-02T12:00:00Z", True),
    ]
    series = await get(client, keys, "/api/v1/sentiment", brand="Acme", **params)
    assert [p["partial"] for p in series["series"]] == [True, False, True]
