"""Spot-check sampling: which scored mentions analysts should check by hand.

The decision is a pure function of the mention's key, so every scorer process (and a
redelivery) makes the same choice, and a sample can be reproduced later.
"""

from __future__ import annotations

import hashlib


def sample_fraction(source: str, mention_id: str, salt: str = "spot-check") -> float:
    """A uniform number in [0, 1) derived from the mention's key."""
    digest = hashlib.blake2b(f"{salt}\x00{source}\x00{mention_id}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


def is_spot_check(source: str, mention_id: str, rate: float) -> bool:
    return rate > 0 and sample_fraction(source, mention_id) < rate
