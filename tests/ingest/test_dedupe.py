"""The ingest dedupe: a bounded memory of recent keys."""

from __future__ import annotations

import pytest

from services.ingest.dedupe import RecentKeys


def test_remembers_recent_keys_and_forgets_the_oldest() -> None:
    keys = RecentKeys(capacity=2)
    assert not keys.seen(("x", "1"))
    assert not keys.seen(("x", "2"))
    assert keys.seen(("x", "1"))  # refreshes "1"
    assert not keys.seen(("x", "3"))  # evicts "2", the least recently seen
    assert len(keys) == 2
    assert not keys.seen(("x", "2"))
    assert keys.seen(("x", "3"))


def test_forget_undoes_a_failed_publish() -> None:
    keys = RecentKeys(capacity=10)
    keys.seen(("x", "1"))
    keys.forget(("x", "1"))
    assert not keys.seen(("x", "1"))
    keys.forget(("x", "never"))  # harmless


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RecentKeys(0)
