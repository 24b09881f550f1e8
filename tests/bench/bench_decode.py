"""Decoding a ``mentions.raw`` message into a mention: pydantic as the scorer's decode does it
(the baseline, same run) against orjson + ``model_validate`` and against msgspec.

Run: ``.venv/bin/python -m tests.bench.bench_decode [--rounds N]``. msgspec is not a
dependency: its lines are measured when it can be imported (``pip install msgspec`` into
another directory and put it on ``PYTHONPATH``), and skipped otherwise.

Messages: ``bench_pipeline``'s 24,000 mentions as the ingest produces them
(``model_dump_json``). Happy path only (every message is valid). CPU per message
(``time.process_time``), median of the alternating rounds. The msgspec lines: a ``Struct``
holding the schema's structural constraints alone (lengths, patterns, literals, strict
integers; no mention comes out of it), then that plus the model's Python checks
(control characters, NUL, RFC 3339, the storable time range) and ``model_construct`` of the
pydantic models, the rest of the scorer reading a ``Mention`` (checked equal to pydantic's).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson

from services.core.models import (
    _CONTROL,
    _NOT_IN_TEXT,
    _RFC3339,
    Author,
    Engagement,
    Mention,
    storable_time,
)
from tests.bench.bench_pipeline import bench_doc, build_texts


def messages(count: int) -> list[bytes]:
    out = []
    for i, text in enumerate(build_texts(count)):
        out.append(Mention.model_validate(bench_doc(i, text)).model_dump_json().encode())
    return out


def msgspec_decoders() -> dict[str, Callable[[bytes], object]]:
    try:
        ms: Any = importlib.import_module("msgspec")
    except ImportError:
        print("  (msgspec not importable: its lines are skipped)")
        return {}
    ident = Annotated[str, ms.Meta(min_length=1, max_length=256)]
    count = Annotated[int, ms.Meta(ge=0, le=10**12)]
    author = ms.defstruct(
        "Author",
        [
            ("id", ident),
            ("handle", ident),
            ("name", Annotated[str, ms.Meta(max_length=512)] | None, None),
            ("followers", count, 0),
            ("description", Annotated[str, ms.Meta(max_length=2000)] | None, None),
            ("verified", bool, False),
        ],
        forbid_unknown_fields=True,
    )
    engagement = ms.defstruct(
        "Engagement",
        [("likes", count, 0), ("reposts", count, 0), ("replies", count, 0)],
        forbid_unknown_fields=True,
    )
    source = Literal[
        "x", "mastodon", "bluesky", "reddit", "rss", "web", "linkedin", "http", "file", "demo"
    ]
    mention = ms.defstruct(
        "Mention",
        [
            ("id", ident),
            ("source", source),
            ("text", Annotated[str, ms.Meta(min_length=1, max_length=10_000)]),
            ("created_at", str),
            ("author", author),
            (
                "url",
                Annotated[str, ms.Meta(max_length=2048, pattern=r"^https?://\S+$")] | None,
                None,
            ),
            (
                "lang",
                Annotated[str, ms.Meta(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")] | None,
                None,
            ),
            ("in_reply_to_id", ident | None, None),
            ("conversation_id", ident | None, None),
            ("metrics", engagement | None, None),
        ],
        forbid_unknown_fields=True,
    )
    decoder = ms.json.Decoder(mention)

    def to_mention(value: bytes) -> Mention:
        s = decoder.decode(value)
        for identifier in (s.id, s.author.id, s.author.handle):
            if _CONTROL.search(identifier):
                raise ValueError("control character")
        if _NOT_IN_TEXT.search(s.text) or _RFC3339.fullmatch(s.created_at) is None:
            raise ValueError("text or time")
        created = storable_time(datetime.fromisoformat(s.created_at))
        a, m = s.author, s.metrics
        return Mention.model_construct(
            id=s.id,
            source=s.source,
            url=s.url,
            text=s.text,
            lang=s.lang,
            created_at=created,
            author=Author.model_construct(
                id=a.id,
                handle=a.handle,
                name=a.name,
                followers=a.followers,
                description=a.description,
                verified=a.verified,
            ),
            in_reply_to_id=s.in_reply_to_id,
            conversation_id=s.conversation_id,
            metrics=None
            if m is None
            else Engagement.model_construct(likes=m.likes, reposts=m.reposts, replies=m.replies),
        )

    return {
        "msgspec Struct, constraints only": decoder.decode,
        "msgspec + Python checks + model_construct": to_mention,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    values = messages(24_000)
    ways: dict[str, Callable[[bytes], object]] = {
        "pydantic model_validate_json (baseline)": Mention.model_validate_json,
        "orjson.loads + model_validate": lambda v: Mention.model_validate(orjson.loads(v)),
        **msgspec_decoders(),
    }
    sample = values[:: len(values) // 500]
    expected = [Mention.model_validate_json(v) for v in sample]
    for name, decode in ways.items():  # every way that makes a mention makes the same
        if name != "msgspec Struct, constraints only":
            assert [decode(v) for v in sample] == expected, name
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, decode in ways.items():
            t0 = time.process_time()
            for v in values:
                decode(v)
            times[name].append((time.process_time() - t0) / len(values) * 1e6)
    base = statistics.median(times["pydantic model_validate_json (baseline)"])
    print(f"decoding {len(values)} mentions.raw messages, CPU µs each, median of {args.rounds}")
    for name, runs in times.items():
        med = statistics.median(runs)
        print(f"  {name:45s} {med:6.2f} µs  {base / med:5.2f}x")


if __name__ == "__main__":
    main()
