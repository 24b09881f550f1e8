"""``sentimon alerts rules snooze|unsnooze`` (issue 17 §5), each test with its own data
directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import main


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SENTIMON_DATA_DIR", "SENTIMON_DATABASE_URL", "SENTIMON_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


def a_rule(runner: CliRunner, d: list[str]) -> None:
    assert runner.invoke(main, ["brands", "add", "Acme", '"acme"', *d]).exit_code == 0
    assert runner.invoke(main, ["alerts", "rules", "add", "Acme", *d]).exit_code == 0


def test_snooze_for_a_duration_or_until_a_time_and_unsnooze(tmp_path: Path) -> None:
    runner = CliRunner()
    d = ["--data-dir", str(tmp_path)]
    a_rule(runner, d)
    before = datetime.now(UTC)
    r = runner.invoke(main, ["alerts", "rules", "snooze", "1", "--until", "8h", *d])
    assert r.exit_code == 0, r.output
    until = datetime.fromisoformat(r.output.strip().rsplit(" ", 1)[1])
    assert before + timedelta(hours=8) <= until <= datetime.now(UTC) + timedelta(hours=8)
    listed = runner.invoke(main, ["alerts", "rules", "list", *d]).output
    assert f"snoozed until {until.isoformat()}" in listed

    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    naive = at.replace(tzinfo=None).isoformat()  # no offset: read as UTC
    r = runner.invoke(main, ["alerts", "rules", "snooze", "1", "--until", naive, *d])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"rule 1 snoozed until {at.isoformat()}"

    r = runner.invoke(main, ["alerts", "rules", "unsnooze", "1", *d])
    assert r.exit_code == 0, r.output
    assert "snoozed" not in runner.invoke(main, ["alerts", "rules", "list", *d]).output


@pytest.mark.parametrize(
    ("until", "message"),
    [
        ("2001-01-01T00:00:00Z", "must be in the future"),
        ("91d", "at most 90 days ahead"),
        ("soon", "is not a date or an RFC 3339 time"),
    ],
)
def test_a_bad_snooze_is_refused_naming_until(tmp_path: Path, until: str, message: str) -> None:
    runner = CliRunner()
    d = ["--data-dir", str(tmp_path)]
    a_rule(runner, d)
    r = runner.invoke(main, ["alerts", "rules", "snooze", "1", "--until", until, *d])
    assert r.exit_code == 2, r.output
    assert "--until" in r.output and message in r.output
    assert "snoozed" not in runner.invoke(main, ["alerts", "rules", "list", *d]).output


def test_snoozing_a_missing_rule_says_so(tmp_path: Path) -> None:
    runner = CliRunner()
    d = ["--data-dir", str(tmp_path)]
    a_rule(runner, d)
    for args in (["snooze", "7", "--until", "1h"], ["unsnooze", "7"]):
        r = runner.invoke(main, ["alerts", "rules", *args, *d])
        assert r.exit_code == 1 and "alert rule 7 does not exist" in r.output, r.output
