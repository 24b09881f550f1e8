"""``sentimon score`` scores as the scorer service does: the same settings, model, routing
and masking (hybrid by default), ``--lexicon-only`` to opt out, and the service's refusals."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from prometheus_client import CollectorRegistry

from services.cli import main
from services.core.bus import MemoryBus, TopicPartition
from services.core.clock import SystemClock
from services.core.metrics import Metrics
from services.core.models import ScoredMention
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.topics import DEFAULT_TOPICS, RAW, SCORED
from services.scorer.calibration import CALIBRATION_FILE
from services.scorer.lexicon import VaderScorer, label_for
from services.scorer.pipeline import build_pipeline
from services.scorer.settings import ScorerSettings
from tests.fixtures.mentions import mention_doc

BRANDS_YAML = "- name: Acme\n  query: 'acme OR @acmehq'\n"
# All name the brand (the service drops the others); some clear, some the router sends
# to the transformer (asserted below, so the comparison covers both methods).
TEXTS = [
    "Acme is wonderful, I love it, best support ever!",
    "is acme any good? https://t.co/x",
    "great, just great, acme broke again",
    "Acme support never answers. Awful.",
    "@acmehq shipped version 2 today",
    "not bad at all from acme",
    "acme or globex? can't decide",
    "I don't hate the new acme dashboard but it's slow",
    "Acme outage again... fantastic 🙃",
    "meeting with acme at 3pm",
    "Thanks @acmehq, you saved my week!!",
    "acme pricing is a joke lol",
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The scorer's settings come from SENTIMON_*: none of the caller's may leak in.
    for name in list(ScorerSettings.model_fields):
        monkeypatch.delenv(f"SENTIMON_{name.upper()}", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def brands_file(tmp_path: Path) -> Path:
    path = tmp_path / "brands.yaml"
    path.write_text(BRANDS_YAML)
    return path


@pytest.fixture
def texts_file(tmp_path: Path) -> Path:
    path = tmp_path / "texts.jsonl"
    path.write_bytes(
        b"".join(orjson.dumps({"id": f"t{i}", "text": t}) + b"\n" for i, t in enumerate(TEXTS))
    )
    return path


def sentimon(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin)


def scored(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, (result.output, result.exception)
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def verdicts(out: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {
        o["id"]: (
            o["brands"],
            o["sentiment"]["label"],
            o["sentiment"]["method"],
            o["sentiment"]["model_version"],
            o["sentiment"]["lexicon_compound"],
        )
        for o in out
    }


async def scored_by_the_service(
    tmp_path: Path,
    settings: ScorerSettings,
    texts: list[str] = TEXTS,
    brands: tuple[tuple[str, str], ...] = (("Acme", "acme OR @acmehq"),),
) -> list[dict[str, Any]]:
    """``texts`` through the scorer service's pipeline (``build_pipeline``), as produced."""
    engine = make_engine(f"sqlite:///{tmp_path / 'service.db'}")
    migrate(engine)
    for name, query in brands:
        BrandStore(engine, SystemClock()).create(name, query)
    bus = MemoryBus()
    await bus.create_topics(DEFAULT_TOPICS)
    producer = await bus.producer()
    pipeline = build_pipeline(
        settings,
        bus=bus,
        producer=producer,
        engine=engine,
        clock=SystemClock(),
        metrics=Metrics(CollectorRegistry()),
    )
    downstream = await bus.consumer("downstream", [SCORED])
    task = asyncio.create_task(pipeline.score.run())
    try:
        for i, text in enumerate(texts):
            await producer.send(RAW, orjson.dumps(mention_doc(id=f"t{i}", text=text)))
        await pipeline.score.wait_caught_up([TopicPartition(RAW, p) for p in range(8)], 60)
    finally:
        pipeline.score.stop()
        await task
        await pipeline.close()
    produced = await downstream.getmany(max_records=len(texts) + 1, timeout_s=5)
    return [ScoredMention.model_validate_json(m.value).model_dump(mode="json") for m in produced]


async def test_hybrid_by_default_with_the_services_labels_and_methods(
    tmp_path: Path, brands_file: Path, texts_file: Path
) -> None:
    service = await scored_by_the_service(
        tmp_path, ScorerSettings(data_dir=tmp_path / "service", lexicon_processes=0)
    )
    result = sentimon("score", texts_file, "--brands", brands_file)
    cli = scored(result)
    assert len(service) == len(cli) == len(TEXTS)
    assert verdicts(cli) == verdicts(service)
    # Both paths were exercised: the model's verdicts, and the lexicon's where trusted.
    assert {o["sentiment"]["method"] for o in cli} == {"lexicon", "transformer"}
    by_id = {o["id"]: o["sentiment"] for o in service}
    for o in cli:
        assert o["sentiment"]["confidence"] == pytest.approx(by_id[o["id"]]["confidence"], abs=1e-3)
        if o["sentiment"]["method"] == "transformer":
            assert o["sentiment"]["model_version"].startswith("sentimon-minilm-tweets")


TWO_BRANDS = (("Halcyra", "halcyra"), ("Quorvia", "quorvia"))
PER_BRAND_TEXTS = [
    "Halcyra support is terrible, but Quorvia has been fantastic",
    "Halcyra support is terrible",
    "quorvia or halcyra? can't decide",
]


@pytest.fixture
def per_brand_files(tmp_path: Path) -> tuple[Path, Path]:
    brands = tmp_path / "two.yaml"
    brands.write_text("".join(f"- name: {n}\n  query: {q}\n" for n, q in TWO_BRANDS))
    texts = tmp_path / "per_brand.jsonl"
    texts.write_bytes(
        b"".join(
            orjson.dumps({"id": f"t{i}", "text": t}) + b"\n" for i, t in enumerate(PER_BRAND_TEXTS)
        )
    )
    return brands, texts


def by_brand(out: list[dict[str, Any]]) -> dict[str, Any]:
    return {o["id"]: o.get("sentiment_by_brand") for o in out}


async def test_a_text_naming_several_brands_gets_the_services_verdict_per_brand(
    tmp_path: Path, per_brand_files: tuple[Path, Path]
) -> None:
    brands, texts = per_brand_files
    settings = ScorerSettings(
        data_dir=tmp_path / "service", lexicon_processes=0, scorer_mode="lexicon"
    )
    service = await scored_by_the_service(tmp_path, settings, PER_BRAND_TEXTS, TWO_BRANDS)
    cli = scored(sentimon("score", texts, "--brands", brands, "--lexicon-only"))
    assert by_brand(cli) == by_brand(service)
    first = by_brand(cli)["t0"]
    assert {b: (v["label"], v["method"], v["targeted"]) for b, v in first.items()} == {
        "Halcyra": ("negative", "lexicon", True),
        "Quorvia": ("positive", "lexicon", True),
    }
    assert by_brand(cli)["t1"] is None  # one brand: its verdict is the text's
    assert set(by_brand(cli)["t2"]) == {"Halcyra", "Quorvia"}


def test_the_model_scores_each_brand_by_default(per_brand_files: tuple[Path, Path]) -> None:
    brands, texts = per_brand_files
    out = by_brand(scored(sentimon("score", texts, "--brands", brands)))
    assert out["t1"] is None
    for key in ("t0", "t2"):
        assert set(out[key]) == {"Halcyra", "Quorvia"}
        assert {(v["method"], v["targeted"]) for v in out[key].values()} == {("transformer", True)}


def test_lexicon_only_gives_vaders_verdict_everywhere(brands_file: Path, texts_file: Path) -> None:
    hybrid = scored(sentimon("score", texts_file, "--brands", brands_file))
    lexicon = scored(sentimon("score", texts_file, "--brands", brands_file, "--lexicon-only"))
    assert any(o["sentiment"]["method"] == "transformer" for o in hybrid)
    assert [o["sentiment"]["method"] for o in lexicon] == ["lexicon"] * len(TEXTS)
    for h, v in zip(hybrid, lexicon, strict=True):
        # The same masked text reached VADER in both modes.
        assert v["sentiment"]["lexicon_compound"] == h["sentiment"]["lexicon_compound"]
        assert v["sentiment"]["label"] == label_for(v["sentiment"]["lexicon_compound"])
        assert v["sentiment"]["model_version"].startswith("vaderSentiment-")


def test_the_services_scorer_mode_setting_is_honoured(
    monkeypatch: pytest.MonkeyPatch, texts_file: Path
) -> None:
    monkeypatch.setenv("SENTIMON_SCORER_MODE", "lexicon")
    out = scored(sentimon("score", texts_file))
    assert {o["sentiment"]["method"] for o in out} == {"lexicon"}


def test_the_routing_calibration_in_the_data_directory_is_applied(
    tmp_path: Path, brands_file: Path, texts_file: Path
) -> None:
    """As the service applies it: trust nothing and every text goes to the model; trust
    everything and none does."""

    def methods(min_trust: float) -> set[str]:
        data_dir = tmp_path / f"data-{min_trust}"
        data_dir.mkdir()
        body = {"settings": {"route_min_trust": min_trust}}
        (data_dir / CALIBRATION_FILE).write_text(orjson.dumps(body).decode())
        out = scored(sentimon("score", texts_file, "--brands", brands_file, "--data-dir", data_dir))
        return {o["sentiment"]["method"] for o in out}

    assert methods(1.0) == {"transformer"}
    assert methods(0.0) == {"lexicon"}


def test_a_corrupt_calibration_file_is_refused_by_name(tmp_path: Path, texts_file: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / CALIBRATION_FILE).write_text("{not json")
    result = sentimon("score", texts_file, "--data-dir", data_dir)
    assert result.exit_code == 1
    assert CALIBRATION_FILE in result.stderr and "not a calibration file" in result.stderr
    assert result.stdout == ""


def test_a_missing_model_is_refused_naming_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, texts_file: Path
) -> None:
    missing = tmp_path / "no-such-model"
    monkeypatch.setenv("SENTIMON_TRANSFORMER_MODEL", str(missing))
    result = sentimon("score", texts_file)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert str(missing) in result.stderr
    assert "SENTIMON_TRANSFORMER_MISSING=lexicon" in result.stderr
    assert result.stdout == ""
    # Lexicon-only needs no model.
    out = scored(sentimon("score", texts_file, "--lexicon-only"))
    assert len(out) == len(TEXTS)


def test_a_missing_model_falls_back_to_the_lexicon_when_configured(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    texts_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SENTIMON_TRANSFORMER_MODEL", str(tmp_path / "no-such-model"))
    monkeypatch.setenv("SENTIMON_TRANSFORMER_MISSING", "lexicon")
    with caplog.at_level(logging.ERROR, logger="services.scorer.transformer"):
        out = scored(sentimon("score", texts_file))
    assert [o["sentiment"]["method"] for o in out] == ["lexicon"] * len(TEXTS)
    vader = VaderScorer()
    assert [o["sentiment"]["lexicon_compound"] for o in out] == [vader.compound(t) for t in TEXTS]
    assert any("LEXICON-ONLY MODE" in r.getMessage() for r in caplog.records)


def test_an_invalid_setting_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMON_TRANSFORMER_MISSING", "maybe")
    result = sentimon("score", stdin="acme is fine\n")
    assert result.exit_code == 1
    assert "transformer_missing" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_an_unreadable_file_is_refused_naming_it(tmp_path: Path, make: str) -> None:
    path = tmp_path / "texts.jsonl"
    if make == "directory":
        path.mkdir()
    result = sentimon("score", path)
    assert result.exit_code != 0
    assert "texts.jsonl" in result.stderr
    assert ("Is a directory" if make == "directory" else "No such file") in result.stderr
    assert result.stdout == ""


def test_results_do_not_depend_on_the_block_size(
    monkeypatch: pytest.MonkeyPatch, brands_file: Path, texts_file: Path
) -> None:
    def both(*extra: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        monkeypatch.delenv("SENTIMON_CHUNK_SIZE", raising=False)
        whole = scored(sentimon("score", texts_file, "--brands", brands_file, *extra))
        monkeypatch.setenv("SENTIMON_CHUNK_SIZE", "5")
        blocks = scored(sentimon("score", texts_file, "--brands", brands_file, *extra))
        assert [o["id"] for o in blocks] == [o["id"] for o in whole]
        return whole, blocks

    # The lexicon path: every verdict identical.
    whole, blocks = both("--lexicon-only")
    assert verdicts(blocks) == verdicts(whole)

    # The hybrid: matching, the lexicon and the routing are identical. The int8 model's
    # label is not compared: dynamic quantisation scales activations per batch, so a text
    # near a class boundary can flip with its batch-mates (seen: one of 12, in CI).
    whole, blocks = both()
    routing = {k: (v[0], v[2], v[3], v[4]) for k, v in verdicts(whole).items()}
    assert {k: (v[0], v[2], v[3], v[4]) for k, v in verdicts(blocks).items()} == routing
    lexicon = {k for k, v in verdicts(whole).items() if v[2] == "lexicon"}
    assert lexicon and {k: verdicts(blocks)[k] for k in lexicon} == {
        k: verdicts(whole)[k] for k in lexicon
    }


def test_a_text_in_a_language_the_scorer_cannot_read_comes_out_unscored(tmp_path: Path) -> None:
    """As in the service: a Spanish line is not scored as English, in either mode."""
    path = tmp_path / "mixed.jsonl"
    lines = [
        {"id": "es", "text": "El servicio de atención al cliente fue terrible y nadie respondió"},
        {"id": "en", "text": "The customer service was terrible and nobody answered"},
    ]
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in lines))
    for extra in ((), ("--lexicon-only",)):
        out = {o["id"]: o["sentiment"] for o in scored(sentimon("score", path, *extra))}
        assert out["es"]["label"] == "unscored" and out["es"]["method"] == "none", out
        assert out["en"]["label"] == "negative"
