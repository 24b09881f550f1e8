"""The labelled data used to train and tune the transformer, read from files on disk.

Labels are ``0 = negative, 1 = neutral, 2 = positive`` (TweetEval's mapping) everywhere.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from pathlib import Path

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
LABEL_IDS = {name: i for i, name in enumerate(LABELS)}

_MENTION = re.compile(r"@\w+")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_URL = re.compile(r"https?://\S+")
_NOT_WORD = re.compile(r"[\W_]+")


class DataError(ValueError):
    """A data file is missing or not in the expected format."""


@dataclass(frozen=True, slots=True)
class Labelled:
    texts: list[str]
    labels: list[int]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise DataError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def overlap_key(text: str) -> str:
    """A tweet's identity across data sets. TweetEval replaced user names by ``@user``,
    dropped URLs and some quotes, and kept HTML entities and ``\\uXXXX`` escapes that other
    copies decoded; so decode both and compare only the words."""
    text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = _URL.sub(" ", _MENTION.sub("@user", html.unescape(text)))
    return _NOT_WORD.sub("", text.casefold())


def read_semeval(path: Path) -> Labelled:
    """``label<TAB>text`` lines, labels spelled out (the shared SemEval 2013–2016 file)."""
    if not path.is_file():
        raise DataError(f"training data not found: {path}")
    texts: list[str] = []
    labels: list[int] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        label, sep, text = line.partition("\t")
        if not sep or label not in LABEL_IDS:
            raise DataError(f"{path}:{n}: expected 'negative|neutral|positive<TAB>text'")
        texts.append(text)
        labels.append(LABEL_IDS[label])
    return Labelled(texts, labels)


def read_tweeteval(directory: Path, split: str) -> Labelled:
    """TweetEval sentiment ``<split>_text.txt`` with ``<split>_labels.txt`` (0/1/2 per line)."""
    text_path = directory / f"{split}_text.txt"
    label_path = directory / f"{split}_labels.txt"
    for p in (text_path, label_path):
        if not p.is_file():
            raise DataError(f"TweetEval {split} data not found: {p}")
    texts = [t.strip() for t in text_path.read_text(encoding="utf-8").split("\n")]
    labels_raw = label_path.read_text(encoding="utf-8").split()
    if texts and texts[-1] == "":
        texts.pop()
    try:
        labels = [int(x) for x in labels_raw]
    except ValueError as e:
        raise DataError(f"{label_path}: labels must be 0, 1 or 2") from e
    if any(x not in (0, 1, 2) for x in labels):
        raise DataError(f"{label_path}: labels must be 0, 1 or 2")
    return Labelled(texts, labels)


# Dong et al.'s tokenisation writes brackets as Penn Treebank tokens.
_PTB = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}
_PTB_TOKEN = re.compile("|".join(re.escape(k) for k in _PTB))
_DONG_LABELS = {"-1": 0, "0": 1, "1": 2}


def read_target_dependent(path: Path, mark: str) -> Labelled:
    """Dong et al.'s ``.raw`` file (three lines an item: the tweet with its target written
    ``$T$``, the target, the polarity ``-1``/``0``/``1`` toward it) as texts with the
    target written ``mark``, the form the scorer gives the model (``services.scorer.targets``)."""
    if not path.is_file():
        raise DataError(f"target-dependent data not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) % 3:
        raise DataError(f"{path}: expected three lines per item, got {len(lines)} lines")
    texts: list[str] = []
    labels: list[int] = []
    for n in range(0, len(lines), 3):
        tweet, target, polarity = lines[n], lines[n + 1], lines[n + 2].strip()
        if "$T$" not in tweet or not target.strip() or polarity not in _DONG_LABELS:
            raise DataError(f"{path}:{n + 1}: expected a tweet with $T$, a target, -1|0|1")
        tweet = _PTB_TOKEN.sub(lambda m: _PTB[m.group()], tweet)
        texts.append(tweet.replace("$T$", mark))
        labels.append(_DONG_LABELS[polarity])
    return Labelled(texts, labels)


def concat(*parts: Labelled) -> Labelled:
    return Labelled([t for p in parts for t in p.texts], [x for p in parts for x in p.labels])


def without(data: Labelled, held_out: Labelled) -> tuple[Labelled, int]:
    """``data`` less every text that is also in ``held_out`` (by ``overlap_key``); and
    how many were removed."""
    keys = {overlap_key(t) for t in held_out.texts}
    keep = [i for i, t in enumerate(data.texts) if overlap_key(t) not in keys]
    kept = Labelled([data.texts[i] for i in keep], [data.labels[i] for i in keep])
    return kept, len(data) - len(kept)
