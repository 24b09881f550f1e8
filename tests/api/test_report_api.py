"""``GET /api/v1/reports/executive``: every figure against values computed here, directly
from the fixture set of mentions; errors; the page and its download over HTTP."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from services.alerts.detection import AlertKind, RuleParams
from services.api.app import create_app
from services.api.state import AppState
from services.core.auth import Role
from services.core.models import Mention, Sentiment
from services.core.storage.alerts import AlertRuleStore, store_alert
from services.core.storage.tables import mentions, review_items, review_labels
from services.core.storage.writer import MentionWriter, ScoredRecord
from services.scorer.process import scored_document
from tests.fixtures.app import Keys
from tests.fixtures.mentions import mention_doc
from tests.fixtures.report_data import (
    BIOS,
    END,
    LABELS,
    PREV,
    SPIKE_DAY,
    START,
    Fixture,
    fixture_set,
    report_state,
)


@pytest.fixture
def fixtures() -> list[Fixture]:
    return fixture_set()


@pytest.fixture
def state(tmp_path: Path, fixtures: list[Fixture]) -> Iterator[AppState]:
    state = report_state(tmp_path, fixtures)
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


def in_period(f: Fixture, start: datetime, end: datetime, brand: str) -> bool:
    return brand in f.brands and start <= f.created_at < end


def net(fs: list[Fixture]) -> float | None:
    pos = sum(f.label == "positive" for f in fs)
    neg = sum(f.label == "negative" for f in fs)
    return None if pos + neg == 0 else (pos - neg) / (pos + neg)


def documented_influence(followers: int, n: int, engagement: int, replies: int) -> float:
    reach = min(1.0, math.log10(1 + followers) / 8)
    eng = min(1.0, math.log10(1 + engagement / n) / 5)
    conv = min(1.0, math.log10(1 + replies / n) / 3)
    return round(100 * (0.5 * reach + 0.3 * eng + 0.2 * conv), 1)


def approx(x: float | None) -> Any:
    return None if x is None else pytest.approx(x, abs=1e-9)


async def get_report(client: httpx.AsyncClient, keys: Keys, **params: str) -> Any:
    r = await client.get(
        "/api/v1/reports/executive",
        params={"brand": "Acme", "from": START.isoformat(), "to": END.isoformat(), **params},
        headers=keys.header("viewer"),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_every_figure_matches_the_mentions_it_is_made_of(
    client: httpx.AsyncClient, keys: Keys, fixtures: list[Fixture]
) -> None:
    rep = await get_report(client, keys)
    cur = {b: [f for f in fixtures if in_period(f, START, END, b)] for b in ("Acme", "Globex")}
    prev = {b: [f for f in fixtures if in_period(f, PREV, START, b)] for b in ("Acme", "Globex")}
    acme = cur["Acme"]
    assert rep["brand"] == "Acme" and rep["competitors"] == ["Globex"]
    assert rep["period"] == {"from": "2026-03-09T00:00:00Z", "to": "2026-03-16T00:00:00Z"}
    assert rep["previous_period"] == {"from": "2026-03-02T00:00:00Z", "to": "2026-03-09T00:00:00Z"}

    # Volume and its change
    assert rep["volume"]["mentions"] == len(acme) > 0
    assert rep["volume"]["previous"] == len(prev["Acme"])
    assert rep["volume"]["change"] == approx((len(acme) - len(prev["Acme"])) / len(prev["Acme"]))

    # Share of voice by mentions, reach and engagement, with named denominators
    totals = {
        "mentions": sum(len(cur[b]) for b in cur),
        "reach": sum(f.followers for b in cur for f in cur[b]),
        "engagement": sum(f.engagement for b in cur for f in cur[b]),
    }
    sov = {row["brand"]: row for row in rep["share_of_voice"]["brands"]}
    assert (
        set(sov) == {"Acme", "Globex"} and sov["Acme"]["subject"] and not sov["Globex"]["subject"]
    )
    for b, fs in cur.items():
        assert sov[b]["mentions"] == len(fs)
        assert sov[b]["share_of_mentions"] == approx(len(fs) / totals["mentions"])
        assert sov[b]["share_of_reach"] == approx(sum(f.followers for f in fs) / totals["reach"])
        assert sov[b]["share_of_engagement"] == approx(
            sum(f.engagement for f in fs) / totals["engagement"]
        )
        assert sov[b]["net_sentiment"] == approx(net(fs))
        prev_total = len(prev["Acme"]) + len(prev["Globex"])
        assert sov[b]["previous_share_of_mentions"] == approx(len(prev[b]) / prev_total)
    for k, total in totals.items():
        d = rep["share_of_voice"]["denominators"][k]
        assert d["total"] == total and "Acme, Globex" in d["description"]

    # Net sentiment and its change
    ns = rep["net_sentiment"]
    assert ns["value"] == approx(net(acme))
    assert ns["previous"] == approx(net(prev["Acme"]))
    assert ns["change"] == approx(net(acme) - net(prev["Acme"]))  # type: ignore[operator]
    assert ns["denominator"]["total"] == sum(f.label != "neutral" for f in acme)

    # Sentiment over time: daily buckets, each counted directly
    series = rep["sentiment_over_time"]["series"]
    assert rep["sentiment_over_time"]["interval_seconds"] == 86_400 and len(series) == 7
    for n, point in enumerate(series):
        day = START + timedelta(days=n)
        fs = [f for f in acme if day <= f.created_at < day + timedelta(days=1)]
        assert point["start"] == day.isoformat().replace("+00:00", "Z") and not point["partial"]
        assert point["mentions"] == len(fs)
        for label in LABELS:
            assert point[label] == sum(f.label == label for f in fs)
        assert point["net_sentiment"] == approx(net(fs))

    # Spikes: the planted one, by the documented rule
    counts = [p["mentions"] for p in series]
    median = statistics.median(counts)
    want_spikes = [
        series[k]["start"] for k, c in enumerate(counts) if c >= 2 * median and c - median >= 10
    ]
    assert [s["start"] for s in rep["spikes"]] == want_spikes == ["2026-03-12T00:00:00Z"]
    assert rep["alerts"] is None or isinstance(rep["alerts"], list)

    # Top positive and negative mentions by reach
    for label, key in (("positive", "top_positive"), ("negative", "top_negative")):
        ranked = sorted(
            (f for f in acme if f.label == label), key=lambda f: (-f.followers, -f.engagement)
        )
        assert [m["id"] for m in rep[key]] == [f.id for f in ranked[:5]]
        assert all(m["label"] == label for m in rep[key])

    # Top voices, by the documented influence score
    by_author: dict[int, list[Fixture]] = defaultdict(list)
    for f in acme:
        by_author[f.author].append(f)
    scores = {
        a: documented_influence(
            max(f.followers for f in fs),
            len(fs),
            sum(f.engagement for f in fs),
            sum(f.replies for f in fs),
        )
        for a, fs in by_author.items()
    }
    ranked_authors = sorted(scores, key=lambda a: (-scores[a], f"u{a}"))
    assert [v["author_id"] for v in rep["top_voices"]] == [f"u{a}" for a in ranked_authors[:10]]
    for v in rep["top_voices"]:
        a = int(v["author_id"][1:])
        assert v["influence"] == scores[a] and v["mentions"] == len(by_author[a])
        assert v["role"] == BIOS[a % len(BIOS)][1]
    dm_authors = [a for a in ranked_authors if BIOS[a % len(BIOS)][1] == "decision_maker"]
    assert [v["author_id"] for v in rep["top_decision_maker_voices"]] == [
        f"u{a}" for a in dm_authors[:10]
    ]

    # Among decision makers: share of voice and net sentiment, first-class
    dm = {b: [f for f in cur[b] if f.role == "decision_maker"] for b in cur}
    dm_total = sum(len(v) for v in dm.values())
    d = rep["decision_makers"]
    assert d["mentions"] == len(dm["Acme"])
    assert d["share_of_brand_mentions"] == approx(len(dm["Acme"]) / len(acme))
    assert {r["brand"]: r["share_of_mentions"] for r in d["share_of_voice"]} == {
        b: approx(len(dm[b]) / dm_total) for b in dm
    }
    assert d["net_sentiment"] == approx(net(dm["Acme"]))
    dm_prev = [f for f in prev["Acme"] if f.role == "decision_maker"]
    assert d["previous_net_sentiment"] == approx(net(dm_prev))
    assert d["denominators"]["share_of_voice"]["total"] == dm_total
    roles = {r["role"]: r for r in rep["roles"]}
    for role in ("decision_maker", "marketing_pr", "other"):
        fs = [f for f in acme if f.role == role]
        assert roles[role]["mentions"] == len(fs)
        assert roles[role]["net_sentiment"] == approx(net(fs))

    # Conversation vs broadcast, and the negative high-reach mentions nobody answered
    def talk(f: Fixture) -> bool:
        return (
            f.in_reply_to is not None
            or (f.conversation is not None and f.conversation != f.id)
            or f.replies > 0
        )

    conv = rep["conversation"]
    assert conv["mentions_in_conversation"] == sum(map(talk, acme))
    assert conv["share"] == approx(sum(map(talk, acme)) / len(acme))
    assert conv["previous_share"] == approx(sum(map(talk, prev["Acme"])) / len(prev["Acme"]))
    assert conv["denominator"]["total"] == len(acme) and conv["min_reach"] == 1000
    answered = {f.in_reply_to for f in fixtures if f.in_reply_to}
    unanswered = sorted(
        (
            f
            for f in acme
            if f.label == "negative"
            and f.followers >= 1000
            and f.replies == 0
            and f.id not in answered
        ),
        key=lambda f: (-f.followers, -f.i),
    )
    assert [m["id"] for m in conv["unanswered_negative"]] == [f.id for f in unanswered[:10]]
    assert unanswered, "the fixture set must exercise the list"

    # Terms and themes that rose (the planted ones); brand names are never "terms"
    terms = rep["terms"]
    assert terms["sample"] == {"current": len(acme), "previous": len(prev["Acme"])}
    themes = {t["term"]: t for t in terms["rising_themes"]}
    planted = [f for f in acme if "#outage" in f.text]
    assert themes["outage"]["count"] == len(planted)
    assert themes["outage"]["previous_count"] == sum("#outage" in f.text for f in prev["Acme"])
    assert terms["rising_terms"][0]["term"] == "invoice"
    assert not {"acme", "globex"} & {t["term"] for t in terms["rising_terms"]}


async def test_min_reach_and_no_comparison(
    client: httpx.AsyncClient, keys: Keys, fixtures: list[Fixture]
) -> None:
    rep = await get_report(client, keys, compare="none", min_reach="100000")
    assert rep["previous_period"] is None and rep["volume"]["previous"] is None
    assert rep["net_sentiment"]["change"] is None
    items = rep["conversation"]["unanswered_negative"]
    assert items and all(m["followers"] >= 100_000 for m in items)


async def test_a_brand_without_competitors_and_an_empty_period(
    client: httpx.AsyncClient, keys: Keys, fixtures: list[Fixture]
) -> None:
    rep = await get_report(
        client,
        keys,
        brand="United",
        **{"from": "2020-01-01T00:00:00Z", "to": "2020-01-08T00:00:00Z"},
    )
    assert rep["competitors"] == [] and rep["volume"]["mentions"] == 0
    assert rep["share_of_voice"]["brands"][0]["share_of_mentions"] is None
    assert rep["net_sentiment"]["value"] is None and rep["top_voices"] == []
    assert rep["decision_makers"]["share_of_brand_mentions"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-03-01T00:00:00"}, "query.from"),  # naive
        ({"from": "2026-03-10T00:00:00Z", "to": "2026-03-09T00:00:00Z"}, "from"),
        ({"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),  # > 400 days
        ({"compare": "last-year"}, "query.compare"),
        ({"min_reach": "-1"}, "query.min_reach"),
        ({"min_reach": "1" * 40}, "query.min_reach"),
        ({"brand": "x" * 129}, "query.brand"),
        ({"brand": ""}, "query.brand"),
        # Out of the stored range: widened to whole hours, a bound near year 9999
        # overflowed (a 500 "year 10000").
        ({"to": "9999-12-31T23:59:59Z"}, "to"),
        ({"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"}, "from"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    client: httpx.AsyncClient, keys: Keys, params: dict[str, str], field: str
) -> None:
    r = await client.get(
        "/api/v1/reports/executive",
        params={"brand": "Acme", **params},
        headers=keys.header("viewer"),
    )
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


async def test_unknown_brand_is_404_and_roles_are_enforced(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    url = "/api/v1/reports/executive"
    r = await client.get(url, params={"brand": "<script>Nope"}, headers=keys.header("viewer"))
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "brand"
    assert (await client.get(url, params={"brand": "Acme"})).status_code == 401
    r = await client.get(url, params={"brand": "Acme"}, headers=keys.header("ingest"))
    assert r.status_code == 403
    for role in ("viewer", "analyst", "admin"):
        r = await client.get(url, params={"brand": "Acme"}, headers=keys.header(role))
        assert r.status_code == 200, (role, r.text)


async def log_in(client: httpx.AsyncClient, key: str) -> None:
    r = await client.post("/login", json={"key": key})
    assert r.status_code == 204


async def test_the_page_and_the_download_over_http(
    client: httpx.AsyncClient, keys: Keys, fixtures: list[Fixture]
) -> None:
    params = {"brand": "Acme", "from": "2026-03-09", "to": "2026-03-15"}  # dates: "to" inclusive
    r = await client.get("/reports/executive", params=params)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    await log_in(client, keys.viewer)
    r = await client.get("/reports/executive", params=params)
    assert r.status_code == 200
    page = r.text
    acme = [f for f in fixtures if in_period(f, START, END, "Acme")]
    assert f'<span class="kpi-value">{len(acme):,}</span>' in page
    assert "<script" not in page.replace("&lt;script", "")  # hostile bios are escaped
    assert "/reports/executive/download?" in page
    assert "Content-Security-Policy" in r.headers

    r = await client.get("/reports/executive/download", params=params)
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith(
        'attachment; filename="sentimon-executive-acme-2026-03-09-2026-03-16.html"'
    )
    html = r.text
    assert "<style>" in html and "default-src 'none'" in unescape(html)
    for external in ("<link", "<script", "src=", "url(", "@import", 'href="/'):
        assert external not in html, external
    assert f'<span class="kpi-value">{len(acme):,}</span>' in html

    r = await client.get("/reports/executive", params={"brand": "Acme", "from": "yesterday"})
    assert r.status_code == 422 and "from: give a date" in r.text
    r = await client.get("/reports/executive", params={"brand": "Nope"})
    assert r.status_code == 404 and "does not exist" in r.text
    r = await client.get("/reports/executive")  # no brand: the first tracked one
    assert r.status_code == 200 and "Acme: executive report" in r.text


async def test_an_ingest_key_cannot_open_the_page(client: httpx.AsyncClient, keys: Keys) -> None:
    await log_in(client, keys.ingest)
    r = await client.get("/reports/executive", params={"brand": "Acme"})
    assert r.status_code == 403
    r = await client.get("/reports/executive/download", params={"brand": "Acme"})
    assert r.status_code == 403


async def test_alerts_and_measured_accuracy_of_the_period_are_in_the_report(
    client: httpx.AsyncClient, keys: Keys, fixtures: list[Fixture], state: AppState
) -> None:
    rep = await get_report(client, keys)
    assert rep["alerts"] == [] and rep["accuracy"] is None  # none yet: empty, not missing
    # An alert in the period (and one of another brand, and one before the period).
    rules = AlertRuleStore(state.engine, state.clock)
    acme = rules.create("Acme", RuleParams(kind=AlertKind.VOLUME_SPIKE))
    globex = rules.create("Globex", RuleParams(kind=AlertKind.VOLUME_SPIKE))
    for rule, at in ((acme, SPIKE_DAY), (globex, SPIKE_DAY), (acme, PREV)):
        stored = store_alert(
            state.engine,
            rule,
            at,
            lambda alert_id, created: {"id": alert_id},
            now=at,
            observed=57,
            expected=12.5,
            p_value=1e-7,
            retry_max_age=timedelta(hours=1),
        )
        assert stored is not None
    # Two spot-checked mentions of Acme in the period: the analyst confirms one of them.
    checked = [f for f in fixtures if in_period(f, START, END, "Acme")][:2]
    with state.engine.begin() as conn:
        pks = dict(
            conn.execute(
                select(mentions.c.mention_id, mentions.c.pk).where(
                    mentions.c.mention_id.in_([f.id for f in checked])
                )
            ).all()
        )
        for n, f in enumerate(checked):
            human = f.label if n == 0 else next(lb for lb in LABELS if lb != f.label)
            inserted = conn.execute(
                review_items.insert().values(
                    mention_pk=pks[f.id],
                    brand="Acme",
                    source="x",
                    auto_label=f.label,
                    auto_method="lexicon",
                    auto_confidence=0.5,
                    reason="random",
                    weight=1.0,
                    reviews_required=1,
                    reviews_done=1,
                    queued_at=START,
                )
            ).inserted_primary_key
            assert inserted is not None
            item = inserted[0]
            conn.execute(
                review_labels.insert().values(
                    item_id=item,
                    analyst_key_id=1,
                    label=human,
                    labelled_at=END,
                )
            )
    rep = await get_report(client, keys)
    (alert,) = rep["alerts"]
    assert alert["kind"] == "volume_spike" and alert["window_start"] == "2026-03-12T09:00:00Z"
    assert (alert["observed"], alert["expected"]) == (57, 12.5)
    accuracy = rep["accuracy"]
    assert accuracy["reviewed"] == 2 and accuracy["accuracy"] == pytest.approx(0.5)
    assert 0 < accuracy["low"] < 0.5 < accuracy["high"] < 1


async def test_the_page_and_the_download_refuse_far_future_dates(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    await log_in(client, keys.viewer)
    for path in ("/reports/executive", "/reports/executive/download"):
        for to in ("9999-12-31", "9999-12-31T23:59:59Z"):
            r = await client.get(path, params={"brand": "Acme", "from": "2026-03-09", "to": to})
            assert r.status_code == 422, (path, to, r.text[:200])


async def test_owned_accounts_are_left_out_and_their_answers_measured(
    client: httpx.AsyncClient, keys: Keys, state: AppState, fixtures: list[Fixture]
) -> None:
    r = await client.put(
        "/api/v1/brands/Acme",
        json={"query": '"acme"', "competitors": ["Globex"], "owned_handles": ["AcmeHelp"]},
        headers=keys.header("admin"),
    )
    assert r.status_code == 200, r.text
    before = await get_report(client, keys)
    negatives = [f for f in fixtures if in_period(f, START, END, "Acme") and f.label == "negative"]
    # Acme's help desk apologises (a negative text naming Acme, 80,000 followers) to every
    # third negative mention, after 5 to 95 minutes; twice to the first.
    answered = negatives[::3]
    delays = {f.id: timedelta(minutes=5 + 10 * (k % 10)) for k, f in enumerate(answered)}
    replies = [owned_reply(f"own-{f.id}", f, f.created_at + delays[f.id]) for f in answered] + [
        owned_reply("own-again", answered[0], answered[0].created_at + timedelta(days=1))
    ]
    MentionWriter(state.engine, state.clock).write(replies)

    report = await get_report(client, keys)
    for figure in ("volume", "net_sentiment"):
        assert report[figure] == before[figure], figure
    assert report["share_of_voice"]["brands"] == before["share_of_voice"]["brands"]
    assert report["top_voices"] == before["top_voices"]
    own = {r.mention.id for r in replies}
    assert not own & {m["id"] for m in report["conversation"]["unanswered_negative"]}
    assert not own & {m["id"] for m in report["top_negative"]}

    resp = report["responsiveness"]
    assert resp["owned_handles"] == ["AcmeHelp"]
    assert resp["negative_mentions"] == len(negatives)
    assert resp["answered"] == len(answered)
    assert resp["share_answered"] == pytest.approx(len(answered) / len(negatives))
    assert resp["median_seconds_to_first_answer"] == pytest.approx(
        statistics.median(d.total_seconds() for d in delays.values())
    )
    assert resp["denominators"]["share_answered"]["total"] == len(negatives)
    assert resp["denominators"]["median_seconds_to_first_answer"]["total"] == len(answered)
    assert resp["owned_mentions"] == sum(START <= r.mention.created_at < END for r in replies)

    await log_in(client, keys.viewer)
    page = await client.get(
        "/reports/executive", params={"brand": "Acme", "from": "2026-03-09", "to": "2026-03-15"}
    )
    assert page.status_code == 200
    section = page.text.split('id="responsiveness"', 1)[1].split("</section>", 1)[0]
    share = 100 * len(answered) / len(negatives)
    assert f"{share:.1f}% of {len(negatives):,} negative mentions answered" in section
    assert "AcmeHelp" in section


def owned_reply(id: str, parent: Fixture, at: datetime) -> ScoredRecord:
    raw = orjson.dumps(
        mention_doc(
            id=id,
            text="so sorry about acme, we are on it: DM us",
            created_at=at.isoformat(),
            author={"id": "acme-help", "handle": "@acmehelp", "followers": 80_000},
            in_reply_to_id=parent.id,
            conversation_id=parent.conversation or parent.id,
        )
    )
    s = Sentiment(
        label="negative", score=-0.6, confidence=0.5, method="lexicon", lexicon_compound=-0.6
    )
    return ScoredRecord(
        Mention.model_validate_json(raw),
        ("Acme",),
        s,
        False,
        at,
        scored_document(raw, ("Acme",), s, False, at),
    )
