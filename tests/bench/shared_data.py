"""Where the labelled data sets live: ``../shared/data`` beside the repository (never copied in)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """``$SENTIMON_SHARED_DATA`` or ``<repo>/../shared/data``; fails clearly if missing."""
    path = Path(os.environ.get("SENTIMON_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        raise SystemExit(f"shared data not found at {path}: set SENTIMON_SHARED_DATA")
    return path


def tweeteval_test_texts() -> list[str]:
    path = shared_data_dir() / "tweeteval" / "test_text.txt"
    return [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()]
