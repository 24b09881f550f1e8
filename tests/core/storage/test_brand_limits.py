"""Brands an instance can afford and show (issue 14 §3): a cap on tracked brands, and no
control or bidirectional characters in a name (names reach pages and /metrics labels)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.brands import BrandError
from services.core.clock import SystemClock
from services.core.storage.brands import MAX_BRANDS, BrandStore, TooManyBrandsError
from services.core.storage.db import make_engine, migrate


@pytest.fixture
def store(tmp_path: Path) -> BrandStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    migrate(engine)
    return BrandStore(engine, SystemClock())


def test_the_brand_after_the_cap_is_refused_and_the_others_kept(store: BrandStore) -> None:
    for i in range(MAX_BRANDS):
        store.create(f"Brand {i}", f'"brand{i}"')
    with pytest.raises(TooManyBrandsError, match=f"at most {MAX_BRANDS} brands"):
        store.create("One too many", '"toomany"')
    assert len(store.list()) == MAX_BRANDS
    store.update("Brand 0", '"brand0" OR "b0"')  # changing one is still allowed
    store.delete("Brand 1")
    store.create("Now it fits", '"fits"')


@pytest.mark.parametrize(
    "name",
    ["Acme\u0000", "Ac\u0085me", "Acme\u202e", "\u2066Acme\u2069", "Ac\u200fme", "Ac\nme"],
)
def test_names_with_control_or_bidi_characters_are_refused(store: BrandStore, name: str) -> None:
    with pytest.raises(BrandError, match="control character U\\+"):
        store.create(name, '"acme"')
    assert store.list() == []
