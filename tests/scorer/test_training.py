"""The training side that needs no torch: data loading and hold-out, metrics, batching,
the model card, and a clear refusal when the [train] extra is missing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.scorer.routing import SIGNALS_FILE, RoutingModel
from services.scorer.training.card import render_model_card
from services.scorer.training.cli import model as model_cli
from services.scorer.training.data import (
    DataError,
    Labelled,
    overlap_key,
    read_semeval,
    read_tweeteval,
    without,
)
from services.scorer.training.metrics import evaluate
from services.scorer.training.router_train import compounds_of
from services.scorer.training.routing_fit import fit_routing_model
from services.scorer.training.routing_fit import main as fit_signals
from services.scorer.training.train import _batches
from services.scorer.transformer import default_model_dir


def test_tweeteval_copies_of_a_tweet_are_recognised() -> None:
    semeval = "@united thanks for nothing &amp; see you never http://t.co/abc"
    tweeteval = '"@user thanks for nothing & see you never"'
    assert overlap_key(semeval) == overlap_key(tweeteval)
    assert overlap_key("Rui En\\u2019s ex\\u002c really") == overlap_key("Rui En’s ex, really")
    assert overlap_key("one tweet") != overlap_key("another tweet")


def test_held_out_tweets_are_removed_from_training(tmp_path: Path) -> None:
    train = tmp_path / "train.tsv"
    train.write_text("positive\t@bob love it http://t.co/x\nneutral\tit is tuesday\n")
    data = read_semeval(train)
    kept, removed = without(data, Labelled(["@user love it"], [2]))
    assert (kept.texts, kept.labels, removed) == (["it is tuesday"], [1], 1)


def test_bad_data_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("happy\tnot a label we know\n")
    with pytest.raises(DataError, match=r"bad\.tsv:1"):
        read_semeval(bad)
    with pytest.raises(DataError, match="not found"):
        read_semeval(tmp_path / "missing.tsv")
    (tmp_path / "val_text.txt").write_text("a\nb\n")
    (tmp_path / "val_labels.txt").write_text("0\n7\n")
    with pytest.raises(DataError, match="0, 1 or 2"):
        read_tweeteval(tmp_path, "val")
    (tmp_path / "val_labels.txt").write_text("0\n")
    with pytest.raises(DataError, match="2 texts but 1 labels"):
        read_tweeteval(tmp_path, "val")


def test_the_signals_router_is_fitted_on_val_and_written_for_routing_to_load(
    tmp_path: Path,
) -> None:
    texts = ["I love it", "I hate it", "it is tuesday", "not bad at all", "great, just great"]
    labels = [2, 0, 1, 2, 0]
    data = tmp_path / "tweeteval"
    data.mkdir()
    (data / "val_text.txt").write_text("\n".join(texts * 4) + "\n")
    (data / "val_labels.txt").write_text("\n".join(map(str, labels * 4)) + "\n")
    fit_signals(["--val-dir", str(data), "--out", str(tmp_path / "out")])

    written = tmp_path / "out" / SIGNALS_FILE
    expected = fit_routing_model(texts * 4, compounds_of(texts * 4), labels * 4)
    assert RoutingModel.load(written) == expected
    card = json.loads(written.read_text(encoding="utf-8"))
    assert card["data"]["tweets"] == 20 and len(card["data"]["val_sha256"]) == 64
    assert card["trainer"] == "python -m services.scorer.training.routing_fit"


def test_macro_recall_counts_each_class_equally() -> None:
    gold = [0, 0, 1, 1, 1, 1, 1, 1, 2, 2]
    everything_neutral = [1] * 10
    s = evaluate(gold, everything_neutral)
    assert s.accuracy == pytest.approx(0.6)
    assert s.macro_recall == pytest.approx(1 / 3)
    assert s.macro_f1 == pytest.approx((0 + 0.75 + 0) / 3)
    assert evaluate(gold, gold).macro_recall == 1.0
    with pytest.raises(ValueError, match="predictions"):
        evaluate(gold, [1])


def test_batches_cover_every_text_once_with_little_padding() -> None:
    lengths = [(i * 37) % 60 + 4 for i in range(1_000)]
    batches = _batches(lengths, 32, seed=13, pool=10)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1_000))
    assert batches == _batches(lengths, 32, seed=13, pool=10)  # reproducible
    assert batches != _batches(lengths, 32, seed=14, pool=10)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.2 * sum(lengths)  # random batches would pad to ~1.8x


def test_the_model_card_says_data_licences_and_metrics() -> None:
    manifest = json.loads((default_model_dir() / "training.json").read_text())
    card = render_model_card(manifest)
    for must in ("research use", "non-commercial", "Apache-2.0", "macro-recall", "SHA-256"):
        assert must in card
    assert manifest["data"]["train"]["sha256"] in card
    assert (default_model_dir() / "MODEL_CARD.md").read_text() == card


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is not None, reason="only where torch is absent"
)
def test_training_without_the_train_extra_says_what_to_install(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        model_cli, ["train", "--base-model", str(tmp_path), "--output", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "[train] extra" in result.output and "torch" in result.output
