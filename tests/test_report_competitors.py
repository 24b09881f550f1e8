"""Competitive sets: configured with the brand in YAML, the CLI and the API, the same
rules everywhere, and used as the executive report's set."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import main
from services.core.brandfile import BrandFileError, checked_competitors, parse_brands_yaml
from services.core.clock import SystemClock
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, sqlite_url


def test_yaml_competitors_are_validated_like_the_api() -> None:
    (entry,) = parse_brands_yaml(
        "- name: Acme\n  query: acme\n  competitors: [Globex, ' Initech ']"
    )
    assert entry.competitors == ["Globex", "Initech"]
    for bad, why in (
        ("['Globex, Initech']", "pattern"),
        ("['a/b']", "pattern"),
        ("['']", "at least 1"),
        (f"['{'x' * 129}']", "at most 128"),
        (str([f"c{i}" for i in range(51)]), "at most 50"),
        ("Globex", "list"),
    ):
        with pytest.raises(BrandFileError, match=why):
            parse_brands_yaml(f"- name: Acme\n  query: acme\n  competitors: {bad}")


def test_checked_competitors_dedupes_and_drops_the_brand_itself() -> None:
    assert checked_competitors("Acme", ["Globex", " Globex", "Acme", "Initech"]) == [
        "Globex",
        "Initech",
    ]
    with pytest.raises(BrandFileError, match="competitors"):
        checked_competitors("Acme", ["a,b"])


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_cli_sets_and_clears_a_competitive_set(tmp_path: Path) -> None:
    d = str(tmp_path / "data")
    run("brands", "add", "Acme", '"acme"', "--competitor", "Globex", "--data-dir", d)
    assert "competitors: Globex" in run("brands", "list", "--data-dir", d)
    out = run("brands", "competitors", "Acme", "Globex", "Initech", "Acme", "--data-dir", d)
    assert out.strip() == "Acme: competitors Globex, Initech"
    engine = make_engine(sqlite_url(tmp_path / "data"))
    brand = BrandStore(engine, SystemClock()).get("Acme")
    assert (brand.query, brand.competitors) == ('"acme"', ("Globex", "Initech"))
    assert run("brands", "competitors", "Acme", "--data-dir", d).strip() == (
        "Acme: competitors none"
    )
    assert BrandStore(engine, SystemClock()).get("Acme").competitors == ()
    engine.dispose()
    bad = CliRunner().invoke(main, ["brands", "competitors", "Acme", "a,b", "--data-dir", d])
    assert bad.exit_code != 0 and "competitors" in bad.output
    missing = CliRunner().invoke(main, ["brands", "competitors", "Nope", "X", "--data-dir", d])
    assert missing.exit_code != 0 and "does not exist" in missing.output
