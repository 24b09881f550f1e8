"""The transformer second opinion: a local Hugging Face sequence-classification model
directory served with ONNX Runtime and the ``transformers`` tokenizer (the ``[ml]``
extra). No torch, and never the hub: everything is read with ``local_files_only``.

A model directory holds ``config.json`` (its ``id2label`` says which output is which
sentiment), the tokenizer files and ``model.onnx``. Sentimon ships one under ``models/``
(``DEFAULT_MODEL_NAME``, built by ``sentimon model train``); ``SENTIMON_TRANSFORMER_MODEL``
points at another. A directory with only torch weights is refused with a message saying
how to export it, since torch is not part of the serving install.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from services.core.models import Sentiment, SentimentLabel
from services.scorer.settings import ScorerSettings

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "sentimon-minilm-tweets"
# Texts per ONNX Runtime call, neighbours in token length: measured on tweets, sub-batches
# of 8 ran about 2.5x faster than one call padded to the longest of 64 (docs/benchmarks.md).
_SUB_BATCH = 8
_TORCH_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "tf_model.h5")


class ModelLoadError(RuntimeError):
    """The transformer model directory is missing, incomplete or unreadable."""


def default_model_dir() -> Path:
    """``models/<DEFAULT_MODEL_NAME>`` at the top of the source tree (a checkout, or an
    editable install as ``make setup`` makes). A wheel does not carry the model: there,
    ``SENTIMON_TRANSFORMER_MODEL`` names the directory."""
    return Path(__file__).resolve().parents[2] / "models" / DEFAULT_MODEL_NAME


def _sentiment_label(name: str) -> SentimentLabel | None:
    n = name.strip().lower()
    for prefix, label in (("neg", "negative"), ("neu", "neutral"), ("pos", "positive")):
        if n.startswith(prefix):
            return label  # type: ignore[return-value]
    return None


def label_mapping(id2label: dict[int, str]) -> tuple[SentimentLabel, ...]:
    """Output index → sentiment label, from a config's ``id2label``. Raises
    ``ModelLoadError`` unless every output is one of negative/neutral/positive (by
    prefix, any case: ``NEG``, ``Negative``, ``negative``) and positive and negative exist."""
    if not id2label:
        raise ModelLoadError("config.json has no id2label: cannot tell which output is which")
    out: list[SentimentLabel] = []
    for i in range(len(id2label)):
        if i not in id2label:
            raise ModelLoadError(f"config.json id2label has no entry for output {i}")
        label = _sentiment_label(id2label[i])
        if label is None:
            raise ModelLoadError(
                f"config.json id2label[{i}] = {id2label[i]!r} is not a sentiment label "
                "(negative, neutral or positive)"
            )
        out.append(label)
    if "positive" not in out or "negative" not in out or len(set(out)) != len(out):
        raise ModelLoadError(
            f"config.json id2label {id2label} must name positive and negative once each"
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    path: Path
    version: str
    labels: tuple[SentimentLabel, ...]


def _model_version(path: Path, onnx_path: Path) -> str:
    manifest = path / "training.json"
    if manifest.is_file():
        try:
            version = json.loads(manifest.read_text(encoding="utf-8")).get("model_version")
        except (OSError, ValueError):
            version = None
        if isinstance(version, str) and version:
            return version
    h = hashlib.sha256()
    with onnx_path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"{path.name}+{h.hexdigest()[:12]}"


class OnnxTransformer:
    """A ``Scorer`` over a local model directory. ``score_batch`` is thread-safe (ONNX
    Runtime sessions are; the tokenizer call is serialised) and never raises on text."""

    method: Literal["transformer"] = "transformer"

    def __init__(self, info: ModelInfo, tokenizer: Any, session: Any, max_tokens: int) -> None:
        self.info = info
        self._tokenizer = tokenizer
        self._session = session
        self._max_tokens = max_tokens
        self._inputs = {i.name for i in session.get_inputs()}
        self._output = session.get_outputs()[0].name
        self._lock = threading.Lock()
        self._pad_id = int(getattr(tokenizer, "pad_token_id", None) or 0)

    @property
    def model_version(self) -> str:
        return self.info.version

    def probabilities(self, texts: Sequence[str]) -> Any:
        """Softmax outputs, one row per text (columns in ``info.labels`` order).

        The texts are run in sub-batches of similar token length (padding to the longest
        of 64 random tweets would double the work), then put back in order."""
        import numpy as np

        with self._lock:
            enc = self._tokenizer(
                [t if t.strip() else "." for t in texts],
                truncation=True,
                max_length=self._max_tokens,
            )
        ids: list[list[int]] = enc["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: Any = None
        for start in range(0, len(order), _SUB_BATCH):
            part = order[start : start + _SUB_BATCH]
            width = max(len(ids[i]) for i in part)
            input_ids = np.full((len(part), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(part), width), dtype=np.int64)
            for row, i in enumerate(part):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(input_ids)
            feed = {k: v for k, v in feed.items() if k in self._inputs}
            (logits,) = self._session.run([self._output], feed)
            z = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(z)
            if out is None:
                out = np.empty((len(ids), logits.shape[1]), dtype=np.float32)
            out[part] = e / e.sum(axis=1, keepdims=True)
        return out

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        if not texts:
            return []
        labels = self.info.labels
        pos = labels.index("positive")
        neg = labels.index("negative")
        out: list[Sentiment] = []
        for row in self.probabilities(texts):
            best = int(row.argmax())
            out.append(
                Sentiment(
                    label=labels[best],
                    score=round(float(row[pos] - row[neg]), 4),
                    confidence=round(float(row[best]), 4),
                    method="transformer",
                    lexicon_compound=0.0,
                    model_version=self.info.version,
                )
            )
        return out


def load_transformer(
    path: Path | None = None, *, threads: int = 2, max_tokens: int = 64
) -> OnnxTransformer:
    """Load and check a model directory (``None``: the shipped model). Raises
    ``ModelLoadError`` with what is wrong and what to do; nothing is downloaded."""
    path = default_model_dir() if path is None else path
    if not path.is_dir():
        raise ModelLoadError(
            f"transformer model directory not found: {path} (set SENTIMON_TRANSFORMER_MODEL "
            "to a local model directory, or SENTIMON_SCORER_MODE=lexicon)"
        )
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} has no config.json: not a Hugging Face model directory")
    onnx_path = path / "model.onnx"
    if not onnx_path.is_file():
        if any((path / w).is_file() for w in _TORCH_WEIGHTS):
            raise ModelLoadError(
                f"{path} has only torch weights and serving runs ONNX without torch: export "
                "it first (e.g. optimum-cli export onnx --model DIR OUT, or torch.onnx.export) "
                "so that the directory has model.onnx"
            )
        raise ModelLoadError(f"{path} has no model.onnx")
    # The hub is never asked, even if the environment allows it.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import onnxruntime as ort
        from transformers import AutoConfig, AutoTokenizer
    except ImportError as e:
        raise ModelLoadError(
            f"the transformer needs the [ml] extra (onnxruntime, transformers): {e}"
        ) from e
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path}/config.json cannot be read: {e}") from e
    labels = label_mapping({int(k): str(v) for k, v in (config.id2label or {}).items()})
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise ModelLoadError(f"{path}: the tokenizer cannot be loaded: {e}") from e
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning: the machine is shared with VADER workers,
    # the database and the API, and spinning threads slow all of them.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors on a bad file
        raise ModelLoadError(f"{onnx_path} cannot be loaded by ONNX Runtime: {e}") from e
    info = ModelInfo(path=path, version=_model_version(path, onnx_path), labels=labels)
    model = OnnxTransformer(info, tokenizer, session, max_tokens)
    try:
        probe = model.probabilities(["a quick check that the model runs"])
    except Exception as e:  # a graph that loads but cannot run on our inputs
        raise ModelLoadError(f"{onnx_path} does not run on tokenized text: {e}") from e
    if probe.shape != (1, len(labels)):
        raise ModelLoadError(
            f"{onnx_path} gives {probe.shape[1]} outputs but config.json names {len(labels)}"
        )
    log.info("transformer %s loaded from %s (labels %s)", info.version, path, labels)
    return model


_loaded: dict[tuple[Path | None, int, int], OnnxTransformer] = {}
_loading = threading.Lock()


def transformer_from_settings(settings: ScorerSettings) -> OnnxTransformer | None:
    """The transformer the settings ask for, or ``None`` for lexicon-only scoring.

    Raises ``ModelLoadError`` when the model cannot be loaded, unless
    ``transformer_missing`` is ``lexicon``: then the problem is logged as an error and
    scoring is lexicon-only. A model is loaded once per process and shared (sessions
    are thread-safe and it is read-only).
    """
    if settings.scorer_mode == "lexicon":
        log.info("scorer mode lexicon: VADER only, no transformer")
        return None
    key = (
        settings.transformer_model,
        settings.transformer_threads,
        settings.transformer_max_tokens,
    )
    with _loading:
        if key in _loaded:
            return _loaded[key]
        try:
            model = load_transformer(
                settings.transformer_model,
                threads=settings.transformer_threads,
                max_tokens=settings.transformer_max_tokens,
            )
        except ModelLoadError as e:
            if settings.transformer_missing != "lexicon":
                raise
            log.error(
                "LEXICON-ONLY MODE: the transformer cannot be loaded (%s); every mention is "
                "scored by VADER alone (SENTIMON_TRANSFORMER_MISSING=lexicon)",
                e,
            )
            return None
        _loaded[key] = model
        return model
