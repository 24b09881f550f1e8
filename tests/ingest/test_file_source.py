"""File replay: every line either becomes a mention or an invalid record naming its line."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from services.core.models import Mention
from services.ingest.sources import file as file_source
from services.ingest.sources.file import FileSource
from services.ingest.sources.protocol import InvalidRecord, SourceItem
from tests.fixtures.mentions import mention_doc


async def read_all(source: FileSource) -> list[SourceItem]:
    return [item async for item in source.items()]


async def test_lines_become_mentions_or_named_errors(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    lines = [
        orjson.dumps(mention_doc(id="a")),
        b"",  # blank: skipped
        b"[1, 2]",
        b'"a string"',
        b"{broken",
        orjson.dumps(mention_doc(id="b", text="")),
        orjson.dumps(mention_doc(id="c")),
    ]
    path.write_bytes(b"\n".join(lines))  # no trailing newline on the last line
    items = await read_all(FileSource(path))
    assert [i.id for i in items if isinstance(i, Mention)] == ["a", "c"]
    errors = {i.position: i.error for i in items if isinstance(i, InvalidRecord)}
    assert errors["line 3"] == "body: expected a JSON object, got list"
    assert errors["line 4"] == "body: expected a JSON object, got str"
    assert errors["line 5"].startswith("body: invalid JSON")
    assert errors["line 6"].startswith("text:")


async def test_an_overlong_line_is_skipped_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_source, "MAX_LINE_BYTES", 1_000)
    path = tmp_path / "big.jsonl"
    path.write_bytes(
        orjson.dumps(mention_doc(id="before"))
        + b"\n"
        + b"x" * 5_000
        + b"\n"
        + orjson.dumps(mention_doc(id="after"))
        + b"\n"
    )
    items = await read_all(FileSource(path))
    assert [i.id for i in items if isinstance(i, Mention)] == ["before", "after"]
    (bad,) = [i for i in items if isinstance(i, InvalidRecord)]
    assert bad == InvalidRecord("line 2", "body: line longer than 1000 bytes")


async def test_rate_paces_with_the_injected_sleep(tmp_path: Path) -> None:
    path = tmp_path / "paced.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(mention_doc(id=str(i))) for i in range(4)))
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    items = await read_all(FileSource(path, rate_per_s=20, sleep=fake_sleep))
    assert len(items) == 4
    assert slept == [0.05] * 4
