"""Issue 16 through the API: on stored mentions of which some name two brands with a
different verdict toward each, share of voice, the sentiment series, the executive report
and the mentions list count each brand's own verdict. The truth is computed here from
``CASES``, not read back from storage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.api.app import create_app
from services.api.state import AppState
from services.core.auth import Role
from services.core.clock import FrozenClock
from services.core.models import BrandSentiment, Mention, Sentiment
from services.core.storage.writer import MentionWriter, ScoredRecord
from tests.fixtures.app import Keys
from tests.fixtures.mentions import mention_doc
from tests.fixtures.report_data import report_state

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 17, tzinfo=UTC)
HOUR = {"from": "2026-03-10T10:00:00Z", "to": "2026-03-10T11:00:00Z"}
WEEK = {"from": "2026-03-09T00:00:00Z", "to": "2026-03-16T00:00:00Z"}
BRANDS = ("Acme", "Globex", "United")


@dataclass(frozen=True)
class Case:
    id: str
    brands: tuple[str, ...]
    label: str  # the mention's own verdict
    score: float
    toward: dict[str, tuple[str, float]] | None  # the scorer's verdict per brand, if any
    followers: int


CASES = (
    # "Switched from Acme to Globex, support is night and day"
    Case(
        "switch-1",
        ("Acme", "Globex"),
        "neutral",
        0.05,
        {
            "Acme": ("negative", -0.8),
            "Globex": ("positive", 0.7),
        },
        50_000,
    ),
    Case(
        "switch-2",
        ("Acme", "Globex"),
        "negative",
        -0.5,
        {
            "Acme": ("negative", -0.6),
            "Globex": ("positive", 0.5),
        },
        20_000,
    ),
    Case("acme-only", ("Acme",), "positive", 0.6, None, 100),
    Case("globex-only", ("Globex",), "negative", -0.4, None, 300),
    # Stored before issue 16: both brands get the mention's verdict.
    Case("both-old", ("Acme", "Globex"), "positive", 0.3, None, 700),
    # Scored per brand for Acme only: United gets the mention's verdict.
    Case("partial", ("Acme", "United"), "positive", 0.4, {"Acme": ("negative", -0.3)}, 9_000),
)


def truth(case: Case, brand: str) -> tuple[str, float]:
    """The verdict toward ``brand``, as issue 16 defines it."""
    if case.toward is not None and brand in case.toward:
        return case.toward[brand]
    return case.label, case.score


def of(brand: str) -> list[tuple[str, float]]:
    return [truth(c, brand) for c in CASES if brand in c.brands]


def counts(brand: str) -> tuple[int, int, int, int]:
    labels = [label for label, _ in of(brand)]
    return (
        len(labels),
        labels.count("positive"),
        labels.count("neutral"),
        labels.count("negative"),
    )


def net(brand: str) -> float | None:
    _, pos, _, neg = counts(brand)
    return None if pos + neg == 0 else (pos - neg) / (pos + neg)


def record(i: int, case: Case) -> ScoredRecord:
    raw = mention_doc(
        id=case.id,
        text=f"a mention of {' and '.join(case.brands)}",
        created_at=(T0 + timedelta(minutes=i)).isoformat(),
        author={"id": f"u-{case.id}", "handle": case.id, "followers": case.followers},
        metrics={"likes": 1, "reposts": 0, "replies": 0},
    )
    s = Sentiment(
        label=case.label,
        score=case.score,
        confidence=0.5,
        method="lexicon",
        lexicon_compound=case.score,
    )
    by_brand = (
        None
        if case.toward is None
        else {
            b: BrandSentiment(
                label=label,
                score=score,
                confidence=0.8,
                method="transformer",
                targeted=True,
            )
            for b, (label, score) in case.toward.items()
        }
    )
    doc: dict[str, Any] = {
        **raw,
        "brands": list(case.brands),
        "sentiment": s.model_dump(),
        "spot_check": False,
        "scored_at": T0.isoformat(),
    }
    if by_brand is not None:
        doc["sentiment_by_brand"] = {b: v.model_dump() for b, v in by_brand.items()}
    return ScoredRecord(
        Mention.model_validate_json(orjson.dumps(raw)),
        case.brands,
        s,
        False,
        T0,
        orjson.dumps(doc),
        by_brand=by_brand,
    )


@pytest.fixture
def state(tmp_path: Path) -> Iterator[AppState]:
    state = report_state(tmp_path, [], FrozenClock(NOW))
    MentionWriter(state.engine, state.clock).write([record(i, c) for i, c in enumerate(CASES)])
    yield state
    state.engine.dispose()


@pytest.fixture
def keys(state: AppState) -> Keys:
    return Keys(**{r.value: state.keys.create(r, f"test {r.value}")[0] for r in Role})


@pytest.fixture
async def client(state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def get(client: httpx.AsyncClient, keys: Keys, path: str, **params: str) -> Any:
    r = await client.get(path, params=params, headers=keys.header("viewer"))
    assert r.status_code == 200, r.text
    return r.json()


def row_counts(row: dict[str, Any]) -> tuple[int, int, int, int]:
    return row["mentions"], row["positive"], row["neutral"], row["negative"]


async def test_share_of_voice_counts_each_brands_own_verdict(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    body = await get(client, keys, "/api/v1/share-of-voice", **HOUR, brands=",".join(BRANDS))
    rows = {row["brand"]: row for row in body["brands"]}
    for brand in BRANDS:
        assert row_counts(rows[brand]) == counts(brand), brand
        assert rows[brand]["net_sentiment"] == pytest.approx(net(brand)), brand
    # The figures this is about: the switch mentions are negative for Acme, positive
    # for Globex (the mention's own verdicts would have made them neutral and negative).
    assert counts("Acme") == (5, 2, 0, 3)
    assert counts("Globex") == (4, 3, 0, 1)


async def test_the_sentiment_series_counts_each_brands_own_verdict_and_score(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    for brand in BRANDS:
        body = await get(client, keys, "/api/v1/sentiment", **HOUR, brand=brand, interval="1h")
        total = body["total"]
        assert row_counts(total) == counts(brand), brand
        scores = [score for _, score in of(brand)]
        assert total["mean_score"] == pytest.approx(sum(scores) / len(scores)), brand
        assert total["net_sentiment"] == pytest.approx(net(brand)), brand


async def test_the_executive_report_counts_each_brands_own_verdict(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    for brand in ("Acme", "Globex"):
        report = await get(client, keys, "/api/v1/reports/executive", **WEEK, brand=brand)
        sentiment = report["net_sentiment"]
        _, pos, neu, neg = counts(brand)
        assert (sentiment["positive"], sentiment["neutral"], sentiment["negative"]) == (
            pos,
            neu,
            neg,
        )
        assert sentiment["value"] == pytest.approx(net(brand))
        shares = {row["brand"]: row for row in report["share_of_voice"]["brands"]}
        for b in ("Acme", "Globex"):
            assert shares[b]["net_sentiment"] == pytest.approx(net(b)), (brand, b)
        series = report["sentiment_over_time"]["series"]
        assert sum(p["negative"] for p in series) == neg
        for label, key in (("positive", "top_positive"), ("negative", "top_negative")):
            want = sorted(
                (
                    (c.followers, c.id, truth(c, brand)[1])
                    for c in CASES
                    if brand in c.brands and truth(c, brand)[0] == label
                ),
                reverse=True,
            )
            got = [(m["followers"], m["id"], m["score"]) for m in report[key]]
            assert [(m["label"]) for m in report[key]] == [label] * len(want), (brand, key)
            assert got == [(f, i, pytest.approx(s)) for f, i, s in want], (brand, key)


async def test_the_mentions_list_carries_every_brands_verdict(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    body = await get(client, keys, "/api/v1/mentions", limit="50")
    items = {m["id"]: m for m in body["items"]}
    assert set(items) == {c.id for c in CASES}
    for c in CASES:
        m = items[c.id]
        # Without a brand filter, ``sentiment`` is the mention's own.
        assert (m["sentiment"]["label"], m["sentiment"]["score"]) == (c.label, c.score)
        by_brand = m["sentiment_by_brand"]
        assert set(by_brand) == set(c.brands), c.id
        for b in c.brands:
            assert (by_brand[b]["label"], by_brand[b]["score"]) == truth(c, b), (c.id, b)
            targeted = c.toward is not None and b in c.toward
            assert by_brand[b]["targeted"] is targeted, (c.id, b)
            assert by_brand[b]["method"] == ("transformer" if targeted else "lexicon")


async def test_with_a_brand_the_mentions_sentiment_is_toward_it(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    for brand in BRANDS:
        body = await get(client, keys, "/api/v1/mentions", brand=brand, limit="50")
        got = {m["id"]: (m["sentiment"]["label"], m["sentiment"]["score"]) for m in body["items"]}
        assert got == {c.id: truth(c, brand) for c in CASES if brand in c.brands}, brand
        for m in body["items"]:
            case = next(c for c in CASES if c.id == m["id"])
            # What belongs to the mention, not to a brand, stays the mention's.
            assert m["sentiment"]["lexicon_compound"] == case.score
            assert set(m["sentiment_by_brand"]) == set(case.brands)
        for label in ("positive", "neutral", "negative"):
            body = await get(client, keys, "/api/v1/mentions", brand=brand, label=label, limit="50")
            assert {m["id"] for m in body["items"]} == {
                c.id for c in CASES if brand in c.brands and truth(c, brand)[0] == label
            }, (brand, label)
            assert all(m["sentiment"]["label"] == label for m in body["items"])


async def test_the_response_schema_says_sentiment_by_brand_is_always_there(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    out = schema["components"]["schemas"]["MentionOut"]
    assert "sentiment_by_brand" in out["required"]
    verdict = out["properties"]["sentiment_by_brand"]["additionalProperties"]
    assert verdict == {"$ref": "#/components/schemas/BrandSentiment"}
