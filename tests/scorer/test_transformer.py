"""The transformer model directory: the shipped model loads with the hub switched off,
labels come from the config, and a broken directory is a clear error at start-up (or a
logged lexicon-only mode when so configured)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from services.scorer.settings import ScorerSettings
from services.scorer.transformer import (
    ModelLoadError,
    OnnxTransformer,
    default_model_dir,
    label_mapping,
    load_transformer,
    transformer_from_settings,
)

SHIPPED = default_model_dir()


@pytest.fixture(scope="module")
def shipped() -> OnnxTransformer:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_HUB_ENDPOINT", "http://127.0.0.1:9")  # any hub call would fail
        return load_transformer(None, threads=1)


def model_copy(tmp_path: Path, config: dict[str, object] | None = None) -> Path:
    """The shipped model's files linked into a new directory, optionally with another config."""
    out = tmp_path / "model"
    out.mkdir()
    for f in SHIPPED.iterdir():
        if f.name != "config.json":
            (out / f.name).symlink_to(f)
    cfg = json.loads((SHIPPED / "config.json").read_text())
    cfg.update(config or {})
    (out / "config.json").write_text(json.dumps(cfg))
    return out


def test_the_shipped_model_loads_offline_and_says_what_it_is(shipped: OnnxTransformer) -> None:
    assert shipped.info.labels == ("negative", "neutral", "positive")
    assert shipped.model_version.startswith("sentimon-minilm-tweets-1+")
    assert (SHIPPED / "MODEL_CARD.md").is_file()


def test_the_shipped_model_tells_clear_sentiment_apart(shipped: OnnxTransformer) -> None:
    texts = [
        "I hate this phone, worst purchase ever, it broke in a day",
        "The meeting is on Tuesday at 3pm in room 204",
        "Absolutely love the new update, best app ever!",
        "",  # empty text still gets a verdict
    ]
    verdicts = shipped.score_batch(texts)
    assert [v.label for v in verdicts[:3]] == ["negative", "neutral", "positive"]
    for v in verdicts:
        assert v.method == "transformer"
        assert v.model_version == shipped.model_version
        assert 1 / 3 <= v.confidence <= 1.0 and -1.0 <= v.score <= 1.0
    assert verdicts[0].score < 0 < verdicts[2].score
    assert shipped.score_batch([]) == []


def test_labels_are_read_from_the_config(tmp_path: Path) -> None:
    renamed = model_copy(tmp_path, {"id2label": {"0": "NEG", "1": "NEU", "2": "POS"}})
    model = load_transformer(renamed, threads=1)
    assert model.info.labels == ("negative", "neutral", "positive")
    assert model.score_batch(["Absolutely love it, best ever!"])[0].label == "positive"
    assert label_mapping({0: "Positive", 1: "Negative"}) == ("positive", "negative")


@pytest.mark.parametrize(
    ("id2label", "message"),
    [
        ({}, "no id2label"),
        ({0: "negative", 1: "sports", 2: "positive"}, "'sports' is not a sentiment label"),
        ({0: "negative", 1: "neutral"}, "must name positive and negative"),
        ({0: "negative", 2: "positive"}, "no entry for output 1"),
    ],
)
def test_labels_that_are_not_sentiment_are_refused(id2label: dict[int, str], message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        label_mapping(id2label)


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"not found.*SENTIMON_TRANSFORMER_MODEL"):
        load_transformer(tmp_path / "nope")


def test_a_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no config.json"):
        load_transformer(tmp_path)


def test_a_corrupt_onnx_file_is_a_clear_error(tmp_path: Path) -> None:
    broken = model_copy(tmp_path)
    (broken / "model.onnx").unlink()
    (broken / "model.onnx").write_bytes(b"this is not an ONNX graph" * 100)
    with pytest.raises(ModelLoadError, match=r"cannot be loaded by ONNX Runtime"):
        load_transformer(broken)


def test_a_corrupt_config_is_a_clear_error(tmp_path: Path) -> None:
    broken = model_copy(tmp_path)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config.json cannot be read"):
        load_transformer(broken)


def test_a_model_whose_outputs_do_not_match_its_labels_is_refused(tmp_path: Path) -> None:
    two = model_copy(tmp_path, {"id2label": {"0": "negative", "1": "positive"}})
    with pytest.raises(ModelLoadError, match=r"gives 3 outputs but config.json names 2"):
        load_transformer(two)


def test_a_torch_only_directory_is_refused_with_what_to_do(tmp_path: Path) -> None:
    torch_only = tmp_path / "torch-only"
    torch_only.mkdir()
    shutil.copy(SHIPPED / "config.json", torch_only / "config.json")
    (torch_only / "model.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(ModelLoadError, match=r"only torch weights.*export"):
        load_transformer(torch_only)


def test_settings_choose_the_model_and_the_missing_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "gone"
    with pytest.raises(ModelLoadError, match=r"not found"):
        transformer_from_settings(ScorerSettings(data_dir=tmp_path, transformer_model=missing))
    with caplog.at_level(logging.ERROR):
        fallback = transformer_from_settings(
            ScorerSettings(
                data_dir=tmp_path, transformer_model=missing, transformer_missing="lexicon"
            )
        )
    assert fallback is None
    assert "LEXICON-ONLY MODE" in caplog.text and str(missing) in caplog.text
    assert (
        transformer_from_settings(ScorerSettings(data_dir=tmp_path, scorer_mode="lexicon")) is None
    )
    configured = transformer_from_settings(
        ScorerSettings(data_dir=tmp_path, transformer_model=SHIPPED, transformer_threads=1)
    )
    assert configured is not None and configured.info.path == SHIPPED


def test_the_environment_variable_points_at_another_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = model_copy(tmp_path, {"id2label": {"0": "neg", "1": "neu", "2": "pos"}})
    monkeypatch.setenv("SENTIMON_TRANSFORMER_MODEL", str(other))
    model = transformer_from_settings(ScorerSettings(data_dir=tmp_path))
    assert model is not None and model.info.path == other
