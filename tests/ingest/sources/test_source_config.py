"""sources.yaml: entries validated with errors naming the entry and field; the stored
brands the firehose filters by are re-read when they change."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from services.core.brands import BrandDefinition
from services.ingest.sources.base import StoredBrands
from services.ingest.sources.config import MAX_SOURCES, parse_sources_yaml
from services.ingest.sources.errors import GarbageError, SourceConfigError
from services.ingest.sources.http import lines
from tests.ingest.sources.fakes import FakeTime

GOOD = """
sources:
  - name: alerts
    kind: rss
    feeds: [{url: "https://www.google.com/alerts/feeds/1/2"}]
  - {name: bsky, kind: bluesky}
  - {name: x, kind: x, enabled: false}
"""


def test_a_sources_file_is_read() -> None:
    configs = parse_sources_yaml(GOOD)
    assert [(c.name, c.kind, c.enabled) for c in configs] == [
        ("alerts", "rss", True),
        ("bsky", "bluesky", True),
        ("x", "x", False),
    ]
    assert parse_sources_yaml("") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {name: a, kind: rss, feeds: [{url: 'x'}]}", "[0].rss.feeds[0].url"),
        ("- {name: a, kind: reddit, subreddits: ['no spaces']}", "[0].reddit.subreddits[0]"),
        ("- {name: a, kind: x, bearer_token: secret}", "[0].x.bearer_token: unknown field"),
        ("- {name: A!, kind: bluesky}", "[0].bluesky.name"),
        (
            "- {name: a, kind: bluesky}\n- {name: a, kind: bluesky}",
            "[1].name: 'a' is defined twice",
        ),
        ("- {name: a, kind: bluesky, endpoint: 'http://x'}", "[0].bluesky.endpoint"),
        ("[unclosed", "not valid YAML"),
    ],
)
def test_bad_entries_are_named(text: str, message: str) -> None:
    with pytest.raises(SourceConfigError) as caught:
        parse_sources_yaml(text, "sources.yaml")
    assert str(caught.value).startswith("sources.yaml: ")
    assert message in str(caught.value)
    assert "secret" not in str(caught.value)


def test_the_number_of_sources_is_bounded() -> None:
    text = "\n".join(f"- {{name: s{i}, kind: bluesky}}" for i in range(MAX_SOURCES + 1))
    with pytest.raises(SourceConfigError, match="more than 50 sources"):
        parse_sources_yaml(text)


def test_stored_brands_are_reread_when_they_change() -> None:
    time = FakeTime()
    current = [BrandDefinition("Acme", '"acme"')]
    version = [1]
    loads: list[int] = []

    def load() -> list[BrandDefinition]:
        loads.append(1)
        return list(current)

    brands = StoredBrands(load, lambda: version[0], time.clock, refresh_s=30)
    assert brands.matches("I like Acme") and not brands.matches("I like Globex")
    current[:] = [BrandDefinition("Globex", '"globex"'), BrandDefinition("Bad", "NOT x")]
    version[0] = 2
    assert not brands.matches("I like Globex")  # not re-checked yet
    time.clock.advance(timedelta(seconds=30))
    assert brands.matches("I like Globex") and not brands.matches("I like Acme")
    assert [b.name for b in brands.definitions()] == ["Globex"]  # the broken one left out
    time.clock.advance(timedelta(seconds=30))
    brands.matches("again")
    assert len(loads) == 2  # the version did not change: not loaded again


async def test_an_endless_line_is_garbage_not_memory() -> None:
    async def body() -> object:
        for _ in range(100):
            yield b"x" * 1000

    request = httpx.Request("GET", "https://stream.example/s?secret=1")
    response = httpx.Response(200, content=body(), request=request)  # type: ignore[arg-type]
    with pytest.raises(GarbageError, match=r"stream\.example/s") as caught:
        async for _ in lines(response, max_bytes=10_000):
            pass
    assert "secret" not in str(caught.value)
