"""``sentimon alerts rules add|list|delete``, each test with its own data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import main


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SENTIMON_DATA_DIR", "SENTIMON_DATABASE_URL", "SENTIMON_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


def test_add_list_delete_rules(tmp_path: Path) -> None:
    runner = CliRunner()
    d = ["--data-dir", str(tmp_path)]
    assert runner.invoke(main, ["brands", "add", "Acme", '"acme"', *d]).exit_code == 0
    r = runner.invoke(
        main,
        ["alerts", "rules", "add", "Acme", "--kind", "negative_share", "--window", "30", *d],
    )
    assert r.exit_code == 0, r.output
    assert "rule 1: negative_share for 'Acme'" in r.output
    r = runner.invoke(main, ["alerts", "rules", "list", *d])
    assert r.output.split("\t")[:4] == ["1", "Acme", "negative_share", "30m"]
    assert runner.invoke(main, ["alerts", "rules", "delete", "1", *d]).exit_code == 0
    assert runner.invoke(main, ["alerts", "rules", "list", *d]).output == ""
    r = runner.invoke(main, ["alerts", "rules", "delete", "1", *d])
    assert r.exit_code == 1 and "does not exist" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Acme", "--window", "7"], "window_minutes: must divide a day"),
        (["Acme", "--sensitivity", "0.5"], "sensitivity:"),
        (["Nope"], "brand: brand 'Nope' is not tracked"),
        (["Acme", "--kind", "cheer"], "Invalid value for '--kind'"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(
    tmp_path: Path, args: list[str], message: str
) -> None:
    runner = CliRunner()
    d = ["--data-dir", str(tmp_path)]
    runner.invoke(main, ["brands", "add", "Acme", '"acme"', *d])
    r = runner.invoke(main, ["alerts", "rules", "add", *args, *d])
    assert r.exit_code != 0
    assert message in r.output, r.output
    assert runner.invoke(main, ["alerts", "rules", "list", *d]).output == ""
