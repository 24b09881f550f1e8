"""A file of mentions replayed through the whole embedded pipeline: the figures the
API returns must equal those computed directly from the file."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.core.brands import BrandDefinition, BrandMatcher
from services.embedded import Embedded
from services.ingest.sources.file import FileSource
from services.scorer.lexicon import VaderScorer
from services.scorer.process import prepare_text
from tests.fixtures.app import TEST_BRANDS, Keys
from tests.fixtures.mentions import mention_doc

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TEMPLATES = (
    "I love how fast {b} support answered, brilliant!",
    "{b} outage again today. Terrible, we lost a whole morning.",
    "Evaluating {b} for our CRM migration next quarter.",
    "Honestly {b} pricing is awful and the new UI is confusing",
    "{b} vs {c}: both fine, {b} has the better API",
    "Thanks {b}, the new release is great :)",
)
NAMES = {
    "Acme": ("Acme", "@acmehq", "#acme"),
    "Globex": ("Globex", "@globexcorp"),
    "United": ("@united", "United Airlines"),
}


def write_fixture_file(path: Path, n: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        b, c = rng.sample(sorted(NAMES), 2)
        text = rng.choice(TEMPLATES).format(b=rng.choice(NAMES[b]), c=rng.choice(NAMES[c]))
        if i % 17 == 0:
            text = "Nothing about any tracked company here, just lunch."
        docs.append(
            mention_doc(
                id=f"e2e-{i}",
                source=rng.choice(["x", "mastodon", "reddit"]),
                text=text,
                created_at=(START + timedelta(seconds=rng.randrange(0, 6 * 3600))).isoformat(),
                author={
                    "id": f"a{i % 40}",
                    "handle": f"user{i % 40}",
                    "followers": rng.randrange(0, 50_000),
                },
            )
        )
    lines = [orjson.dumps(d) for d in docs]
    lines.insert(5, b'{"id": "broken", ')  # malformed JSON
    lines.insert(9, orjson.dumps(mention_doc(id="naive", created_at="2026-03-02T09:00:00")))
    lines.append(lines[0])  # a repeat: stored once
    path.write_bytes(b"\n".join(lines) + b"\n")
    return docs


def expected_counts(docs: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Brand and label of each mention computed directly, without the pipeline."""
    matcher = BrandMatcher.compile([BrandDefinition(n, q) for n, q, _ in TEST_BRANDS])
    vader = VaderScorer()
    out: dict[str, Counter[str]] = {n: Counter() for n, _, _ in TEST_BRANDS}
    for d in docs:
        match = matcher.match(d["text"])
        text, _ = prepare_text(d["text"], match.mask_spans, 2_000)
        label = vader.score_batch([text])[0].label
        for b in match.brands:
            out[b][label] += 1
            out[b]["mentions"] += 1
    return out


async def test_replayed_file_gives_the_same_figures_as_the_file(
    embedded: Embedded, client: httpx.AsyncClient, keys: Keys, tmp_path: Path
) -> None:
    path = tmp_path / "mentions.jsonl"
    docs = write_fixture_file(path, 600)
    task = embedded.add_source(FileSource(path))
    await embedded.drain(timeout_s=60)
    stats = task.result()
    assert (stats.accepted, stats.invalid, stats.duplicates) == (600, 2, 1)

    expected = expected_counts(docs)
    total = sum(c["mentions"] for c in expected.values())
    params = {
        "from": START.isoformat(),
        "to": (START + timedelta(hours=6)).isoformat(),
        "interval": "1h",
        "brands": "Acme,Globex,United",
    }
    r = await client.get("/api/v1/share-of-voice", params=params, headers=keys.header("viewer"))
    assert r.status_code == 200, r.text
    sov = r.json()
    assert sov["total"] == total
    for row in sov["brands"]:
        exp = expected[row["brand"]]
        assert row["mentions"] == exp["mentions"]
        assert (row["positive"], row["neutral"], row["negative"]) == (
            exp["positive"],
            exp["neutral"],
            exp["negative"],
        )
        assert row["share"] == pytest.approx(exp["mentions"] / total)
        polar = exp["positive"] + exp["negative"]
        assert row["net_sentiment"] == pytest.approx((exp["positive"] - exp["negative"]) / polar)
    assert len(sov["buckets"]) == 6
    assert sum(b["total"] for b in sov["buckets"]) == total

    r = await client.get(
        "/api/v1/sentiment",
        headers=keys.header("viewer"),
        params={"brand": "Acme", "from": params["from"], "to": params["to"], "interval": "30m"},
    )
    assert r.status_code == 200, r.text
    series = r.json()
    assert len(series["series"]) == 12
    assert sum(p["negative"] for p in series["series"]) == expected["Acme"]["negative"]
    assert series["total"]["mentions"] == expected["Acme"]["mentions"]

    # Every stored mention can be paged through exactly once.
    seen: list[str] = []
    cursor = None
    while True:
        q: dict[str, Any] = {"limit": 100, "brand": "Globex"}
        if cursor:
            q["cursor"] = cursor
        r = await client.get("/api/v1/mentions", params=q, headers=keys.header("viewer"))
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == expected["Globex"]["mentions"]


async def test_redelivered_mentions_are_stored_once(
    embedded: Embedded, client: httpx.AsyncClient, keys: Keys, tmp_path: Path
) -> None:
    path = tmp_path / "twice.jsonl"
    docs = write_fixture_file(path, 50)
    embedded.add_source(FileSource(path))
    await embedded.drain()
    # A second pass of the same file, past the ingest dedupe (as after a restart):
    assert embedded.publisher is not None
    from services.core.models import Mention

    for d in docs:
        embedded.publisher._dedupe.forget((d["source"], d["id"]))
        await embedded.publisher.publish(Mention.model_validate(d), d["source"])
    await embedded.drain()
    expected = expected_counts(docs)
    r = await client.get(
        "/api/v1/share-of-voice",
        params={"from": START.isoformat(), "to": (START + timedelta(hours=6)).isoformat()},
        headers=keys.header("viewer"),
    )
    got = {b["brand"]: b["mentions"] for b in r.json()["brands"]}
    assert got == {b: c["mentions"] for b, c in expected.items()}
