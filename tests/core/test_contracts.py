"""The JSON Schemas in schemas/ and the pydantic models agree on what is valid."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from referencing import Registry, Resource

from services.core.models import Mention, ScoredMention
from tests.fixtures.mentions import mention_doc

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def validator(name: str) -> Draft202012Validator:
    registry: Registry = Registry()
    for path in SCHEMAS.glob("*.json"):
        doc = json.loads(path.read_text())
        registry = registry.with_resource(doc["$id"], Resource.from_contents(doc))
    schema = json.loads((SCHEMAS / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def scored_doc(**overrides: Any) -> dict[str, Any]:
    doc = mention_doc()
    doc.update(
        brands=["Acme"],
        sentiment={
            "label": "positive",
            "score": 0.62,
            "confidence": 0.6,
            "method": "lexicon",
            "lexicon_compound": 0.62,
        },
        spot_check=False,
        scored_at="2026-03-02T10:15:01.5+00:00",
    )
    doc.update(overrides)
    return doc


def minimal() -> dict[str, Any]:
    return {
        "id": "1",
        "source": "demo",
        "text": "x",
        "created_at": "2026-01-01T00:00:00+01:00",
        "author": {"id": "a", "handle": "h"},
    }


VALID_MENTIONS = [
    mention_doc(),
    minimal(),
    mention_doc(metrics=None, url=None, lang=None, in_reply_to_id="m-0"),
    mention_doc(text="ü" * 10_000, lang="pt-BR"),
    mention_doc(text="line one\nline two\ttabbed", created_at="1970-01-01T00:00:00Z"),
    mention_doc(created_at="2099-12-31T23:59:59Z"),
    mention_doc(text="\u202bמחיר טוב\u202c Acme"),  # right-to-left marks in free text stay
]
INVALID_MENTIONS = [
    mention_doc(created_at="2026-03-02T10:15:00"),  # naive
    mention_doc(text=""),
    mention_doc(text="a" * 10_001),
    mention_doc(source="myspace"),
    mention_doc(author={"id": "a", "handle": "h", "followers": -1}),
    mention_doc(author={"id": "a"}),
    mention_doc(url="ftp://example.com/x"),
    mention_doc(metrics={"likes": -2}),
    mention_doc(extra_field=1),
    mention_doc(id=""),
    mention_doc(text=12),
    {k: v for k, v in mention_doc().items() if k != "created_at"},
    # What the store cannot hold (issue 14): times that do not convert to UTC within
    # 1900–2099, NUL and control characters in identifiers, NUL in free text.
    mention_doc(created_at="0001-01-01T00:30:00+01:00"),
    mention_doc(created_at="9999-12-31T23:30:00-01:00"),
    mention_doc(created_at="1899-12-31T23:59:59Z"),
    mention_doc(id="p\u0000"),
    mention_doc(author={"id": "a\u0000b", "handle": "h"}),
    mention_doc(author={"id": "a", "handle": "h\u0000"}),
    mention_doc(author={"id": "a", "handle": "h\u0085"}),
    mention_doc(author={"id": "a", "handle": "h", "name": "N\u0000"}),
    mention_doc(conversation_id="c\nd"),
    mention_doc(text="Acme\u0000"),
    mention_doc(text="Acme\u0085 rocks"),
    mention_doc(author={"id": "a", "handle": "evil\u202ebob"}),
    mention_doc(author={"id": "a", "handle": "h", "description": "CEO\u009b"}),
    mention_doc(url="https://x.example/\u0000"),
    # Strict at the edge: numbers are numbers, times are RFC 3339 text.
    mention_doc(created_at="1733313600"),
    mention_doc(created_at=1733313600),
    mention_doc(author={"id": "a", "handle": "h", "followers": True}),
    mention_doc(author={"id": "a", "handle": "h", "followers": "1000"}),
    mention_doc(author={"id": "a", "handle": "h", "verified": "yes"}),
    mention_doc(metrics={"likes": 1.5}),
]


@pytest.mark.parametrize("doc", VALID_MENTIONS)
def test_valid_mentions_pass_both(doc: dict[str, Any]) -> None:
    validator("mention.v1.json").validate(doc)
    Mention.model_validate(doc)


@pytest.mark.parametrize("doc", INVALID_MENTIONS)
def test_invalid_mentions_fail_both(doc: dict[str, Any]) -> None:
    assert list(validator("mention.v1.json").iter_errors(doc))
    with pytest.raises(ValidationError):
        Mention.model_validate(doc)


def test_scored_mentions_pass_both_and_raw_is_not_scored() -> None:
    v = validator("scored_mention.v1.json")
    v.validate(scored_doc())
    ScoredMention.model_validate(scored_doc())
    assert list(v.iter_errors(mention_doc()))  # brands, sentiment missing
    with pytest.raises(ValidationError):
        ScoredMention.model_validate(mention_doc())


@pytest.mark.parametrize(
    "overrides",
    [
        {
            "sentiment": {
                "label": "meh",
                "score": 0,
                "confidence": 0,
                "method": "lexicon",
                "lexicon_compound": 0,
            }
        },
        {
            "sentiment": {
                "label": "positive",
                "score": 1.5,
                "confidence": 0,
                "method": "lexicon",
                "lexicon_compound": 0,
            }
        },
        {
            "sentiment": {
                "label": "positive",
                "score": 0.5,
                "confidence": 2,
                "method": "lexicon",
                "lexicon_compound": 0,
            }
        },
        {
            "sentiment": {
                "label": "positive",
                "score": 0.5,
                "confidence": 0.5,
                "method": "oracle",
                "lexicon_compound": 0,
            }
        },
        {"brands": [""]},
        {"scored_at": "2026-03-02T10:15:01"},
        {"unexpected": True},
    ],
)
def test_invalid_scored_mentions_fail_both(overrides: dict[str, Any]) -> None:
    doc = scored_doc(**overrides)
    assert list(validator("scored_mention.v1.json").iter_errors(doc))
    with pytest.raises(ValidationError):
        ScoredMention.model_validate(doc)


def test_models_serialise_to_documents_the_schemas_accept() -> None:
    m = Mention.model_validate(mention_doc())
    validator("mention.v1.json").validate(json.loads(m.model_dump_json()))
    s = ScoredMention.model_validate(scored_doc())
    validator("scored_mention.v1.json").validate(json.loads(s.model_dump_json()))
    assert s.created_at == datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
